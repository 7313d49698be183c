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
    type __Events = AccountEvent;
    const __EVENTS_OK: bool = ::annals::__private::is_event::<__Events>();
    const __DEFAULT_OK: bool = ::annals::__private::state_default::<Account>();
    const __SEND_OK: bool = ::annals::__private::state_send::<Account>();
    type __Sendable = ::annals::__private::Checked<Account, { __SEND_OK }>;
    const __STATE_OK: bool = __DEFAULT_OK
        & ::annals::__private::state_sync::<__Sendable>();
    #[automatically_derived]
    impl ::annals::__private::AggregateDeclared for Account {
        const OK: bool = __STATE_OK;
    }
    #[automatically_derived]
    impl ::annals::Aggregate for Account
    where
        [(); __STATE_OK as usize]:,
    {
        const TYPE: &'static str = "Account";
        type Event = ::annals::__private::Checked<__Events, { __EVENTS_OK }>;
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
                    event_types: ::annals::__private::event_types::<Account>(),
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
