//! The services handlers take as arguments, by type.

use std::any::{Any, TypeId};
use std::collections::HashMap;

/// One value per type; `()` (a handler that takes no service) is always there.
#[derive(Default)]
pub(crate) struct Services(HashMap<TypeId, Box<dyn Any + Send + Sync>>);

impl Services {
    pub(crate) fn insert<S: Send + Sync + 'static>(&mut self, service: S) {
        self.0.insert(TypeId::of::<S>(), Box::new(service));
    }

    pub(crate) fn get<S: Send + Sync + 'static>(&self) -> Option<&S> {
        static UNIT: () = ();
        if let Some(unit) = (&UNIT as &dyn Any).downcast_ref::<S>() {
            return Some(unit);
        }
        self.0.get(&TypeId::of::<S>())?.downcast_ref::<S>()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}
