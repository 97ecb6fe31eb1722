//! Byte layouts of the treatment log: keys ordered by time, a checksummed envelope around
//! every stored value, and the compact encoding of curve samples.
//!
//! # Envelope
//! Every value is `[format u8][kind u8][crc32 u32 LE over kind+payload][payload]`, so a value
//! whose bytes changed (bit rot, a torn write that sled did not catch, a bug) is detected and
//! reported instead of decoded into a plausible but wrong record.
//!
//! # Samples
//! A chunk of consecutive samples of one session is stored under `session id ‖ first t_ms`.
//! Values are fixed-point (temperatures in 0.01 °C, pressure in 0.001 bar: finer than the
//! sensors' ±0.1 °C). The packed layout (envelope kind 3, see [`encode_samples`]) stores each
//! column of the chunk — time steps, flags (pump, valve, channels present), each channel's
//! values or differences — frame-of-reference bit-packed: the column's minimum once, then
//! every value as its distance to it in just enough bits. A regular 10 Hz time step and
//! steady flags cost nothing per sample; a busy clinic's curves take about 2.7 bytes per
//! sample instead of ~140 as JSON. Chunks of the first layout (kind 2: byte varints of the
//! differences, a flags byte and a time step per sample, ~7 bytes a sample) are still read.//!
//! Files: this one (envelope, keys, what both sample layouts share), `packed` (the current
//! layout) and `v1` (the first layout, read only).

use crate::model::session::Sample;

mod packed;
#[cfg(test)]
mod tests;
mod v1;

#[cfg(test)]
use packed::BitWriter;
pub(crate) use packed::{decode_samples, encode_samples};
pub(crate) use v1::decode_samples_v1;

/// Why a stored value could not be decoded, or a value not encoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Fewer bytes than the envelope header.
    #[error("value too short ({0} bytes)")]
    TooShort(usize),
    /// An envelope layout this build does not know.
    #[error("unknown envelope format {0}")]
    UnknownFormat(u8),
    /// A value of another kind than the tree holds.
    #[error("value kind {found} where {expected} was expected")]
    WrongKind {
        /// The kind stored.
        found: u8,
        /// The kind expected.
        expected: u8,
    },
    /// The bytes changed since they were written.
    #[error("checksum mismatch (stored {stored:08x}, computed {computed:08x})")]
    Checksum {
        /// The CRC-32 stored with the value.
        stored: u32,
        /// The CRC-32 of the bytes read.
        computed: u32,
    },
    /// The payload of a JSON value is not the expected document.
    #[error("undecodable JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// A value could not be encoded as JSON.
    #[error("{0}")]
    Encode(#[source] serde_json::Error),
    /// A curve chunk whose bytes are not a valid chunk: what is wrong with it.
    #[error("{0}")]
    Chunk(String),
}

/// Version of the envelope layout.
const ENVELOPE_FORMAT: u8 = 1;
/// Envelope kind: a JSON document.
pub(crate) const KIND_JSON: u8 = 1;
/// Envelope kind: a sample chunk in the first layout (byte-aligned varints; still read).
pub(crate) const KIND_SAMPLES_V1: u8 = 2;
/// Envelope kind: a sample chunk in the packed layout (written since schema version 2).
pub(crate) const KIND_SAMPLES_PACKED: u8 = 3;
/// Bytes before the payload.
pub(crate) const HEADER: usize = 6;

/// Wraps a payload in the checksummed envelope.
pub(crate) fn seal(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.push(ENVELOPE_FORMAT);
    out.push(kind);
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(payload);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks an envelope and returns its payload.
pub(crate) fn open(kind: u8, bytes: &[u8]) -> Result<&[u8], CodecError> {
    if bytes.len() < HEADER {
        return Err(CodecError::TooShort(bytes.len()));
    }
    if bytes[0] != ENVELOPE_FORMAT {
        return Err(CodecError::UnknownFormat(bytes[0]));
    }
    if bytes[1] != kind {
        return Err(CodecError::WrongKind {
            found: bytes[1],
            expected: kind,
        });
    }
    let stored = u32::from_le_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
    let payload = &bytes[HEADER..];
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(payload);
    let actual = h.finalize();
    if stored != actual {
        return Err(CodecError::Checksum {
            stored,
            computed: actual,
        });
    }
    Ok(payload)
}

/// A serde value as a sealed JSON document.
pub(crate) fn seal_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    serde_json::to_vec(value)
        .map(|json| seal(KIND_JSON, &json))
        .map_err(CodecError::Encode)
}

