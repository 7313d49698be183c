//! JSON documents (feature `documents`): any kind of JSON object, created,
//! replaced, patched with RFC 6902 JSON Patches and deleted through a
//! built-in aggregate, validated by an optional JSON Schema per kind, and
//! read from a read model of the current documents (on SQLite and
//! PostgreSQL, [`DocumentReadModel`]). With the `http` feature,
//! [`Api::documents`](crate::http::Api::documents) serves a kind as
//! `POST /{kind}`, `GET`/`PUT`/`PATCH`/`DELETE /{kind}/{id}`.
//!
//! A kind is a name and maybe a schema: [`DocumentKind`]. Each write is a
//! [`DocumentCommand`] on the aggregate [`Document`], whose stream is
//! `<kind>-<id>` (the command names the stream's category,
//! [`Command::stream_category`]). Its events journal what changed:
//!
//! | event | payload |
//! |---|---|
//! | `DocumentCreated` | `document`: the whole new document (there is nothing to patch from) |
//! | `DocumentReplaced` | `patch`: the RFC 6902 patch from the previous document to the new one (`json_patch::diff`) |
//! | `DocumentPatched` | `patch`: the client's patch, as given |
//! | `DocumentDeleted` | nothing |
//!
//! so a stream reads as the document's history of patches, and folding
//! them gives the document at any version. A replacement by an equal
//! document still records an event (an empty patch) and moves the version. Every resulting document is
//! checked before anything is stored: it must be a JSON object, and match
//! the kind's schema ([`DocumentError::Invalid`] lists each violation with
//! its instance path). A deleted document stays deleted: every write to it
//! is [`DocumentError::NotFound`].
//!
//! ```
//! use annals::document::{DocumentCommand, DocumentError, DocumentKind};
//! use annals::prelude::*;
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let notes = DocumentKind::new("notes")?.schema(json!({
//!     "type": "object",
//!     "required": ["title"],
//!     "properties": { "title": { "type": "string" } }
//! }))?;
//! let app = App::builder().store(MemoryStore::new()).build()?;
//! let created = app.dispatch(notes.create("n1", json!({"title": "Hello"}))).await?;
//! assert_eq!(created.stream_id.as_str(), "notes-n1");
//! let patch = serde_json::from_value(json!([
//!     { "op": "replace", "path": "/title", "value": "Hello, world" }
//! ]))?;
//! let (done, now) = app
//!     .dispatch_and_inspect(notes.patch("n1", patch), DispatchOptions::new(), |d| d.current().cloned())
//!     .await?;
//! assert_eq!((done.version, now), (2, Some(json!({"title": "Hello, world"}))));
//! let refused = app.dispatch(notes.replace("n1", json!({"title": 7}))).await.unwrap_err();
//! let Some(DocumentError::Invalid { errors, .. }) = refused.domain() else { panic!("{refused}") };
//! assert_eq!(errors[0].instance_path, "/title");
//! # Ok(())
//! # }
//! ```

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod read_model;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use read_model::{
    DOCUMENTS_PROJECTION, DocumentProjectionError, DocumentReadModel, DocumentsProjection,
    StoredDocument,
};

use crate::aggregate::{Aggregate, Command, Handles};
use crate::event;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

pub use json_patch::{Patch, PatchOperation};

/// The events of a [`Document`]: see the [module docs](self) for what each
/// journals.
#[event]
pub enum DocumentEvent {
    /// The document was created: the whole document.
    DocumentCreated {
        /// The new document.
        document: Value,
    },
    /// The document was replaced: the patch from the previous document to
    /// the new one.
    DocumentReplaced {
        /// RFC 6902 operations that turn the previous document into the new one.
        patch: Patch,
    },
    /// The document was patched: the client's RFC 6902 patch.
    DocumentPatched {
        /// The patch, as given.
        patch: Patch,
    },
    /// The document was deleted.
    DocumentDeleted,
}

/// A kind of document: a name (the first segment of its routes and the
/// category of its streams) and maybe a JSON Schema that every document of
/// the kind must match. Cheap to clone.
#[derive(Clone)]
pub struct DocumentKind {
    inner: Arc<KindInner>,
}

struct KindInner {
    name: String,
    schema: Option<(Value, jsonschema::Validator)>,
}

impl fmt::Debug for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DocumentKind")
            .field("name", &self.inner.name)
            .field("schema", &self.inner.schema.as_ref().map(|(s, _)| s))
            .finish()
    }
}

/// Why a [`DocumentKind`] cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KindError {
    /// The name cannot name routes and streams: it must be lowercase ASCII
    /// letters, digits and `_`, starting with a letter.
    #[error(
        "document kind {name:?} must be lowercase ASCII letters, digits and `_`, starting with a letter"
    )]
    BadName {
        /// The name given.
        name: String,
    },
    /// The schema is not a JSON Schema the validator can compile (or names
    /// a remote `$ref`, which is not fetched).
    #[error("the schema of document kind `{kind}` does not compile: {reason}")]
    BadSchema {
        /// The kind.
        kind: String,
        /// What the validator said.
        reason: String,
    },
}

