use annals::process::{Dispatch, Route};
use annals::{process_manager, EventMeta, HandlerError};
pub enum TellerEvent {
    Requested { withdrawal: String, account: String },
}
pub enum AccountEvent {
    Debited { withdrawal: String },
}
pub struct Debit {
    pub account: String,
}
pub struct Withdrawal {
    teller: String,
}
impl Withdrawal {
    fn route_teller(event: &TellerEvent) -> Route {
        let TellerEvent::Requested { withdrawal, .. } = event;
        Route::Start(withdrawal.clone())
    }
    fn route_account(event: &AccountEvent, meta: &EventMeta<'_>) -> Route {
        let AccountEvent::Debited { withdrawal } = event;
        let _ = meta.position();
        Route::Stop(withdrawal.clone())
    }
    fn on_teller(&self, event: &TellerEvent) -> Result<Vec<Dispatch>, HandlerError> {
        let TellerEvent::Requested { account, .. } = event;
        Ok(Vec::from([Dispatch::command(Debit { account: account.clone() })]))
    }
    fn on_account(&self, _event: &AccountEvent) -> Vec<Dispatch> {
        Vec::new()
    }
    fn apply_teller(&mut self, _event: &TellerEvent, meta: &EventMeta<'_>) {
        self.teller = meta.stream_id().to_string();
    }
}
const _: () = {
    const __STATE_OK: bool = ::annals::__private::process_state::<Withdrawal>();
    type __State = ::annals::__private::Checked<Withdrawal, { __STATE_OK }>;
    const __SEND_OK: bool = ::annals::__private::handler_send::<__State>();
    type __Sendable = ::annals::__private::Checked<__State, { __SEND_OK }>;
    const __PROCESS_OK: bool = ::annals::__private::handler_sync::<__Sendable>();
    type __Event0 = TellerEvent;
    const __EVENT_OK0: bool = ::annals::__private::handled_event::<__Event0>();
    type __Handled0 = ::annals::__private::Checked<__Event0, { __EVENT_OK0 }>;
    type __Event1 = AccountEvent;
    const __EVENT_OK1: bool = ::annals::__private::handled_event::<__Event1>();
    type __Handled1 = ::annals::__private::Checked<__Event1, { __EVENT_OK1 }>;
    const _: () = match ::annals::__private::shared_event_type(
        <__Handled0 as ::annals::Event>::TYPES,
        <__Handled1 as ::annals::Event>::TYPES,
    ) {
        ::core::option::Option::Some(name) => {
            let message = ::annals::__private::ConstMessage::new()
                .push(
                    "`AccountEvent` (taken by `route_account`) and `TellerEvent` (taken by `route_teller`) both have an event type named `",
                )
                .push(name)
                .push(
                    "`: `Withdrawal` routes each event to a method by its type name alone, so events of that name would all go to `route_teller`; give one of the two types another name with `#[event(rename = \"..\")]`",
                );
            {
                ::core::panicking::panic_display(&message.as_str());
            }
        }
        ::core::option::Option::None => {}
    };
    #[automatically_derived]
    impl ::annals::process::ProcessManager for Withdrawal
    where
        [(); __PROCESS_OK as usize]:,
    {
        const NAME: &'static str = "withdrawal";
        const INTEREST: &'static [&'static [::annals::EventType]] = &[
            <__Handled0 as ::annals::Event>::TYPES,
            <__Handled1 as ::annals::Event>::TYPES,
        ];
        fn route(
            event: &::annals::RecordedEvent,
        ) -> ::core::result::Result<
            ::annals::process::Route,
            ::annals::handler::HandlerError,
        > {
            match ::annals::handler::route(
                <Self as ::annals::process::ProcessManager>::INTEREST,
                &event.event_type,
                event.event_version,
            ) {
                ::core::option::Option::Some(0usize) => {
                    let mut combined = ::annals::__private::Combine::none();
                    for decoded in ::annals::handler::HandlerError::decode_all::<
                        __Handled0,
                    >(event)? {
                        let one = {
                            let returned = Self::route_teller(&decoded);
                            ::core::result::Result::Ok(
                                ::annals::__private::route_outcome(returned),
                            )
                        }?;
                        combined = ::annals::__private::Combine::combine(combined, one);
                    }
                    ::core::result::Result::Ok(combined)
                }
                ::core::option::Option::Some(1usize) => {
                    let mut combined = ::annals::__private::Combine::none();
                    for decoded in ::annals::handler::HandlerError::decode_all::<
                        __Handled1,
                    >(event)? {
                        let meta = ::annals::handler::EventMeta::of(event);
                        let one = {
                            let returned = Self::route_account(&decoded, &meta);
                            ::core::result::Result::Ok(
                                ::annals::__private::route_outcome(returned),
                            )
                        }?;
                        combined = ::annals::__private::Combine::combine(combined, one);
                    }
                    ::core::result::Result::Ok(combined)
                }
                _ => ::core::result::Result::Ok(::annals::process::Route::Ignore),
            }
        }
        fn handle(
            &self,
            event: &::annals::RecordedEvent,
        ) -> ::core::result::Result<
            ::std::vec::Vec<::annals::process::Dispatch>,
            ::annals::handler::HandlerError,
        > {
            match ::annals::handler::route(
                <Self as ::annals::process::ProcessManager>::INTEREST,
                &event.event_type,
                event.event_version,
            ) {
                ::core::option::Option::Some(0usize) => {
                    let mut combined = ::annals::__private::Combine::none();
                    for decoded in ::annals::handler::HandlerError::decode_all::<
                        __Handled0,
                    >(event)? {
                        let one = {
                            let returned = Self::on_teller(self, &decoded);
                            ::annals::__private::handle_result(returned)
                        }?;
                        combined = ::annals::__private::Combine::combine(combined, one);
                    }
                    ::core::result::Result::Ok(combined)
                }
                ::core::option::Option::Some(1usize) => {
                    let mut combined = ::annals::__private::Combine::none();
                    for decoded in ::annals::handler::HandlerError::decode_all::<
                        __Handled1,
                    >(event)? {
                        let one = {
                            let returned = Self::on_account(self, &decoded);
                            ::annals::__private::handle_outcome(returned)
                        }?;
                        combined = ::annals::__private::Combine::combine(combined, one);
                    }
                    ::core::result::Result::Ok(combined)
                }
                _ => ::core::result::Result::Ok(::std::vec::Vec::new()),
            }
        }
        fn apply(
            &mut self,
            event: &::annals::RecordedEvent,
        ) -> ::core::result::Result<(), ::annals::handler::HandlerError> {
            match ::annals::handler::route(
                <Self as ::annals::process::ProcessManager>::INTEREST,
                &event.event_type,
                event.event_version,
            ) {
                ::core::option::Option::Some(0usize) => {
                    let mut combined = ::annals::__private::Combine::none();
                    for decoded in ::annals::handler::HandlerError::decode_all::<
                        __Handled0,
                    >(event)? {
                        let meta = ::annals::handler::EventMeta::of(event);
                        let one = {
                            Self::apply_teller(self, &decoded, &meta);
                            ::core::result::Result::Ok(())
                        }?;
                        combined = ::annals::__private::Combine::combine(combined, one);
                    }
                    ::core::result::Result::Ok(combined)
                }
                _ => ::core::result::Result::Ok(()),
            }
        }
    }
    #[allow(non_upper_case_globals)]
    const _: () = {
        static __INVENTORY: ::inventory::Node = ::inventory::Node {
            value: &{
                ::annals::handler::HandlerRegistration {
                    name: "withdrawal",
                    type_name: "process_manager::Withdrawal",
                    location: "tests/expand/process_manager.rs:18",
                }
            },
            next: ::inventory::__private::UnsafeCell::new(
                ::inventory::__private::Option::None,
            ),
        };
        #[link_section = ".text.startup"]
        unsafe extern "C" fn __ctor() {
            unsafe { ::inventory::ErasedNode::submit(__INVENTORY.value, &__INVENTORY) }
        }
        #[used]
        #[link_section = ".init_array"]
        static __CTOR: unsafe extern "C" fn() = __ctor;
    };
};
fn main() {}
