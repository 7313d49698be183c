use annals::upcaster;
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
        value: ::annals::__private::serde_json::Value,
    ) -> ::core::result::Result<
        ::annals::__private::serde_json::Value,
        ::annals::BoxError,
    > {
        let old = ::annals::__private::serde_json::from_value::<DepositedV1>(value)?;
        let new = deposited_gains_a_currency(old)
            .map_err(|e| -> ::annals::BoxError { ::core::convert::Into::into(e) })?;
        ::core::result::Result::Ok(::annals::__private::serde_json::to_value(new)?)
    }
    #[allow(non_upper_case_globals)]
    const _: () = {
        static __INVENTORY: ::inventory::Node = ::inventory::Node {
            value: &{
                ::annals::upcast::Upcaster {
                    from_type: "Deposited",
                    from_version: 1u32,
                    to_type: "Deposited",
                    to_version: 2u32,
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
fn main() {}
