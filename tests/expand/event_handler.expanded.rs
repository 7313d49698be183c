use annals::{event_handler, EventMeta};
pub enum AccountEvent {
    Deposited { amount: u64 },
}
pub struct TellerAssigned;
pub struct NotifyError;
#[automatically_derived]
impl ::core::fmt::Debug for NotifyError {
    #[inline]
    fn fmt(&self, f: &mut ::core::fmt::Formatter) -> ::core::fmt::Result {
        ::core::fmt::Formatter::write_str(f, "NotifyError")
    }
}
pub struct BalanceNotifier;
#[automatically_derived]
impl ::core::default::Default for BalanceNotifier {
    #[inline]
    fn default() -> BalanceNotifier {
        BalanceNotifier {}
    }
}
impl BalanceNotifier {
    async fn on_account(
        &self,
        event: &AccountEvent,
        meta: &EventMeta<'_>,
    ) -> Result<(), NotifyError> {
        let _ = (event, meta.position());
        Ok(())
    }
    fn on_teller(&self, _event: &TellerAssigned) {}
}
const _: () = {
    const __SEND_OK: bool = ::annals::__private::handler_send::<BalanceNotifier>();
    type __Sendable = ::annals::__private::Checked<BalanceNotifier, { __SEND_OK }>;
    const __HANDLER_OK: bool = ::annals::__private::handler_sync::<__Sendable>();
    type __Event0 = AccountEvent;
    const __EVENT_OK0: bool = ::annals::__private::handled_event::<__Event0>();
    type __Handled0 = ::annals::__private::Checked<__Event0, { __EVENT_OK0 }>;
    type __Event1 = TellerAssigned;
    const __EVENT_OK1: bool = ::annals::__private::handled_event::<__Event1>();
    type __Handled1 = ::annals::__private::Checked<__Event1, { __EVENT_OK1 }>;
    const _: () = match ::annals::__private::shared_event_type(
        <__Handled0 as ::annals::Event>::TYPES,
        <__Handled1 as ::annals::Event>::TYPES,
    ) {
        ::core::option::Option::Some(name) => {
            let message = ::annals::__private::ConstMessage::new()
                .push(
                    "`TellerAssigned` (taken by `on_teller`) and `AccountEvent` (taken by `on_account`) both have an event type named `",
                )
                .push(name)
                .push(
                    "`: `BalanceNotifier` routes each event to a method by its type name alone, so events of that name would all go to `on_account`; give one of the two types another name with `#[event(rename = \"..\")]`",
                );
            {
                ::core::panicking::panic_display(&message.as_str());
            }
        }
        ::core::option::Option::None => {}
    };
    #[automatically_derived]
    impl ::annals::handler::EventHandler for BalanceNotifier
    where
        [(); __HANDLER_OK as usize]:,
    {
        const NAME: &'static str = "balance-notifier";
        const INTEREST: &'static [&'static [::annals::EventType]] = &[
            <__Handled0 as ::annals::Event>::TYPES,
            <__Handled1 as ::annals::Event>::TYPES,
        ];
        const START_FROM: ::annals::handler::StartFrom = ::annals::handler::StartFrom::Now;
        const CONCURRENCY: usize = 4;
        fn handle<'__a>(
            &'__a self,
            event: &'__a ::annals::RecordedEvent,
        ) -> ::annals::handler::HandlerFuture<'__a> {
            match ::annals::handler::route(
                <Self as ::annals::handler::EventHandler>::INTEREST,
                &event.event_type,
                event.event_version,
            ) {
                ::core::option::Option::Some(0usize) => {
                    ::std::boxed::Box::pin(async move {
                        for decoded in ::annals::handler::HandlerError::decode_all::<
                            __Handled0,
                        >(event)? {
                            let meta = ::annals::handler::EventMeta::of(event);
                            let outcome: ::core::result::Result<
                                (),
                                ::annals::handler::HandlerError,
                            > = {
                                let returned = Self::on_account(self, &decoded, &meta)
                                    .await;
                                ::annals::__private::result_outcome(returned)
                                    .map_err(::annals::handler::HandlerError::Failed)
                            };
                            outcome?;
                        }
                        ::core::result::Result::Ok(())
                    })
                }
                ::core::option::Option::Some(1usize) => {
                    ::std::boxed::Box::pin(async move {
                        for decoded in ::annals::handler::HandlerError::decode_all::<
                            __Handled1,
                        >(event)? {
                            let outcome: ::core::result::Result<
                                (),
                                ::annals::handler::HandlerError,
                            > = {
                                Self::on_teller(self, &decoded);
                                ::core::result::Result::<
                                    (),
                                    ::annals::handler::HandlerError,
                                >::Ok(())
                            };
                            outcome?;
                        }
                        ::core::result::Result::Ok(())
                    })
                }
                _ => {
                    ::std::boxed::Box::pin(
                        ::annals::__private::ready(::core::result::Result::Ok(())),
                    )
                }
            }
        }
    }
    #[allow(non_upper_case_globals)]
    const _: () = {
        static __INVENTORY: ::inventory::Node = ::inventory::Node {
            value: &{
                ::annals::handler::HandlerRegistration {
                    name: "balance-notifier",
                    type_name: "event_handler::BalanceNotifier",
                    location: "tests/expand/event_handler.rs:13",
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
