use annals::{projection, EventMeta};
use sqlx::SqliteConnection;
pub enum AccountEvent {
    Deposited { amount: u64 },
}
pub struct AccountAudited;
pub struct Balances;
impl Balances {
    async fn on_account(
        &self,
        tx: &mut SqliteConnection,
        event: &AccountEvent,
        meta: &EventMeta<'_>,
    ) -> Result<(), sqlx::Error> {
        let _ = (tx, event, meta.position());
        Ok(())
    }
    async fn on_audit(&self, tx: &mut SqliteConnection, _event: &AccountAudited) {
        let _ = tx;
    }
    async fn clear(&self, tx: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        let _ = tx;
        Ok(())
    }
}
const _: () = {
    const __SEND_OK: bool = ::annals::__private::projection_send::<Balances>();
    type __Sendable = ::annals::__private::Checked<Balances, { __SEND_OK }>;
    const __PROJECTION_OK: bool = ::annals::__private::projection_sync::<__Sendable>();
    type __Conn0 = SqliteConnection;
    const __CONNECTION_OK0: bool = ::annals::__private::projection_connection::<
        __Conn0,
    >();
    type __Connection0 = ::annals::__private::Checked<__Conn0, { __CONNECTION_OK0 }>;
    type __Connection = __Connection0;
    type __Database = ::annals::__private::Sqlite;
    type __Agreed0 = __Connection;
    type __Conn1 = SqliteConnection;
    const __CONNECTION_OK1: bool = ::annals::__private::projection_connection::<
        __Conn1,
    >();
    type __Connection1 = ::annals::__private::Checked<__Conn1, { __CONNECTION_OK1 }>;
    const __SAME_OK1: bool = ::annals::__private::same_connection::<
        __Connection1,
        __Connection,
    >();
    type __Agreed1 = ::annals::__private::Checked<__Connection1, { __SAME_OK1 }>;
    type __Conn2 = SqliteConnection;
    const __CONNECTION_OK2: bool = ::annals::__private::projection_connection::<
        __Conn2,
    >();
    type __Connection2 = ::annals::__private::Checked<__Conn2, { __CONNECTION_OK2 }>;
    const __SAME_OK2: bool = ::annals::__private::same_connection::<
        __Connection2,
        __Connection,
    >();
    type __Agreed2 = ::annals::__private::Checked<__Connection2, { __SAME_OK2 }>;
    type __Event0 = AccountEvent;
    const __EVENT_OK0: bool = ::annals::__private::projected_event::<__Event0>();
    type __Handled0 = ::annals::__private::Checked<__Event0, { __EVENT_OK0 }>;
    type __Event1 = AccountAudited;
    const __EVENT_OK1: bool = ::annals::__private::projected_event::<__Event1>();
    type __Handled1 = ::annals::__private::Checked<__Event1, { __EVENT_OK1 }>;
    const _: () = match ::annals::__private::shared_event_type(
        <__Handled0 as ::annals::Event>::TYPES,
        <__Handled1 as ::annals::Event>::TYPES,
    ) {
        ::core::option::Option::Some(name) => {
            let message = ::annals::__private::ConstMessage::new()
                .push(
                    "`AccountAudited` (taken by `on_audit`) and `AccountEvent` (taken by `on_account`) both have an event type named `",
                )
                .push(name)
                .push(
                    "`: `Balances` routes each event to a method by its type name alone, so events of that name would all go to `on_account`; give one of the two types another name with `#[event(rename = \"..\")]`",
                );
            {
                ::core::panicking::panic_display(&message.as_str());
            }
        }
        ::core::option::Option::None => {}
    };
    #[automatically_derived]
    impl ::annals::projection::Projection<__Database> for Balances
    where
        [(); __PROJECTION_OK as usize]:,
    {
        const NAME: &'static str = "balances";
        const INTEREST: &'static [&'static [::annals::EventType]] = &[
            <__Handled0 as ::annals::Event>::TYPES,
            <__Handled1 as ::annals::Event>::TYPES,
        ];
        fn project<'__a>(
            &'__a self,
            tx: &'__a mut __Connection,
            event: &'__a ::annals::RecordedEvent,
        ) -> ::annals::handler::HandlerFuture<'__a> {
            match ::annals::handler::route(
                <Self as ::annals::projection::Projection<__Database>>::INTEREST,
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
                                ::annals::BoxError,
                            > = {
                                let returned = Self::on_account(
                                        self,
                                        <__Agreed0 as ::annals::__private::SameConnection<
                                            __Connection,
                                        >>::same(tx),
                                        &decoded,
                                        &meta,
                                    )
                                    .await;
                                ::annals::__private::result_outcome(returned)
                            };
                            outcome.map_err(::annals::handler::HandlerError::Failed)?;
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
                                ::annals::BoxError,
                            > = {
                                Self::on_audit(
                                        self,
                                        <__Agreed1 as ::annals::__private::SameConnection<
                                            __Connection,
                                        >>::same(tx),
                                        &decoded,
                                    )
                                    .await;
                                ::core::result::Result::<(), ::annals::BoxError>::Ok(())
                            };
                            outcome.map_err(::annals::handler::HandlerError::Failed)?;
                        }
                        ::core::result::Result::Ok(())
                    })
                }
                _ => {
                    let _ = tx;
                    ::std::boxed::Box::pin(
                        ::annals::__private::ready(::core::result::Result::Ok(())),
                    )
                }
            }
        }
        fn reset<'__a>(
            &'__a self,
            tx: &'__a mut __Connection,
        ) -> ::core::pin::Pin<
            ::std::boxed::Box<
                dyn ::core::future::Future<
                    Output = ::core::result::Result<(), ::annals::BoxError>,
                > + ::core::marker::Send + '__a,
            >,
        > {
            ::std::boxed::Box::pin(async move {
                let returned = Self::clear(
                        self,
                        <__Agreed2 as ::annals::__private::SameConnection<
                            __Connection,
                        >>::same(tx),
                    )
                    .await;
                ::annals::__private::result_outcome(returned)
            })
        }
    }
    #[allow(non_upper_case_globals)]
    const _: () = {
        static __INVENTORY: ::inventory::Node = ::inventory::Node {
            value: &{
                ::annals::handler::HandlerRegistration {
                    name: "balances",
                    type_name: "projection::Balances",
                    location: "tests/expand/projection.rs:11",
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
