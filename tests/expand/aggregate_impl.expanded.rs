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
    const __AGGREGATE_OK: bool = <Account as ::annals::__private::AggregateDeclared>::OK;
    type __Aggregate = ::annals::__private::Checked<Account, { __AGGREGATE_OK }>;
    const _: () = {
        const __OUTPUT_OK: bool = ::annals::__private::handler_output::<
            AccountEvent,
            <__Aggregate as ::annals::Aggregate>::Event,
        >();
        type __Handled = DepositMoney;
        const __IS_COMMAND: bool = <__Handled as ::annals::__private::CommandDeclared>::OK;
        type __Command = ::annals::__private::Checked<__Handled, { __IS_COMMAND }>;
        const __COMMAND_OK: bool = ::annals::__private::command_for::<
            __Command,
            __Aggregate,
        >();
        #[automatically_derived]
        impl ::annals::Handles<__Handled> for Account
        where
            [(); __AGGREGATE_OK as usize]:,
            [(); __COMMAND_OK as usize]:,
        {
            type Error = <AccountEvent as ::annals::__private::Output<
                <__Aggregate as ::annals::Aggregate>::Event,
                { __OUTPUT_OK },
            >>::Error;
            type Services = ();
            const HANDLER: &'static str = "deposit";
            #[allow(clippy::manual_async_fn)]
            fn handle<'__a>(
                &'__a self,
                command: __Handled,
                services: &'__a Self::Services,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<
                    ::std::vec::Vec<<__Aggregate as ::annals::Aggregate>::Event>,
                    Self::Error,
                >,
            > + ::core::marker::Send + '__a {
                let _ = &services;
                ::annals::__private::ready(
                    <AccountEvent as ::annals::__private::Output<
                        <__Aggregate as ::annals::Aggregate>::Event,
                        { __OUTPUT_OK },
                    >>::into_result(Self::deposit(self, command)),
                )
            }
        }
        #[allow(non_upper_case_globals)]
        const _: () = {
            static __INVENTORY: ::inventory::Node = ::inventory::Node {
                value: &{
                    ::annals::CommandRoute {
                        command: <__Command as ::annals::Command>::NAME,
                        rust_type: "DepositMoney",
                        aggregate: <__Aggregate as ::annals::Aggregate>::TYPE,
                        handler: "deposit",
                        dispatch_json: <__Command as ::annals::__private::Route<
                            __Aggregate,
                            { __COMMAND_OK },
                        >>::DISPATCH_JSON,
                    }
                },
                next: ::inventory::__private::UnsafeCell::new(
                    ::inventory::__private::Option::None,
                ),
            };
            #[link_section = ".text.startup"]
            unsafe extern "C" fn __ctor() {
                unsafe {
                    ::inventory::ErasedNode::submit(__INVENTORY.value, &__INVENTORY)
                }
            }
            #[used]
            #[link_section = ".init_array"]
            static __CTOR: unsafe extern "C" fn() = __ctor;
        };
    };
    const _: () = {
        const __OUTPUT_OK: bool = ::annals::__private::handler_events::<
            Vec<AccountEvent>,
            <__Aggregate as ::annals::Aggregate>::Event,
        >() & ::annals::__private::domain_error::<AccountError>();
        type __Handled = OpenAccount;
        const __IS_COMMAND: bool = <__Handled as ::annals::__private::CommandDeclared>::OK;
        type __Command = ::annals::__private::Checked<__Handled, { __IS_COMMAND }>;
        const __COMMAND_OK: bool = ::annals::__private::command_for::<
            __Command,
            __Aggregate,
        >();
        #[automatically_derived]
        impl ::annals::Handles<__Handled> for Account
        where
            [(); __AGGREGATE_OK as usize]:,
            [(); __COMMAND_OK as usize]:,
        {
            type Error = <Result<
                Vec<AccountEvent>,
                AccountError,
            > as ::annals::__private::Output<
                <__Aggregate as ::annals::Aggregate>::Event,
                { __OUTPUT_OK },
            >>::Error;
            type Services = Clock;
            const HANDLER: &'static str = "open";
            #[allow(clippy::manual_async_fn)]
            fn handle<'__a>(
                &'__a self,
                command: __Handled,
                services: &'__a Self::Services,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<
                    ::std::vec::Vec<<__Aggregate as ::annals::Aggregate>::Event>,
                    Self::Error,
                >,
            > + ::core::marker::Send + '__a {
                async move {
                    <Result<
                        Vec<AccountEvent>,
                        AccountError,
                    > as ::annals::__private::Output<
                        <__Aggregate as ::annals::Aggregate>::Event,
                        { __OUTPUT_OK },
                    >>::into_result(Self::open(self, command, services).await)
                }
            }
        }
        #[allow(non_upper_case_globals)]
        const _: () = {
            static __INVENTORY: ::inventory::Node = ::inventory::Node {
                value: &{
                    ::annals::CommandRoute {
                        command: <__Command as ::annals::Command>::NAME,
                        rust_type: "OpenAccount",
                        aggregate: <__Aggregate as ::annals::Aggregate>::TYPE,
                        handler: "open",
                        dispatch_json: <__Command as ::annals::__private::Route<
                            __Aggregate,
                            { __COMMAND_OK },
                        >>::DISPATCH_JSON,
                    }
                },
                next: ::inventory::__private::UnsafeCell::new(
                    ::inventory::__private::Option::None,
                ),
            };
            #[link_section = ".text.startup"]
            unsafe extern "C" fn __ctor() {
                unsafe {
                    ::inventory::ErasedNode::submit(__INVENTORY.value, &__INVENTORY)
                }
            }
            #[used]
            #[link_section = ".init_array"]
            static __CTOR: unsafe extern "C" fn() = __ctor;
        };
    };
    #[automatically_derived]
    impl ::annals::__private::ApplyEvents for Account
    where
        [(); __AGGREGATE_OK as usize]:,
    {
        fn apply_event(&mut self, event: &<Self as ::annals::Aggregate>::Event) {
            Self::apply(self, event)
        }
    }
};
fn main() {}
