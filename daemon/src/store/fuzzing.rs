//! Entry points for the fuzzing tests of the treatment log's record decoder
//! (`tests/tests/rel_fuzz_store.rs`). Not an API: the byte layouts stay private to the store,
//! and errors are the text of the store's [`CodecError`](super::codec::CodecError) (the fuzz
//! tests only check that a reason is given).

use crate::api::{Counters, Event};
use crate::model::session::Sample;
use crate::protocol::Protocol;

use super::codec;
use super::sled_store::{Settings, StoredSession};

/// What [`decode_any`] made of a stored value.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A curve chunk (either layout) with its samples.
    Samples(Vec<Sample>),
    /// A JSON document, with the names of the record types it decodes as (never empty).
    Json(Vec<&'static str>),
}

/// Decodes `bytes` as any value the store keeps: the envelope is checked, then a curve chunk
/// is decoded, or a JSON document is tried as each kind of record (session, event,
/// counters, protocol list, settings). Never panics; an error says what is wrong.
pub fn decode_any(bytes: &[u8]) -> Result<Decoded, String> {
    match bytes.get(1) {
        Some(&codec::KIND_JSON) => {
            let payload = codec::open(codec::KIND_JSON, bytes).map_err(|e| e.to_string())?;
            let mut kinds = Vec::new();
            if serde_json::from_slice::<StoredSession>(payload).is_ok() {
                kinds.push("session");
            }
            if serde_json::from_slice::<Event>(payload).is_ok() {
                kinds.push("event");
            }
            if serde_json::from_slice::<Counters>(payload).is_ok() {
                kinds.push("counters");
            }
            if serde_json::from_slice::<Vec<Protocol>>(payload).is_ok() {
                kinds.push("protocols");
            }
            if serde_json::from_slice::<Settings>(payload).is_ok() {
                kinds.push("settings");
            }
            if kinds.is_empty() {
                Err("JSON document is no known record".into())
            } else {
                Ok(Decoded::Json(kinds))
            }
        }
        _ => codec::open_samples(0, bytes)
            .map(Decoded::Samples)
            .map_err(|e| e.to_string()),
    }
}

/// A curve chunk as the store writes it today (sealed, packed layout). At most
/// [`MAX_CHUNK_SAMPLES`] samples.
pub fn encode_chunk(samples: &[Sample]) -> Vec<u8> {
    codec::seal_samples(samples)
}

/// Most samples in one chunk.
pub const MAX_CHUNK_SAMPLES: usize = codec::MAX_CHUNK_SAMPLES;

/// An event-log value as the store writes it (sealed JSON).
pub fn encode_event(event: &Event) -> Result<Vec<u8>, String> {
    codec::seal_json(event).map_err(|e| e.to_string())
}

/// Decodes a curve chunk (either layout) for session `session_id`.
pub fn decode_chunk(session_id: u64, bytes: &[u8]) -> Result<Vec<Sample>, String> {
    codec::open_samples(session_id, bytes).map_err(|e| e.to_string())
}

/// Wraps any payload in a valid envelope of any kind (correct checksum), so the decoders
/// behind the checksum can be fed arbitrary bytes.
pub fn seal(kind: u8, payload: &[u8]) -> Vec<u8> {
    codec::seal(kind, payload)
}

/// The kind byte and payload of a sealed value, without checking it (`None` when too short).
pub fn split(sealed: &[u8]) -> Option<(u8, &[u8])> {
    Some((*sealed.get(1)?, sealed.get(codec::HEADER..)?))
}
