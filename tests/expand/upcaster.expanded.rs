use annals::{EventMeta, upcaster};
/// Stands in for an `#[event]` enum.
enum AccountEvent {
    Debited { cents: u64 },
    FeeCharged { cents: u64 },
}
struct DepositedV1 {
    amount: u64,
}
struct DepositedV2 {
    amount: u64,
    currency: String,
}
fn deposited_gains_a_currency(old: DepositedV1) -> Result<DepositedV2, String> {
    Ok(DepositedV2 {
        amount: old.amount,
        currency: "EUR".into(),
    })
}
const _: () = {
    fn __annals_upcast(
        payload: &::annals::Payload,
        _meta: &::annals::handler::EventMeta<'_>,
    ) -> ::core::result::Result<
        ::annals::upcast::Decoded<::annals::upcast::StoredShape>,
        ::annals::BoxError,
    > {
        let old = ::annals::__private::serde_json::from_str::<
            DepositedV1,
        >(::annals::Payload::as_str(payload))?;
        let new = deposited_gains_a_currency(old)
            .map_err(|e| -> ::annals::BoxError { ::core::convert::Into::into(e) })?;
        ::core::result::Result::Ok(
            ::annals::__private::payload_shapes("Deposited", 2u32, [new])?,
        )
    }
    #[allow(non_upper_case_globals)]
    const _: () = {
        static __INVENTORY: ::inventory::Node = ::inventory::Node {
            value: &{
                ::annals::upcast::Upcaster {
                    from_type: "Deposited",
                    from_version: 1u32,
                    to: &[
                        ::annals::EventType {
                            name: "Deposited",
                            version: 2u32,
                        },
                    ],
                    to_events: false,
                    name: "upcaster::deposited_gains_a_currency",
                    step: __annals_upcast,
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
struct TransferredV1 {
    cents: u64,
    fee: u64,
}
fn transfer_splits(old: TransferredV1, meta: &EventMeta) -> Vec<AccountEvent> {
    let _ = meta;
    ::alloc::boxed::box_assume_init_into_vec_unsafe(
        ::alloc::intrinsics::write_box_via_move(
            ::alloc::boxed::Box::new_uninit(),
            [
                AccountEvent::Debited {
                    cents: old.cents,
                },
                AccountEvent::FeeCharged {
                    cents: old.fee,
                },
            ],
        ),
    )
}
const _: () = {
    fn __annals_upcast(
        payload: &::annals::Payload,
        meta: &::annals::handler::EventMeta<'_>,
    ) -> ::core::result::Result<
        ::annals::upcast::Decoded<::annals::upcast::StoredShape>,
        ::annals::BoxError,
    > {
        let old = ::annals::__private::serde_json::from_str::<
            TransferredV1,
        >(::annals::Payload::as_str(payload))?;
        let new = transfer_splits(old, meta);
        ::core::result::Result::Ok(
            <AccountEvent as ::annals::__private::EventTarget>::shapes(new)?,
        )
    }
    #[allow(non_upper_case_globals)]
    const _: () = {
        static __INVENTORY: ::inventory::Node = ::inventory::Node {
            value: &{
                ::annals::upcast::Upcaster {
                    from_type: "Transferred",
                    from_version: 1u32,
                    to: <AccountEvent as ::annals::__private::EventTarget>::TYPES,
                    to_events: true,
                    name: "upcaster::transfer_splits",
                    step: __annals_upcast,
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
