use annals::aggregate;
pub enum AccountEvent {}
pub struct Account {
    balance: u64,
}
#[automatically_derived]
impl ::core::default::Default for Account {
    #[inline]
    fn default() -> Account {
        Account {
            balance: ::core::default::Default::default(),
        }
    }
}
const _: () = {
    #[automatically_derived]
    impl ::annals::Aggregate for Account {
        const TYPE: &'static str = "Account";
        type Event = AccountEvent;
        fn apply(&mut self, event: &Self::Event) {
            <Self as ::annals::__private::ApplyEvents>::apply_event(self, event)
        }
    }
    #[allow(non_upper_case_globals)]
    const _: () = {
        static __INVENTORY: ::inventory::Node = ::inventory::Node {
            value: &{
                ::annals::AggregateRegistration {
                    name: "Account",
                    rust_type: "aggregate_struct::Account",
                    event_types: <AccountEvent as ::annals::Event>::TYPES,
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