impl DocumentKind {
    /// A kind of document without a schema: any JSON object is one.
    ///
    /// The name is lowercase ASCII letters, digits and `_`, starting with a
    /// letter ([`KindError::BadName`] otherwise), so it is a path segment
    /// and a stream category as it is. Its streams are `<name>-<id>`: an
    /// aggregate whose [`Aggregate::TYPE`] is the same name would share
    /// them, so keep kinds apart from aggregate type names (which are
    /// usually capitalised: `Account`).
    pub fn new(name: impl Into<String>) -> Result<Self, KindError> {
        let name = name.into();
        let mut chars = name.chars();
        let good = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !good {
            return Err(KindError::BadName { name });
        }
        Ok(Self {
            inner: Arc::new(KindInner { name, schema: None }),
        })
    }

    /// The same kind, whose documents must match `schema` (a JSON Schema,
    /// its draft detected from `$schema`, 2020-12 by default).
    pub fn schema(self, schema: Value) -> Result<Self, KindError> {
        let validator = jsonschema::validator_for(&schema).map_err(|e| KindError::BadSchema {
            kind: self.inner.name.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            inner: Arc::new(KindInner {
                name: self.inner.name.clone(),
                schema: Some((schema, validator)),
            }),
        })
    }

    /// The kind's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The kind's JSON Schema, if it has one.
    pub fn json_schema(&self) -> Option<&Value> {
        self.inner.schema.as_ref().map(|(schema, _)| schema)
    }

