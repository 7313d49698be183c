//! Customer profiles: JSON documents (`annals::document`) of kind
//! `profiles`, checked by a JSON Schema, served as `POST /profiles` and
//! `GET`/`PUT`/`PATCH`/`DELETE /profiles/{id}`. Each write is a command on
//! the built-in document aggregate (stream `profiles-<id>`) whose event
//! journals the patch; the current profiles are in the read model
//! `annals_documents`, beside the bank's other read models.

use annals::document::DocumentKind;
use serde_json::{Value, json};

/// What a profile must look like: a name and an e-mail address, maybe a
/// phone number, a postal address and a newsletter choice; nothing else.
pub fn schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Customer profile",
        "type": "object",
        "required": ["name", "email"],
        "additionalProperties": false,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "email": {"type": "string", "pattern": "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"},
            "phone": {"type": "string", "pattern": "^\\+?[0-9 ]{6,20}$"},
            "address": {
                "type": "object",
                "required": ["city"],
                "properties": {
                    "street": {"type": "string"},
                    "city": {"type": "string", "minLength": 1},
                    "postcode": {"type": "string"}
                }
            },
            "newsletter": {"type": "boolean"}
        }
    })
}

/// The `profiles` kind, with [`schema`].
pub fn kind() -> DocumentKind {
    DocumentKind::new("profiles")
        .and_then(|kind| kind.schema(schema()))
        .expect("`profiles` is a kind name and its schema a JSON Schema (tested)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_holds_a_profile_and_refuses_a_stranger() {
        let kind = kind();
        assert!(
            kind.validate(&json!({"name": "Ada", "email": "ada@example.org"}))
                .is_ok()
        );
        let errors = kind
            .validate(&json!({"name": "", "email": "nope", "age": 3}))
            .unwrap_err();
        let mut paths: Vec<_> = errors.iter().map(|e| e.instance_path.as_str()).collect();
        paths.sort();
        assert_eq!(paths, ["", "/email", "/name"], "{errors:?}");
    }
}
