use annals::aggregate;
pub struct Account {
    balance: u64,
}
pub enum AccountEvent {
    Deposited { amount: u64 },
}
pub struct DepositMoney {
    amount: u64,
}
pub struct OpenAccount;
pub struct Clock;
pub struct AccountError;
#[automatically_derived]
impl ::core::fmt::Debug for AccountError {
    #[inline]
    fn fmt(&self, f: &mut ::core::fmt::Formatter) -> ::core::fmt::Result {
        ::core::fmt::Formatter::write_str(f, "AccountError")
    }
}
impl Account {
    fn deposit(&self, cmd: DepositMoney) -> AccountEvent {
        AccountEvent::Deposited {
            amount: cmd.amount,
        }
    }
    async fn open(
        &self,
        _cmd: OpenAccount,
        _clock: &Clock,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        Ok(Vec::new())
    }
    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Deposited { amount } => self.balance += amount,
        }
    }
}
const _: () = {
    #[automatically_derived]
    impl ::annals::Handles<DepositMoney> for Account {
        type Error = <AccountEvent as ::annals::HandlerOutput<
            <Account as ::annals::Aggregate>::Event,
        >>::Error;
        type Services = ();
        const HANDLER: &'static str = "deposit";
        #[allow(clippy::manual_async_fn)]
        fn handle<'__a>(
            &'__a self,
            command: DepositMoney,
            services: &'__a Self::Services,
        ) -> impl ::core::future::Future<
            Output = ::core::result::Result<
                ::std::vec::Vec<<Account as ::annals::Aggregate>::Event>,
                Self::Error,
            >,
        > + ::core::marker::Send + '__a {
            let _ = &services;
            ::annals::__private::ready(
                <AccountEvent as ::annals::HandlerOutput<
                    <Account as ::annals::Aggregate>::Event,
                >>::into_result(Self::deposit(self, command)),
            )
        }
    }
    #[allow(non_upper_case_globals)]
    const _: () = {
        static __INVENTORY: ::inventory::Node = ::inventory::Node {
            value: &{
                ::annals::CommandRoute {
                    command: <DepositMoney as ::annals::Command>::NAME,
                    rust_type: "DepositMoney",
                    aggregate: <Account as ::annals::Aggregate>::TYPE,
                    handler: "deposit",
                    dispatch_json: ::annals::__private::dispatch_json_via::<
                        DepositMoney,
                        Account,
                    >,
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
    #[automatically_derived]
    impl ::annals::Handles<OpenAccount> for Account {
        type Error = <Result<
            Vec<AccountEvent>,
            AccountError,
        > as ::annals::HandlerOutput<<Account as ::annals::Aggregate>::Event>>::Error;
        type Services = Clock;
        const HANDLER: &'static str = "open";
        #[allow(clippy::manual_async_fn)]
        fn handle<'__a>(
            &'__a self,
            command: OpenAccount,
            services: &'__a Self::Services,
        ) -> impl ::core::future::Future<
            Output = ::core::result::Result<
                ::std::vec::Vec<<Account as ::annals::Aggregate>::Event>,
                Self::Error,
            >,
        > + ::core::marker::Send + '__a {
            async move {
                <Result<
                    Vec<AccountEvent>,
                    AccountError,
                > as ::annals::HandlerOutput<
                    <Account as ::annals::Aggregate>::Event,
                >>::into_result(Self::open(self, command, services).await)
            }
        }
    }
    #[allow(non_upper_case_globals)]
    const _: () = {
        static __INVENTORY: ::inventory::Node = ::inventory::Node {
            value: &{
                ::annals::CommandRoute {
                    command: <OpenAccount as ::annals::Command>::NAME,
                    rust_type: "OpenAccount",
                    aggregate: <Account as ::annals::Aggregate>::TYPE,
                    handler: "open",
                    dispatch_json: ::annals::__private::dispatch_json_via::<
                        OpenAccount,
                        Account,
                    >,
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
    #[automatically_derived]
    impl ::annals::__private::ApplyEvents for Account {
        fn apply_event(&mut self, event: &<Account as ::annals::Aggregate>::Event) {
            Self::apply(self, event)
        }
    }
};
fn main() {}