/// A sealed JSON document back into its value.
pub(crate) fn open_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let payload = open(KIND_JSON, bytes)?;
    serde_json::from_slice(payload).map_err(CodecError::Json)
}

/// Wall-clock milliseconds as 8 bytes whose byte order is the numeric order (sign bit flipped).
pub(crate) fn time_key(unix_ms: i64) -> [u8; 8] {
    ((unix_ms as u64) ^ (1 << 63)).to_be_bytes()
}

/// Inverse of [`time_key`].
pub(crate) fn time_from_key(bytes: &[u8]) -> Option<i64> {
    let arr: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(arr) ^ (1 << 63)) as i64)
}

/// First 8 bytes of a key as a big-endian u64.
pub(crate) fn u64_from_key(bytes: &[u8]) -> Option<u64> {
    let arr: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(arr))
}

/// Fixed-point scales: temperatures to 0.01 °C, pressure to 0.001 bar.
const SCALES: [f64; 4] = [100.0, 100.0, 100.0, 1000.0];

fn channels(s: &Sample) -> [Option<f64>; 4] {
    [s.mist_c, s.skin_c, s.reservoir_c, s.pressure_bar]
}

fn to_fixed(v: Option<f64>, scale: f64) -> Option<i64> {
    let v = v?;
    if !v.is_finite() {
        return None;
    }
    let f = (v * scale).round();
    // Far outside any physical reading; clamp so the varint stays bounded.
    Some(f.clamp(-1e12, 1e12) as i64)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Most samples one chunk may hold. The store writes at most `sample_batch` (≤ 600) samples
/// per chunk; the decoder refuses a larger count before allocating anything.
pub(crate) const MAX_CHUNK_SAMPLES: usize = 4096;

/// A decoded sample: pump and valve from the flags, channels in mist, skin, reservoir,
/// pressure order (as both layouts store them).
fn sample_from(
    session_id: u64,
    t_ms: u32,
    pump: bool,
    valve: bool,
    channels: [Option<f64>; 4],
) -> Sample {
    let [mist_c, skin_c, reservoir_c, pressure_bar] = channels;
    Sample {
        session_id,
        t_ms,
        mist_c,
        skin_c,
        reservoir_c,
        pressure_bar,
        pump,
        valve,
    }
}

/// A sealed chunk in the current layout.
pub(crate) fn seal_samples(samples: &[Sample]) -> Vec<u8> {
    seal(KIND_SAMPLES_PACKED, &encode_samples(samples))
}

/// A sealed chunk of either layout back into its samples.
pub(crate) fn open_samples(session_id: u64, bytes: &[u8]) -> Result<Vec<Sample>, CodecError> {
    match bytes.get(1) {
        Some(&KIND_SAMPLES_V1) => decode_samples_v1(session_id, open(KIND_SAMPLES_V1, bytes)?),
        _ => decode_samples(session_id, open(KIND_SAMPLES_PACKED, bytes)?),
    }
}

/// Bytes a curve takes in the store when cut into chunks of `batch` samples (envelopes
/// included, keys excluded): what the benchmark compares with JSON.
pub fn encoded_curve_len(samples: &[Sample], batch: usize) -> usize {
    samples
        .chunks(batch.clamp(1, MAX_CHUNK_SAMPLES))
        .map(|c| seal_samples(c).len())
        .sum()
}

#[cfg(test)]
/// Sealed chunk written by the first encoder (envelope kind 2), captured from that
/// encoder before it was replaced. Its samples are `tests::v1_fixture_samples`.
pub(crate) const V1_CHUNK: [u8; 50] = [
    1, 2, 208, 135, 187, 249, 6, 0, 60, 160, 6, 236, 64, 134, 6, 148, 23, 200, 1, 63, 6, 41, 0, 8,
    200, 1, 53, 6, 0, 8, 200, 1, 61, 6, 83, 0, 8, 214, 1, 63, 6, 41, 0, 8, 186, 1, 29, 6, 41, 0,
];
