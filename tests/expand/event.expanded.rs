use annals::event;
#[serde(crate = "::annals::__private::serde")]
pub enum AccountEvent {
    Opened { owner: String },
    MoneyDeposited { amount: u64 },
    Noted(String),
    Closed,
}
#[automatically_derived]
impl ::core::clone::Clone for AccountEvent {
    #[inline]
    fn clone(&self) -> AccountEvent {
        match self {
            AccountEvent::Opened { owner: __self_0 } => {
                AccountEvent::Opened {
                    owner: ::core::clone::Clone::clone(__self_0),
                }
            }
            AccountEvent::MoneyDeposited { amount: __self_0 } => {
                AccountEvent::MoneyDeposited {
                    amount: ::core::clone::Clone::clone(__self_0),
                }
            }
            AccountEvent::Noted(__self_0) => {
                AccountEvent::Noted(::core::clone::Clone::clone(__self_0))
            }
            AccountEvent::Closed => AccountEvent::Closed,
        }
    }
}
#[automatically_derived]
impl ::core::fmt::Debug for AccountEvent {
    #[inline]
    fn fmt(&self, f: &mut ::core::fmt::Formatter) -> ::core::fmt::Result {
        match self {
            AccountEvent::Opened { owner: __self_0 } => {
                ::core::fmt::Formatter::debug_struct_field1_finish(
                    f,
                    "Opened",
                    "owner",
                    &__self_0,
                )
            }
            AccountEvent::MoneyDeposited { amount: __self_0 } => {
                ::core::fmt::Formatter::debug_struct_field1_finish(
                    f,
                    "MoneyDeposited",
                    "amount",
                    &__self_0,
                )
            }
            AccountEvent::Noted(__self_0) => {
                ::core::fmt::Formatter::debug_tuple_field1_finish(f, "Noted", &__self_0)
            }
            AccountEvent::Closed => ::core::fmt::Formatter::write_str(f, "Closed"),
        }
    }
}
#[automatically_derived]
impl ::core::marker::StructuralPartialEq for AccountEvent {}
#[automatically_derived]
impl ::core::cmp::PartialEq for AccountEvent {
    #[inline]
    fn eq(&self, other: &AccountEvent) -> bool {
        let __self_discr = ::core::intrinsics::discriminant_value(self);
        let __arg1_discr = ::core::intrinsics::discriminant_value(other);
        __self_discr == __arg1_discr
            && match (self, other) {
                (
                    AccountEvent::Opened { owner: __self_0 },
                    AccountEvent::Opened { owner: __arg1_0 },
                ) => __self_0 == __arg1_0,
                (
                    AccountEvent::MoneyDeposited { amount: __self_0 },
                    AccountEvent::MoneyDeposited { amount: __arg1_0 },
                ) => __self_0 == __arg1_0,
                (AccountEvent::Noted(__self_0), AccountEvent::Noted(__arg1_0)) => {
                    __self_0 == __arg1_0
                }
                _ => true,
            }
    }
}
#[doc(hidden)]
#[allow(
    non_upper_case_globals,
    unused_attributes,
    unused_qualifications,
    clippy::absolute_paths,
)]
const _: () = {
    use ::annals::__private::serde as _serde;
    #[automatically_derived]
    impl _serde::Serialize for AccountEvent {
        fn serialize<__S>(
            &self,
            __serializer: __S,
        ) -> _serde::__private229::Result<__S::Ok, __S::Error>
        where
            __S: _serde::Serializer,
        {
            match *self {
                AccountEvent::Opened { ref owner } => {
                    let mut __serde_state = _serde::Serializer::serialize_struct_variant(
                        __serializer,
                        "AccountEvent",
                        0u32,
                        "Opened",
                        0 + 1,
                    )?;
                    _serde::ser::SerializeStructVariant::serialize_field(
                        &mut __serde_state,
                        "owner",
                        owner,
                    )?;
                    _serde::ser::SerializeStructVariant::end(__serde_state)
                }
                AccountEvent::MoneyDeposited { ref amount } => {
                    let mut __serde_state = _serde::Serializer::serialize_struct_variant(
                        __serializer,
                        "AccountEvent",
                        1u32,
                        "MoneyDeposited",
                        0 + 1,
                    )?;
                    _serde::ser::SerializeStructVariant::serialize_field(
                        &mut __serde_state,
                        "amount",
                        amount,
                    )?;
                    _serde::ser::SerializeStructVariant::end(__serde_state)
                }
                AccountEvent::Noted(ref __field0) => {
                    _serde::Serializer::serialize_newtype_variant(
                        __serializer,
                        "AccountEvent",
                        2u32,
                        "Noted",
                        __field0,
                    )
                }
                AccountEvent::Closed => {
                    _serde::Serializer::serialize_unit_variant(
                        __serializer,
                        "AccountEvent",
                        3u32,
                        "Closed",
                    )
                }
            }
        }
    }
};
#[doc(hidden)]
#[allow(
    non_upper_case_globals,
    unused_attributes,
    unused_qualifications,
    clippy::absolute_paths,
)]
const _: () = {
    use ::annals::__private::serde as _serde;
    #[automatically_derived]
    impl<'de> _serde::Deserialize<'de> for AccountEvent {
        fn deserialize<__D>(
            __deserializer: __D,
        ) -> _serde::__private229::Result<Self, __D::Error>
        where
            __D: _serde::Deserializer<'de>,
        {
            #[allow(non_camel_case_types)]
            #[doc(hidden)]
            enum __Field {
                __field0,
                __field1,
                __field2,
                __field3,
            }
            #[doc(hidden)]
            struct __FieldVisitor;
            #[automatically_derived]
            impl<'de> _serde::de::Visitor<'de> for __FieldVisitor {
                type Value = __Field;
                fn expecting(
                    &self,
                    __formatter: &mut _serde::__private229::Formatter,
                ) -> _serde::__private229::fmt::Result {
                    _serde::__private229::Formatter::write_str(
                        __formatter,
                        "variant identifier",
                    )
                }
                fn visit_u64<__E>(
                    self,
                    __value: u64,
                ) -> _serde::__private229::Result<Self::Value, __E>
                where
                    __E: _serde::de::Error,
                {
                    match __value {
                        0u64 => _serde::__private229::Ok(__Field::__field0),
                        1u64 => _serde::__private229::Ok(__Field::__field1),
                        2u64 => _serde::__private229::Ok(__Field::__field2),
                        3u64 => _serde::__private229::Ok(__Field::__field3),
                        _ => {
                            _serde::__private229::Err(
                                _serde::de::Error::invalid_value(
                                    _serde::de::Unexpected::Unsigned(__value),
                                    &"variant index 0 <= i < 4",
                                ),
                            )
                        }
                    }
                }
                fn visit_str<__E>(
                    self,
                    __value: &str,
                ) -> _serde::__private229::Result<Self::Value, __E>
                where
                    __E: _serde::de::Error,
                {
                    match __value {
                        "Opened" => _serde::__private229::Ok(__Field::__field0),
                        "MoneyDeposited" => _serde::__private229::Ok(__Field::__field1),
                        "Noted" => _serde::__private229::Ok(__Field::__field2),
                        "Closed" => _serde::__private229::Ok(__Field::__field3),
                        _ => {
                            _serde::__private229::Err(
                                _serde::de::Error::unknown_variant(__value, VARIANTS),
                            )
                        }
                    }
                }
                fn visit_bytes<__E>(
                    self,
                    __value: &[u8],
                ) -> _serde::__private229::Result<Self::Value, __E>
                where
                    __E: _serde::de::Error,
                {
                    match __value {
                        b"Opened" => _serde::__private229::Ok(__Field::__field0),
                        b"MoneyDeposited" => _serde::__private229::Ok(__Field::__field1),
                        b"Noted" => _serde::__private229::Ok(__Field::__field2),
                        b"Closed" => _serde::__private229::Ok(__Field::__field3),
                        _ => {
                            let __value = &_serde::__private229::from_utf8_lossy(
                                __value,
                            );
                            _serde::__private229::Err(
                                _serde::de::Error::unknown_variant(__value, VARIANTS),
                            )
                        }
                    }
                }
            }
            #[automatically_derived]
            impl<'de> _serde::Deserialize<'de> for __Field {
                #[inline]
                fn deserialize<__D>(
                    __deserializer: __D,
                ) -> _serde::__private229::Result<Self, __D::Error>
                where
                    __D: _serde::Deserializer<'de>,
                {
                    _serde::Deserializer::deserialize_identifier(
                        __deserializer,
                        __FieldVisitor,
                    )
                }
            }
            #[doc(hidden)]
            struct __Visitor<'de> {
                marker: _serde::__private229::PhantomData<AccountEvent>,
                lifetime: _serde::__private229::PhantomData<&'de ()>,
            }
            #[automatically_derived]
            impl<'de> _serde::de::Visitor<'de> for __Visitor<'de> {
                type Value = AccountEvent;
                fn expecting(
                    &self,
                    __formatter: &mut _serde::__private229::Formatter,
                ) -> _serde::__private229::fmt::Result {
                    _serde::__private229::Formatter::write_str(
                        __formatter,
                        "enum AccountEvent",
                    )
                }
                fn visit_enum<__A>(
                    self,
                    __data: __A,
                ) -> _serde::__private229::Result<Self::Value, __A::Error>
                where
                    __A: _serde::de::EnumAccess<'de>,
                {
                    match _serde::de::EnumAccess::variant(__data) {
                        _serde::__private229::Ok((__Field::__field0, __variant)) => {
                            #[allow(non_camel_case_types)]
                            #[doc(hidden)]
                            enum __Field {
                                __field0,
                                __ignore,
                            }
                            #[doc(hidden)]
                            struct __FieldVisitor;
                            #[automatically_derived]
                            impl<'de> _serde::de::Visitor<'de> for __FieldVisitor {
                                type Value = __Field;
                                fn expecting(
                                    &self,
                                    __formatter: &mut _serde::__private229::Formatter,
                                ) -> _serde::__private229::fmt::Result {
                                    _serde::__private229::Formatter::write_str(
                                        __formatter,
                                        "field identifier",
                                    )
                                }
                                fn visit_u64<__E>(
                                    self,
                                    __value: u64,
                                ) -> _serde::__private229::Result<Self::Value, __E>
                                where
                                    __E: _serde::de::Error,
                                {
                                    match __value {
                                        0u64 => _serde::__private229::Ok(__Field::__field0),
                                        _ => _serde::__private229::Ok(__Field::__ignore),
                                    }
                                }
                                fn visit_str<__E>(
                                    self,
                                    __value: &str,
                                ) -> _serde::__private229::Result<Self::Value, __E>
                                where
                                    __E: _serde::de::Error,
                                {
                                    match __value {
                                        "owner" => _serde::__private229::Ok(__Field::__field0),
                                        _ => _serde::__private229::Ok(__Field::__ignore),
                                    }
                                }
                                fn visit_bytes<__E>(
                                    self,
                                    __value: &[u8],
                                ) -> _serde::__private229::Result<Self::Value, __E>
                                where
                                    __E: _serde::de::Error,
                                {
                                    match __value {
                                        b"owner" => _serde::__private229::Ok(__Field::__field0),
                                        _ => _serde::__private229::Ok(__Field::__ignore),
                                    }
                                }
                            }
                            #[automatically_derived]
                            impl<'de> _serde::Deserialize<'de> for __Field {
                                #[inline]
                                fn deserialize<__D>(
                                    __deserializer: __D,
                                ) -> _serde::__private229::Result<Self, __D::Error>
                                where
                                    __D: _serde::Deserializer<'de>,
                                {
                                    _serde::Deserializer::deserialize_identifier(
                                        __deserializer,
                                        __FieldVisitor,
                                    )
                                }
                            }
                            #[doc(hidden)]
                            struct __Visitor<'de> {
                                marker: _serde::__private229::PhantomData<AccountEvent>,
                                lifetime: _serde::__private229::PhantomData<&'de ()>,
                            }
                            #[automatically_derived]
                            impl<'de> _serde::de::Visitor<'de> for __Visitor<'de> {
                                type Value = AccountEvent;
                                fn expecting(
                                    &self,
                                    __formatter: &mut _serde::__private229::Formatter,
                                ) -> _serde::__private229::fmt::Result {
                                    _serde::__private229::Formatter::write_str(
                                        __formatter,
                                        "struct variant AccountEvent::Opened",
                                    )
                                }
                                #[inline]
                                fn visit_seq<__A>(
                                    self,
                                    mut __seq: __A,
                                ) -> _serde::__private229::Result<Self::Value, __A::Error>
                                where
                                    __A: _serde::de::SeqAccess<'de>,
                                {
                                    let __field0 = match _serde::de::SeqAccess::next_element::<
                                        String,
                                    >(&mut __seq)? {
                                        _serde::__private229::Some(__value) => __value,
                                        _serde::__private229::None => {
                                            return _serde::__private229::Err(
                                                _serde::de::Error::invalid_length(
                                                    0usize,
                                                    &"struct variant AccountEvent::Opened with 1 element",
                                                ),
                                            );
                                        }
                                    };
                                    _serde::__private229::Ok(AccountEvent::Opened {
                                        owner: __field0,
                                    })
                                }
                                #[inline]
                                fn visit_map<__A>(
                                    self,
                                    mut __map: __A,
                                ) -> _serde::__private229::Result<Self::Value, __A::Error>
                                where
                                    __A: _serde::de::MapAccess<'de>,
                                {
                                    let mut __field0: _serde::__private229::Option<String> = _serde::__private229::None;
                                    while let _serde::__private229::Some(__key) = _serde::de::MapAccess::next_key::<
                                        __Field,
                                    >(&mut __map)? {
                                        match __key {
                                            __Field::__field0 => {
                                                if _serde::__private229::Option::is_some(&__field0) {
                                                    return _serde::__private229::Err(
                                                        <__A::Error as _serde::de::Error>::duplicate_field("owner"),
                                                    );
                                                }
                                                __field0 = _serde::__private229::Some(
                                                    _serde::de::MapAccess::next_value::<String>(&mut __map)?,
                                                );
                                            }
                                            _ => {
                                                let _ = _serde::de::MapAccess::next_value::<
                                                    _serde::de::IgnoredAny,
                                                >(&mut __map)?;
                                            }
                                        }
                                    }
                                    let __field0 = match __field0 {
                                        _serde::__private229::Some(__field0) => __field0,
                                        _serde::__private229::None => {
                                            _serde::__private229::de::missing_field("owner")?
                                        }
                                    };
                                    _serde::__private229::Ok(AccountEvent::Opened {
                                        owner: __field0,
                                    })
                                }
                            }
                            #[doc(hidden)]
                            const FIELDS: &'static [&'static str] = &["owner"];
                            _serde::de::VariantAccess::struct_variant(
                                __variant,
                                FIELDS,
                                __Visitor {
                                    marker: _serde::__private229::PhantomData::<AccountEvent>,
                                    lifetime: _serde::__private229::PhantomData,
                                },
                            )
                        }
                        _serde::__private229::Ok((__Field::__field1, __variant)) => {
                            #[allow(non_camel_case_types)]
                            #[doc(hidden)]
                            enum __Field {
                                __field0,
                                __ignore,
                            }
                            #[doc(hidden)]
                            struct __FieldVisitor;
                            #[automatically_derived]
                            impl<'de> _serde::de::Visitor<'de> for __FieldVisitor {
                                type Value = __Field;
                                fn expecting(
                                    &self,
                                    __formatter: &mut _serde::__private229::Formatter,
                                ) -> _serde::__private229::fmt::Result {
                                    _serde::__private229::Formatter::write_str(
                                        __formatter,
                                        "field identifier",
                                    )
                                }
                                fn visit_u64<__E>(
                                    self,
                                    __value: u64,
                                ) -> _serde::__private229::Result<Self::Value, __E>
                                where
                                    __E: _serde::de::Error,
                                {
                                    match __value {
                                        0u64 => _serde::__private229::Ok(__Field::__field0),
                                        _ => _serde::__private229::Ok(__Field::__ignore),
                                    }
                                }
                                fn visit_str<__E>(
                                    self,
                                    __value: &str,
                                ) -> _serde::__private229::Result<Self::Value, __E>
                                where
                                    __E: _serde::de::Error,
                                {
                                    match __value {
                                        "amount" => _serde::__private229::Ok(__Field::__field0),
                                        _ => _serde::__private229::Ok(__Field::__ignore),
                                    }
                                }
                                fn visit_bytes<__E>(
                                    self,
                                    __value: &[u8],
                                ) -> _serde::__private229::Result<Self::Value, __E>
                                where
                                    __E: _serde::de::Error,
                                {
                                    match __value {
                                        b"amount" => _serde::__private229::Ok(__Field::__field0),
                                        _ => _serde::__private229::Ok(__Field::__ignore),
                                    }
                                }
                            }
                            #[automatically_derived]
                            impl<'de> _serde::Deserialize<'de> for __Field {
                                #[inline]
                                fn deserialize<__D>(
                                    __deserializer: __D,
                                ) -> _serde::__private229::Result<Self, __D::Error>
                                where
                                    __D: _serde::Deserializer<'de>,
                                {
                                    _serde::Deserializer::deserialize_identifier(
                                        __deserializer,
                                        __FieldVisitor,
                                    )
                                }
                            }
                            #[doc(hidden)]
                            struct __Visitor<'de> {
                                marker: _serde::__private229::PhantomData<AccountEvent>,
                                lifetime: _serde::__private229::PhantomData<&'de ()>,
                            }
                            #[automatically_derived]
                            impl<'de> _serde::de::Visitor<'de> for __Visitor<'de> {
                                type Value = AccountEvent;
                                fn expecting(
                                    &self,
                                    __formatter: &mut _serde::__private229::Formatter,
                                ) -> _serde::__private229::fmt::Result {
                                    _serde::__private229::Formatter::write_str(
                                        __formatter,
                                        "struct variant AccountEvent::MoneyDeposited",
                                    )
                                }
                                #[inline]
                                fn visit_seq<__A>(
                                    self,
                                    mut __seq: __A,
                                ) -> _serde::__private229::Result<Self::Value, __A::Error>
                                where
                                    __A: _serde::de::SeqAccess<'de>,
                                {
                                    let __field0 = match _serde::de::SeqAccess::next_element::<
                                        u64,
                                    >(&mut __seq)? {
                                        _serde::__private229::Some(__value) => __value,
                                        _serde::__private229::None => {
                                            return _serde::__private229::Err(
                                                _serde::de::Error::invalid_length(
                                                    0usize,
                                                    &"struct variant AccountEvent::MoneyDeposited with 1 element",
                                                ),
                                            );
                                        }
                                    };
                                    _serde::__private229::Ok(AccountEvent::MoneyDeposited {
                                        amount: __field0,
                                    })
                                }
                                #[inline]
                                fn visit_map<__A>(
                                    self,
                                    mut __map: __A,
                                ) -> _serde::__private229::Result<Self::Value, __A::Error>
                                where
                                    __A: _serde::de::MapAccess<'de>,
                                {
                                    let mut __field0: _serde::__private229::Option<u64> = _serde::__private229::None;
                                    while let _serde::__private229::Some(__key) = _serde::de::MapAccess::next_key::<
                                        __Field,
                                    >(&mut __map)? {
                                        match __key {
                                            __Field::__field0 => {
                                                if _serde::__private229::Option::is_some(&__field0) {
                                                    return _serde::__private229::Err(
                                                        <__A::Error as _serde::de::Error>::duplicate_field("amount"),
                                                    );
                                                }
                                                __field0 = _serde::__private229::Some(
                                                    _serde::de::MapAccess::next_value::<u64>(&mut __map)?,
                                                );
                                            }
                                            _ => {
                                                let _ = _serde::de::MapAccess::next_value::<
                                                    _serde::de::IgnoredAny,
                                                >(&mut __map)?;
                                            }
                                        }
                                    }
                                    let __field0 = match __field0 {
                                        _serde::__private229::Some(__field0) => __field0,
                                        _serde::__private229::None => {
                                            _serde::__private229::de::missing_field("amount")?
                                        }
                                    };
                                    _serde::__private229::Ok(AccountEvent::MoneyDeposited {
                                        amount: __field0,
                                    })
                                }
                            }
                            #[doc(hidden)]
                            const FIELDS: &'static [&'static str] = &["amount"];
                            _serde::de::VariantAccess::struct_variant(
                                __variant,
                                FIELDS,
                                __Visitor {
                                    marker: _serde::__private229::PhantomData::<AccountEvent>,
                                    lifetime: _serde::__private229::PhantomData,
                                },
                            )
                        }
                        _serde::__private229::Ok((__Field::__field2, __variant)) => {
                            _serde::__private229::Result::map(
                                _serde::de::VariantAccess::newtype_variant::<
                                    String,
                                >(__variant),
                                AccountEvent::Noted,
                            )
                        }
                        _serde::__private229::Ok((__Field::__field3, __variant)) => {
                            _serde::de::VariantAccess::unit_variant(__variant)?;
                            _serde::__private229::Ok(AccountEvent::Closed)
                        }
                        _serde::__private229::Err(__err) => {
                            _serde::__private229::Err(__err)
                        }
                    }
                }
            }
            #[doc(hidden)]
            const VARIANTS: &'static [&'static str] = &[
                "Opened",
                "MoneyDeposited",
                "Noted",
                "Closed",
            ];
            _serde::Deserializer::deserialize_enum(
                __deserializer,
                "AccountEvent",
                VARIANTS,
                __Visitor {
                    marker: _serde::__private229::PhantomData::<AccountEvent>,
                    lifetime: _serde::__private229::PhantomData,
                },
            )
        }
    }
};
#[allow(non_local_definitions)]
const _: () = {
    #[automatically_derived]
    impl ::annals::Event for AccountEvent {
        const TYPES: &'static [::annals::EventType] = &[
            ::annals::EventType {
                name: "Opened",
                version: 1u32,
            },
            ::annals::EventType {
                name: "Deposited",
                version: 2u32,
            },
            ::annals::EventType {
                name: "Noted",
                version: 1u32,
            },
            ::annals::EventType {
                name: "Closed",
                version: 1u32,
            },
        ];
        const MOVED: &'static [&'static str] = &["CardLocked"];
        fn event_type(&self) -> &'static str {
            match self {
                Self::Opened { .. } => "Opened",
                Self::MoneyDeposited { .. } => "Deposited",
                Self::Noted { .. } => "Noted",
                Self::Closed { .. } => "Closed",
            }
        }
        fn event_version(&self) -> u32 {
            match self {
                Self::Opened { .. } => 1u32,
                Self::MoneyDeposited { .. } => 2u32,
                Self::Noted { .. } => 1u32,
                Self::Closed { .. } => 1u32,
            }
        }
        fn encode(
            &self,
        ) -> ::core::result::Result<
            ::annals::Payload,
            ::annals::__private::serde_json::Error,
        > {
            match self {
                Self::Opened { owner } => {
                    #[serde(crate = "::annals::__private::serde")]
                    struct __Payload<'__payload> {
                        owner: &'__payload String,
                    }
                    #[doc(hidden)]
                    #[allow(
                        non_upper_case_globals,
                        unused_attributes,
                        unused_qualifications,
                        clippy::absolute_paths,
                    )]
                    const _: () = {
                        use ::annals::__private::serde as _serde;
                        #[automatically_derived]
                        impl<'__payload> _serde::Serialize for __Payload<'__payload> {
                            fn serialize<__S>(
                                &self,
                                __serializer: __S,
                            ) -> _serde::__private229::Result<__S::Ok, __S::Error>
                            where
                                __S: _serde::Serializer,
                            {
                                let mut __serde_state = _serde::Serializer::serialize_struct(
                                    __serializer,
                                    "__Payload",
                                    false as usize + 1,
                                )?;
                                _serde::ser::SerializeStruct::serialize_field(
                                    &mut __serde_state,
                                    "owner",
                                    &self.owner,
                                )?;
                                _serde::ser::SerializeStruct::end(__serde_state)
                            }
                        }
                    };
                    ::annals::Payload::from_serialize(&__Payload { owner })
                }
                Self::MoneyDeposited { amount } => {
                    #[serde(crate = "::annals::__private::serde")]
                    struct __Payload<'__payload> {
                        amount: &'__payload u64,
                    }
                    #[doc(hidden)]
                    #[allow(
                        non_upper_case_globals,
                        unused_attributes,
                        unused_qualifications,
                        clippy::absolute_paths,
                    )]
                    const _: () = {
                        use ::annals::__private::serde as _serde;
                        #[automatically_derived]
                        impl<'__payload> _serde::Serialize for __Payload<'__payload> {
                            fn serialize<__S>(
                                &self,
                                __serializer: __S,
                            ) -> _serde::__private229::Result<__S::Ok, __S::Error>
                            where
                                __S: _serde::Serializer,
                            {
                                let mut __serde_state = _serde::Serializer::serialize_struct(
                                    __serializer,
                                    "__Payload",
                                    false as usize + 1,
                                )?;
                                _serde::ser::SerializeStruct::serialize_field(
                                    &mut __serde_state,
                                    "amount",
                                    &self.amount,
                                )?;
                                _serde::ser::SerializeStruct::end(__serde_state)
                            }
                        }
                    };
                    ::annals::Payload::from_serialize(&__Payload { amount })
                }
                Self::Noted(inner) => ::annals::Payload::from_serialize(inner),
                Self::Closed => ::annals::Payload::from_json("{}"),
            }
        }
        fn decode(
            event_type: &str,
            event_version: u32,
            payload: &::annals::Payload,
        ) -> ::core::result::Result<Self, ::annals::DecodeError> {
            match Self::__annals_decode(event_type, event_version, payload) {
                ::core::option::Option::Some(decoded) => decoded,
                ::core::option::Option::None => {
                    ::annals::upcast::decode_upcast::<
                        Self,
                    >(event_type, event_version, payload)
                }
            }
        }
        fn decode_declared(
            event_type: &str,
            event_version: u32,
            payload: &::annals::Payload,
        ) -> ::core::option::Option<
            ::core::result::Result<Self, ::annals::DecodeError>,
        > {
            Self::__annals_decode(event_type, event_version, payload)
        }
    }
    #[allow(non_upper_case_globals)]
    const _: () = {
        static __INVENTORY: ::inventory::Node = ::inventory::Node {
            value: &{
                ::annals::upcast::Upcaster {
                    from_type: "AccountCreated",
                    from_version: 1u32,
                    to: &[
                        ::annals::EventType {
                            name: "Opened",
                            version: 1u32,
                        },
                    ],
                    to_events: false,
                    name: "event::AccountEvent (rename_from AccountCreated)",
                    step: |payload, _| ::core::result::Result::Ok(
                        ::core::iter::FromIterator::from_iter([
                            ::annals::upcast::StoredShape {
                                event_type: "Opened",
                                event_version: 1u32,
                                payload: ::core::clone::Clone::clone(payload),
                            },
                        ]),
                    ),
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
    impl AccountEvent {
        /// The declared `(type, version)`s.
        fn __annals_decode(
            event_type: &str,
            event_version: u32,
            payload: &::annals::Payload,
        ) -> ::core::option::Option<
            ::core::result::Result<Self, ::annals::DecodeError>,
        > {
            let _ = &payload;
            ::core::option::Option::Some(
                match (event_type, event_version) {
                    ("Opened", 1u32) => {
                        #[serde(crate = "::annals::__private::serde")]
                        struct __Payload {
                            owner: String,
                        }
                        #[doc(hidden)]
                        #[allow(
                            non_upper_case_globals,
                            unused_attributes,
                            unused_qualifications,
                            clippy::absolute_paths,
                        )]
                        const _: () = {
                            use ::annals::__private::serde as _serde;
                            #[automatically_derived]
                            impl<'de> _serde::Deserialize<'de> for __Payload {
                                fn deserialize<__D>(
                                    __deserializer: __D,
                                ) -> _serde::__private229::Result<Self, __D::Error>
                                where
                                    __D: _serde::Deserializer<'de>,
                                {
                                    #[allow(non_camel_case_types)]
                                    #[doc(hidden)]
                                    enum __Field {
                                        __field0,
                                        __ignore,
                                    }
                                    #[doc(hidden)]
                                    struct __FieldVisitor;
                                    #[automatically_derived]
                                    impl<'de> _serde::de::Visitor<'de> for __FieldVisitor {
                                        type Value = __Field;
                                        fn expecting(
                                            &self,
                                            __formatter: &mut _serde::__private229::Formatter,
                                        ) -> _serde::__private229::fmt::Result {
                                            _serde::__private229::Formatter::write_str(
                                                __formatter,
                                                "field identifier",
                                            )
                                        }
                                        fn visit_u64<__E>(
                                            self,
                                            __value: u64,
                                        ) -> _serde::__private229::Result<Self::Value, __E>
                                        where
                                            __E: _serde::de::Error,
                                        {
                                            match __value {
                                                0u64 => _serde::__private229::Ok(__Field::__field0),
                                                _ => _serde::__private229::Ok(__Field::__ignore),
                                            }
                                        }
                                        fn visit_str<__E>(
                                            self,
                                            __value: &str,
                                        ) -> _serde::__private229::Result<Self::Value, __E>
                                        where
                                            __E: _serde::de::Error,
                                        {
                                            match __value {
                                                "owner" => _serde::__private229::Ok(__Field::__field0),
                                                _ => _serde::__private229::Ok(__Field::__ignore),
                                            }
                                        }
                                        fn visit_bytes<__E>(
                                            self,
                                            __value: &[u8],
                                        ) -> _serde::__private229::Result<Self::Value, __E>
                                        where
                                            __E: _serde::de::Error,
                                        {
                                            match __value {
                                                b"owner" => _serde::__private229::Ok(__Field::__field0),
                                                _ => _serde::__private229::Ok(__Field::__ignore),
                                            }
                                        }
                                    }
                                    #[automatically_derived]
                                    impl<'de> _serde::Deserialize<'de> for __Field {
                                        #[inline]
                                        fn deserialize<__D>(
                                            __deserializer: __D,
                                        ) -> _serde::__private229::Result<Self, __D::Error>
                                        where
                                            __D: _serde::Deserializer<'de>,
                                        {
                                            _serde::Deserializer::deserialize_identifier(
                                                __deserializer,
                                                __FieldVisitor,
                                            )
                                        }
                                    }
                                    #[doc(hidden)]
                                    struct __Visitor<'de> {
                                        marker: _serde::__private229::PhantomData<__Payload>,
                                        lifetime: _serde::__private229::PhantomData<&'de ()>,
                                    }
                                    #[automatically_derived]
                                    impl<'de> _serde::de::Visitor<'de> for __Visitor<'de> {
                                        type Value = __Payload;
                                        fn expecting(
                                            &self,
                                            __formatter: &mut _serde::__private229::Formatter,
                                        ) -> _serde::__private229::fmt::Result {
                                            _serde::__private229::Formatter::write_str(
                                                __formatter,
                                                "struct __Payload",
                                            )
                                        }
                                        #[inline]
                                        fn visit_seq<__A>(
                                            self,
                                            mut __seq: __A,
                                        ) -> _serde::__private229::Result<Self::Value, __A::Error>
                                        where
                                            __A: _serde::de::SeqAccess<'de>,
                                        {
                                            let __field0 = match _serde::de::SeqAccess::next_element::<
                                                String,
                                            >(&mut __seq)? {
                                                _serde::__private229::Some(__value) => __value,
                                                _serde::__private229::None => {
                                                    return _serde::__private229::Err(
                                                        _serde::de::Error::invalid_length(
                                                            0usize,
                                                            &"struct __Payload with 1 element",
                                                        ),
                                                    );
                                                }
                                            };
                                            _serde::__private229::Ok(__Payload { owner: __field0 })
                                        }
                                        #[inline]
                                        fn visit_map<__A>(
                                            self,
                                            mut __map: __A,
                                        ) -> _serde::__private229::Result<Self::Value, __A::Error>
                                        where
                                            __A: _serde::de::MapAccess<'de>,
                                        {
                                            let mut __field0: _serde::__private229::Option<String> = _serde::__private229::None;
                                            while let _serde::__private229::Some(__key) = _serde::de::MapAccess::next_key::<
                                                __Field,
                                            >(&mut __map)? {
                                                match __key {
                                                    __Field::__field0 => {
                                                        if _serde::__private229::Option::is_some(&__field0) {
                                                            return _serde::__private229::Err(
                                                                <__A::Error as _serde::de::Error>::duplicate_field("owner"),
                                                            );
                                                        }
                                                        __field0 = _serde::__private229::Some(
                                                            _serde::de::MapAccess::next_value::<String>(&mut __map)?,
                                                        );
                                                    }
                                                    _ => {
                                                        let _ = _serde::de::MapAccess::next_value::<
                                                            _serde::de::IgnoredAny,
                                                        >(&mut __map)?;
                                                    }
                                                }
                                            }
                                            let __field0 = match __field0 {
                                                _serde::__private229::Some(__field0) => __field0,
                                                _serde::__private229::None => {
                                                    _serde::__private229::de::missing_field("owner")?
                                                }
                                            };
                                            _serde::__private229::Ok(__Payload { owner: __field0 })
                                        }
                                    }
                                    #[doc(hidden)]
                                    const FIELDS: &'static [&'static str] = &["owner"];
                                    _serde::Deserializer::deserialize_struct(
                                        __deserializer,
                                        "__Payload",
                                        FIELDS,
                                        __Visitor {
                                            marker: _serde::__private229::PhantomData::<__Payload>,
                                            lifetime: _serde::__private229::PhantomData,
                                        },
                                    )
                                }
                            }
                        };
                        ::annals::__private::decode_payload::<
                            __Payload,
                        >(event_type, event_version, payload)
                            .map(|p| Self::Opened { owner: p.owner })
                    }
                    ("Deposited", 2u32) => {
                        #[serde(crate = "::annals::__private::serde")]
                        struct __Payload {
                            amount: u64,
                        }
                        #[doc(hidden)]
                        #[allow(
                            non_upper_case_globals,
                            unused_attributes,
                            unused_qualifications,
                            clippy::absolute_paths,
                        )]
                        const _: () = {
                            use ::annals::__private::serde as _serde;
                            #[automatically_derived]
                            impl<'de> _serde::Deserialize<'de> for __Payload {
                                fn deserialize<__D>(
                                    __deserializer: __D,
                                ) -> _serde::__private229::Result<Self, __D::Error>
                                where
                                    __D: _serde::Deserializer<'de>,
                                {
                                    #[allow(non_camel_case_types)]
                                    #[doc(hidden)]
                                    enum __Field {
                                        __field0,
                                        __ignore,
                                    }
                                    #[doc(hidden)]
                                    struct __FieldVisitor;
                                    #[automatically_derived]
                                    impl<'de> _serde::de::Visitor<'de> for __FieldVisitor {
                                        type Value = __Field;
                                        fn expecting(
                                            &self,
                                            __formatter: &mut _serde::__private229::Formatter,
                                        ) -> _serde::__private229::fmt::Result {
                                            _serde::__private229::Formatter::write_str(
                                                __formatter,
                                                "field identifier",
                                            )
                                        }
                                        fn visit_u64<__E>(
                                            self,
                                            __value: u64,
                                        ) -> _serde::__private229::Result<Self::Value, __E>
                                        where
                                            __E: _serde::de::Error,
                                        {
                                            match __value {
                                                0u64 => _serde::__private229::Ok(__Field::__field0),
                                                _ => _serde::__private229::Ok(__Field::__ignore),
                                            }
                                        }
                                        fn visit_str<__E>(
                                            self,
                                            __value: &str,
                                        ) -> _serde::__private229::Result<Self::Value, __E>
                                        where
                                            __E: _serde::de::Error,
                                        {
                                            match __value {
                                                "amount" => _serde::__private229::Ok(__Field::__field0),
                                                _ => _serde::__private229::Ok(__Field::__ignore),
                                            }
                                        }
                                        fn visit_bytes<__E>(
                                            self,
                                            __value: &[u8],
                                        ) -> _serde::__private229::Result<Self::Value, __E>
                                        where
                                            __E: _serde::de::Error,
                                        {
                                            match __value {
                                                b"amount" => _serde::__private229::Ok(__Field::__field0),
                                                _ => _serde::__private229::Ok(__Field::__ignore),
                                            }
                                        }
                                    }
                                    #[automatically_derived]
                                    impl<'de> _serde::Deserialize<'de> for __Field {
                                        #[inline]
                                        fn deserialize<__D>(
                                            __deserializer: __D,
                                        ) -> _serde::__private229::Result<Self, __D::Error>
                                        where
                                            __D: _serde::Deserializer<'de>,
                                        {
                                            _serde::Deserializer::deserialize_identifier(
                                                __deserializer,
                                                __FieldVisitor,
                                            )
                                        }
                                    }
                                    #[doc(hidden)]
                                    struct __Visitor<'de> {
                                        marker: _serde::__private229::PhantomData<__Payload>,
                                        lifetime: _serde::__private229::PhantomData<&'de ()>,
                                    }
                                    #[automatically_derived]
                                    impl<'de> _serde::de::Visitor<'de> for __Visitor<'de> {
                                        type Value = __Payload;
                                        fn expecting(
                                            &self,
                                            __formatter: &mut _serde::__private229::Formatter,
                                        ) -> _serde::__private229::fmt::Result {
                                            _serde::__private229::Formatter::write_str(
                                                __formatter,
                                                "struct __Payload",
                                            )
                                        }
                                        #[inline]
                                        fn visit_seq<__A>(
                                            self,
                                            mut __seq: __A,
                                        ) -> _serde::__private229::Result<Self::Value, __A::Error>
                                        where
                                            __A: _serde::de::SeqAccess<'de>,
                                        {
                                            let __field0 = match _serde::de::SeqAccess::next_element::<
                                                u64,
                                            >(&mut __seq)? {
                                                _serde::__private229::Some(__value) => __value,
                                                _serde::__private229::None => {
                                                    return _serde::__private229::Err(
                                                        _serde::de::Error::invalid_length(
                                                            0usize,
                                                            &"struct __Payload with 1 element",
                                                        ),
                                                    );
                                                }
                                            };
                                            _serde::__private229::Ok(__Payload { amount: __field0 })
                                        }
                                        #[inline]
                                        fn visit_map<__A>(
                                            self,
                                            mut __map: __A,
                                        ) -> _serde::__private229::Result<Self::Value, __A::Error>
                                        where
                                            __A: _serde::de::MapAccess<'de>,
                                        {
                                            let mut __field0: _serde::__private229::Option<u64> = _serde::__private229::None;
                                            while let _serde::__private229::Some(__key) = _serde::de::MapAccess::next_key::<
                                                __Field,
                                            >(&mut __map)? {
                                                match __key {
                                                    __Field::__field0 => {
                                                        if _serde::__private229::Option::is_some(&__field0) {
                                                            return _serde::__private229::Err(
                                                                <__A::Error as _serde::de::Error>::duplicate_field("amount"),
                                                            );
                                                        }
                                                        __field0 = _serde::__private229::Some(
                                                            _serde::de::MapAccess::next_value::<u64>(&mut __map)?,
                                                        );
                                                    }
                                                    _ => {
                                                        let _ = _serde::de::MapAccess::next_value::<
                                                            _serde::de::IgnoredAny,
                                                        >(&mut __map)?;
                                                    }
                                                }
                                            }
                                            let __field0 = match __field0 {
                                                _serde::__private229::Some(__field0) => __field0,
                                                _serde::__private229::None => {
                                                    _serde::__private229::de::missing_field("amount")?
                                                }
                                            };
                                            _serde::__private229::Ok(__Payload { amount: __field0 })
                                        }
                                    }
                                    #[doc(hidden)]
                                    const FIELDS: &'static [&'static str] = &["amount"];
                                    _serde::Deserializer::deserialize_struct(
                                        __deserializer,
                                        "__Payload",
                                        FIELDS,
                                        __Visitor {
                                            marker: _serde::__private229::PhantomData::<__Payload>,
                                            lifetime: _serde::__private229::PhantomData,
                                        },
                                    )
                                }
                            }
                        };
                        ::annals::__private::decode_payload::<
                            __Payload,
                        >(event_type, event_version, payload)
                            .map(|p| Self::MoneyDeposited {
                                amount: p.amount,
                            })
                    }
                    ("Noted", 1u32) => {
                        ::annals::__private::decode_payload::<
                            String,
                        >(event_type, event_version, payload)
                            .map(Self::Noted)
                    }
                    ("Closed", 1u32) => ::core::result::Result::Ok(Self::Closed),
                    _ => return ::core::option::Option::None,
                },
            )
        }
    }
};
fn main() {}