    /// Checks a document: a JSON object that matches the schema. Each
    /// violation with where it is.
    pub fn validate(&self, document: &Value) -> Result<(), Vec<SchemaViolation>> {
        if !document.is_object() {
            return Err(vec![SchemaViolation {
                instance_path: String::new(),
                message: format!(
                    "a document must be a JSON object, not {}",
                    type_of(document)
                ),
            }]);
        }
        let Some((_, validator)) = &self.inner.schema else {
            return Ok(());
        };
        let errors: Vec<SchemaViolation> = validator
            .iter_errors(document)
            .map(|error| SchemaViolation {
                instance_path: error.instance_path().to_string(),
                message: error.to_string(),
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Creates document `id` of this kind.
    pub fn create(&self, id: impl Into<String>, document: Value) -> DocumentCommand {
        self.command(id, DocumentAction::Create(document))
    }

    /// Replaces document `id` with `document`.
    pub fn replace(&self, id: impl Into<String>, document: Value) -> DocumentCommand {
        self.command(id, DocumentAction::Replace(document))
    }

    /// Applies an RFC 6902 patch to document `id`.
    pub fn patch(&self, id: impl Into<String>, patch: Patch) -> DocumentCommand {
        self.command(id, DocumentAction::Patch(patch))
    }

    /// Deletes document `id`.
    pub fn delete(&self, id: impl Into<String>) -> DocumentCommand {
        self.command(id, DocumentAction::Delete)
    }

    fn command(&self, id: impl Into<String>, action: DocumentAction) -> DocumentCommand {
        DocumentCommand {
            kind: self.clone(),
            id: id.into(),
            action,
        }
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One way a document fails its kind's schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "http", derive(utoipa::ToSchema))]
pub struct SchemaViolation {
    /// A JSON Pointer to the offending value (`""`: the document itself).
    pub instance_path: String,
    /// What is wrong with it.
    pub message: String,
}

/// A write to one document: made by [`DocumentKind::create`],
/// [`replace`](DocumentKind::replace), [`patch`](DocumentKind::patch) and
/// [`delete`](DocumentKind::delete), dispatched like any command.
#[derive(Debug, Clone)]
pub struct DocumentCommand {
    kind: DocumentKind,
    id: String,
    action: DocumentAction,
}

impl DocumentCommand {
    /// The document's kind.
    pub fn kind(&self) -> &DocumentKind {
        &self.kind
    }

    /// The document's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What it does.
    pub fn action(&self) -> &DocumentAction {
        &self.action
    }
}

/// What a [`DocumentCommand`] does.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DocumentAction {
    /// Create the document (it must not exist, nor have been deleted).
    Create(Value),
    /// Replace the whole document.
    Replace(Value),
    /// Apply an RFC 6902 patch, all operations or none.
    Patch(Patch),
    /// Delete the document.
    Delete,
}

impl Command for DocumentCommand {
    const NAME: &'static str = "DocumentCommand";
    type Aggregate = Document;

    fn aggregate_id(&self) -> &dyn fmt::Display {
        &self.id
    }

    fn stream_category(&self) -> &str {
        self.kind.name()
    }
}

/// The built-in document aggregate: the current document, if it was
/// created and not deleted. Its streams are `<kind>-<id>`.
#[derive(Debug, Clone, Default)]
pub struct Document {
    document: Option<Value>,
    created: bool,
}

impl Document {
    /// The current document (`None`: never created, or deleted).
    pub fn current(&self) -> Option<&Value> {
        self.document.as_ref()
    }

    /// Whether the document was created once (it may be deleted since).
    pub fn was_created(&self) -> bool {
        self.created
    }
}

impl Aggregate for Document {
    /// Nominal: a document's stream is named by its kind
    /// ([`DocumentCommand`]'s [`Command::stream_category`]).
    const TYPE: &'static str = "Document";
    type Event = DocumentEvent;

    fn apply(&mut self, event: &DocumentEvent) {
        match event {
            DocumentEvent::DocumentCreated { document } => {
                self.document = Some(document.clone());
                self.created = true;
            }
            DocumentEvent::DocumentReplaced { patch }
            | DocumentEvent::DocumentPatched { patch } => {
                let Some(document) = &mut self.document else {
                    tracing::error!(
                        "a document patch recorded for a document that does not exist; ignored"
                    );
                    return;
                };
                // The patch applied when it was decided, to this same document.
                if let Err(error) = json_patch::patch(document, patch) {
                    tracing::error!(%error, "a recorded document patch no longer applies; ignored");
                }
            }
            DocumentEvent::DocumentDeleted => self.document = None,
        }
    }
}

/// Why a document write was refused. Nothing was stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// No such document: never created, or deleted.
    #[error("no `{kind}` document `{id}`")]
    NotFound {
        /// The kind.
        kind: String,
        /// The id.
        id: String,
    },
    /// A create for an id that was used before.
    #[error("`{kind}` document `{id}` exists, or existed")]
    AlreadyExists {
        /// The kind.
        kind: String,
        /// The id.
        id: String,
    },
    /// The resulting document is not a JSON object or does not match the
    /// kind's schema.
    #[error("the document does not match the `{kind}` schema ({} error(s))", errors.len())]
    Invalid {
        /// The kind.
        kind: String,
        /// Every violation.
        errors: Vec<SchemaViolation>,
    },
    /// A `test` operation of the patch found another value: the document
    /// is not what the client thought.
    #[error("the patch's test at operation {operation} (`{path}`) failed")]
    TestFailed {
        /// The index of the failing operation.
        operation: usize,
        /// Its path.
        path: String,
    },
    /// An operation of the patch cannot apply to this document (a path
    /// that does not exist, a bad array index, a move into itself).
    #[error("operation {operation} of the patch cannot apply at `{path}`: {reason}")]
    PatchFailed {
        /// The index of the failing operation.
        operation: usize,
        /// Its path.
        path: String,
        /// Why.
        reason: String,
    },
}

impl Handles<DocumentCommand> for Document {
    type Error = DocumentError;
    type Services = ();
    const HANDLER: &'static str = "Document::decide";

    fn handle<'a>(
        &'a self,
        command: DocumentCommand,
        _services: &'a (),
    ) -> impl Future<Output = Result<Vec<DocumentEvent>, DocumentError>> + Send + 'a {
        std::future::ready(self.decide(command).map(|event| vec![event]))
    }
}

impl Document {
    fn decide(&self, command: DocumentCommand) -> Result<DocumentEvent, DocumentError> {
        let DocumentCommand { kind, id, action } = command;
        let invalid = |errors| DocumentError::Invalid {
            kind: kind.name().to_owned(),
            errors,
        };
        let existing = || {
            self.document
                .as_ref()
                .ok_or_else(|| DocumentError::NotFound {
                    kind: kind.name().to_owned(),
                    id: id.clone(),
                })
        };
        match action {
            DocumentAction::Create(document) => {
                if self.created {
                    return Err(DocumentError::AlreadyExists {
                        kind: kind.name().to_owned(),
                        id,
                    });
                }
                kind.validate(&document).map_err(invalid)?;
                Ok(DocumentEvent::DocumentCreated { document })
            }
            DocumentAction::Replace(document) => {
                let current = existing()?;
                kind.validate(&document).map_err(invalid)?;
                Ok(DocumentEvent::DocumentReplaced {
                    patch: json_patch::diff(current, &document),
                })
            }
            DocumentAction::Patch(patch) => {
                let mut next = existing()?.clone();
                json_patch::patch(&mut next, &patch).map_err(|error| {
                    let path = error.path.to_string();
                    match error.kind {
                        json_patch::PatchErrorKind::TestFailed => DocumentError::TestFailed {
                            operation: error.operation,
                            path,
                        },
                        other => DocumentError::PatchFailed {
                            operation: error.operation,
                            path,
                            reason: other.to_string(),
                        },
                    }
                })?;
                kind.validate(&next).map_err(invalid)?;
                Ok(DocumentEvent::DocumentPatched { patch })
            }
            DocumentAction::Delete => {
                existing()?;
                Ok(DocumentEvent::DocumentDeleted)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn people() -> DocumentKind {
        DocumentKind::new("people")
            .unwrap()
            .schema(json!({
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}
            }))
            .unwrap()
    }

    #[test]
    fn kind_names_are_route_and_stream_safe() {
        for bad in ["", "Profiles", "a-b", "a b", "1st", "a/b"] {
            assert!(DocumentKind::new(bad).is_err(), "{bad:?}");
        }
        for good in ["profiles", "user_settings2"] {
            assert_eq!(DocumentKind::new(good).unwrap().name(), good);
        }
        let bad = DocumentKind::new("x")
            .unwrap()
            .schema(json!({"type": 7}))
            .unwrap_err();
        assert!(matches!(bad, KindError::BadSchema { .. }), "{bad}");
    }

    #[test]
    fn every_violation_with_its_path() {
        let errors = people()
            .validate(&json!({"age": -1, "name": 3}))
            .unwrap_err();
        let mut paths: Vec<_> = errors.iter().map(|e| e.instance_path.as_str()).collect();
        paths.sort();
        assert_eq!(paths, ["/age", "/name"]);
        let root = people().validate(&json!([1])).unwrap_err();
        assert_eq!(root[0].instance_path, "");
    }

    #[test]
    fn a_failed_test_is_told_from_a_bad_path() {
        let kind = people();
        let mut doc = Document::default();
        doc.apply(&DocumentEvent::DocumentCreated {
            document: json!({"name": "Ada"}),
        });
        let patch = |ops| serde_json::from_value::<Patch>(ops).unwrap();
        let test = doc
            .decide(kind.patch(
                "p",
                patch(json!([{"op": "test", "path": "/name", "value": "Bob"}])),
            ))
            .unwrap_err();
        assert!(
            matches!(test, DocumentError::TestFailed { operation: 0, .. }),
            "{test}"
        );
        let path = doc
            .decide(kind.patch("p", patch(json!([{"op": "remove", "path": "/nope"}]))))
            .unwrap_err();
        assert!(
            matches!(path, DocumentError::PatchFailed { operation: 0, .. }),
            "{path}"
        );
        let replaced = doc
            .decide(kind.replace("p", json!({"name": "Ada", "age": 36})))
            .unwrap();
        let DocumentEvent::DocumentReplaced { patch } = &replaced else {
            panic!("{replaced:?}")
        };
        assert_eq!(
            serde_json::to_value(patch).unwrap(),
            json!([{"op": "add", "path": "/age", "value": 36}])
        );
        doc.apply(&replaced);
        assert_eq!(doc.current(), Some(&json!({"name": "Ada", "age": 36})));
    }
}
