//! What every store accepts as a checkpoint: the names and positions of
//! durable subscriptions' progress.

use super::StreamId;
use super::types::{NameFlaw, name_flaw};

/// The longest checkpoint name, in bytes, that every store accepts (the
/// limit of [`StreamId::MAX_LEN`]).
pub const MAX_CHECKPOINT_NAME_LEN: usize = StreamId::MAX_LEN;

/// The largest checkpoint position every store keeps: `i64::MAX`, the largest
/// global position a SQL store can hold.
pub const MAX_CHECKPOINT_POSITION: u64 = i64::MAX as u64;

/// Why a checkpoint cannot be kept; a store refuses it before reading or
/// writing anything ([`StoreError::InvalidCheckpoint`](crate::StoreError::InvalidCheckpoint)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidCheckpoint {
    /// The name is empty.
    #[error("a checkpoint name must not be empty")]
    EmptyName,
    /// The name holds a NUL character, which PostgreSQL cannot store.
    #[error("checkpoint name {name:?} contains a NUL character")]
    NulInName {
        /// The name (at most its first 100 characters).
        name: String,
    },
    /// The name is longer than [`MAX_CHECKPOINT_NAME_LEN`] bytes.
    #[error(
        "a checkpoint name of {len} bytes is longer than the limit of {max} bytes (starts {start:?})"
    )]
    NameTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
        /// Its first 40 characters.
        start: String,
    },
    /// The position is above [`MAX_CHECKPOINT_POSITION`].
    #[error("checkpoint `{name}`: position {position} is above the largest a store keeps ({max})")]
    PositionTooLarge {
        /// The checkpoint's name.
        name: String,
        /// The position given.
        position: u64,
        /// The limit.
        max: u64,
    },
}

/// Checks a checkpoint name the way every store does before
/// [`load_checkpoint`](crate::EventStore::load_checkpoint),
/// [`save_checkpoint`](crate::EventStore::save_checkpoint) and
/// [`delete_checkpoint`](crate::EventStore::delete_checkpoint): not empty, no
/// NUL character, at most [`MAX_CHECKPOINT_NAME_LEN`] bytes.
///
/// ```
/// use annals::store::{InvalidCheckpoint, validate_checkpoint_name};
/// assert!(validate_checkpoint_name("projections.balances").is_ok());
/// assert_eq!(validate_checkpoint_name(""), Err(InvalidCheckpoint::EmptyName));
/// assert!(matches!(validate_checkpoint_name("a\0b"), Err(InvalidCheckpoint::NulInName { .. })));
/// ```
pub fn validate_checkpoint_name(name: &str) -> Result<(), InvalidCheckpoint> {
    match name_flaw(name, MAX_CHECKPOINT_NAME_LEN) {
        None => Ok(()),
        Some(NameFlaw::Empty) => Err(InvalidCheckpoint::EmptyName),
        Some(NameFlaw::TooLong { start }) => Err(InvalidCheckpoint::NameTooLong {
            len: name.len(),
            max: MAX_CHECKPOINT_NAME_LEN,
            start,
        }),
        Some(NameFlaw::Nul { shown }) => Err(InvalidCheckpoint::NulInName { name: shown }),
    }
}

/// Checks a checkpoint to save: its name as [`validate_checkpoint_name`] does,
/// and a position of at most [`MAX_CHECKPOINT_POSITION`], which it returns as
/// the `i64` SQL stores write.
///
/// ```
/// use annals::store::{InvalidCheckpoint, validate_checkpoint};
/// assert_eq!(validate_checkpoint("projector", 42), Ok(42));
/// assert!(matches!(
///     validate_checkpoint("projector", u64::MAX),
///     Err(InvalidCheckpoint::PositionTooLarge { position: u64::MAX, .. })
/// ));
/// ```
pub fn validate_checkpoint(name: &str, position: u64) -> Result<i64, InvalidCheckpoint> {
    validate_checkpoint_name(name)?;
    i64::try_from(position).map_err(|_| InvalidCheckpoint::PositionTooLarge {
        name: name.to_owned(),
        position,
        max: MAX_CHECKPOINT_POSITION,
    })
}

/// A position a SQL store read back for checkpoint `name`; a negative one
/// (written around the store) is an error, never a wrapped-around number.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn stored_position(name: &str, position: i64) -> Result<u64, super::StoreError> {
    u64::try_from(position).map_err(|_| {
        super::StoreError::Backend(
            format!("checkpoint `{name}` holds a negative position {position}").into(),
        )
    })
}
