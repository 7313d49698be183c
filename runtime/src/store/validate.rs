//! What every store refuses before touching its backend, so that all of them
//! accept and refuse the same appends.

use super::{NewEvent, StoreError, StreamId};

/// Checks an append the way every store does before writing anything:
///
/// - the stream id is valid ([`StreamId::validate`]);
/// - it carries at least one event ([`StoreError::EmptyAppend`]);
/// - no event id repeats within it ([`StoreError::DuplicateEventId`]);
/// - every event can be stored by every store ([`StoreError::InvalidEvent`]):
///   a type name that is not empty and has no NUL character, a type version
///   of at most `i32::MAX`, and no NUL character (`\u0000`) in the payload or
///   the user metadata (PostgreSQL's `jsonb` cannot hold one).
///
/// ```
/// use annals::{NewEvent, Payload, StoreError, StreamId, store::validate_append};
/// let stream = StreamId::new("Account-1");
/// let ok = NewEvent::new("Opened", 1, Payload::from_json(r#"{"owner":"ada"}"#).unwrap());
/// assert!(validate_append(&stream, &[ok]).is_ok());
///
/// let nul = NewEvent::new("Opened", 1, Payload::from_json(r#"{"owner":"a\u0000"}"#).unwrap());
/// assert!(matches!(validate_append(&stream, &[nul]), Err(StoreError::InvalidEvent { .. })));
/// ```
pub fn validate_append(stream: &StreamId, events: &[NewEvent]) -> Result<(), StoreError> {
    stream.validate()?;
    validate_events(stream, events)
}

/// [`validate_append`] without the stream id's check, for a store that knows
/// the stream already holds events (so its id was checked then).
pub(crate) fn validate_events(stream: &StreamId, events: &[NewEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Err(StoreError::EmptyAppend {
            stream: stream.clone(),
        });
    }
    for event in events {
        if let Some(reason) = invalid_event(event) {
            return Err(StoreError::InvalidEvent {
                stream: stream.clone(),
                event_id: event.event_id,
                event_type: event.event_type.chars().take(100).collect(),
                reason,
            });
        }
    }
    if let Some(event_id) = repeated_id(events) {
        return Err(StoreError::DuplicateEventId {
            stream: stream.clone(),
            event_id,
        });
    }
    Ok(())
}

fn invalid_event(event: &NewEvent) -> Option<String> {
    if event.event_type.is_empty() {
        return Some("its type name is empty".to_owned());
    }
    // Type names are short: a plain loop, not a vectorised search.
    if event.event_type.bytes().any(|b| b == 0) {
        return Some("its type name contains a NUL character".to_owned());
    }
    if i32::try_from(event.event_version).is_err() {
        return Some(format!(
            "its type version {} is above the largest a store keeps ({})",
            event.event_version,
            i32::MAX
        ));
    }
    if json_text_has_nul(event.payload.as_str()) {
        return Some("its payload contains a NUL character (\\u0000)".to_owned());
    }
    if event
        .metadata
        .custom
        .iter()
        .any(|(k, v)| k.contains('\0') || value_has_nul(v))
    {
        return Some("its metadata contains a NUL character".to_owned());
    }
    None
}

fn repeated_id(events: &[NewEvent]) -> Option<uuid::Uuid> {
    match events {
        [] | [_] => None,
        // Quadratic, but without an allocation, for the small batches commands make.
        _ if events.len() <= 16 => events.iter().enumerate().find_map(|(i, e)| {
            events[..i]
                .iter()
                .any(|f| f.event_id == e.event_id)
                .then_some(e.event_id)
        }),
        _ => {
            let mut seen = std::collections::HashSet::with_capacity(events.len());
            events
                .iter()
                .find(|e| !seen.insert(e.event_id))
                .map(|e| e.event_id)
        }
    }
}

/// Whether well-formed JSON text holds a `\u0000` escape (JSON text cannot
/// hold a raw NUL: control characters are always escaped).
fn json_text_has_nul(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(offset) = memchr::memchr(b'\\', &bytes[i..]) {
        let at = i + offset;
        match bytes.get(at + 1) {
            Some(b'u') if bytes.get(at + 2..at + 6) == Some(b"0000") => return true,
            // Any other escape is two characters (or six for \uXXXX, whose
            // digits hold no backslash).
            Some(_) => i = at + 2,
            None => return false,
        }
    }
    false
}

fn value_has_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(value_has_nul),
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.contains('\0') || value_has_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Payload;

    #[test]
    fn nul_escapes_are_found_and_escaped_backslashes_are_not_mistaken_for_one() {
        for (text, nul) in [
            (r#"{"a":"\u0000"}"#, true),
            (r#"{"a":"x\\\u0000"}"#, true),
            (r#"{"a":"\\u0000"}"#, false),
            (r#"{"a":"\u00001"}"#, true),
            (r#"{"a":"\u0001","b":"\"\\"}"#, false),
            (r#"{"\u0000":1}"#, true),
            ("{}", false),
        ] {
            assert_eq!(json_text_has_nul(text), nul, "{text}");
            // The texts are well-formed JSON, and their parse agrees.
            let parsed: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(value_has_nul(&parsed), nul, "{text}");
        }
    }

    #[test]
    fn every_refusal_names_the_event() {
        let stream = StreamId::new("S-1");
        let ok = || NewEvent::new("E", 1, Payload::from_json("{}").unwrap());
        let mut big = ok();
        big.event_version = i32::MAX as u32 + 1;
        let mut untyped = ok();
        untyped.event_type = "".into();
        let mut meta = ok();
        meta.metadata
            .custom
            .insert("k".into(), serde_json::json!(["\u{0}"]));
        for bad in [big, untyped, meta] {
            let id = bad.event_id;
            match validate_append(&stream, &[ok(), bad]) {
                Err(StoreError::InvalidEvent { event_id, .. }) => assert_eq!(event_id, id),
                other => panic!("{other:?}"),
            }
        }
        let twice = ok();
        let many: Vec<_> = (0..20)
            .map(|_| ok())
            .chain([twice.clone(), twice])
            .collect();
        assert!(matches!(
            validate_append(&stream, &many),
            Err(StoreError::DuplicateEventId { .. })
        ));
        assert!(matches!(
            validate_append(&StreamId::new(""), &[ok()]),
            Err(StoreError::InvalidStreamId(crate::InvalidStreamId::Empty))
        ));
    }
}
