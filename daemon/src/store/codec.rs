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
//! sensors' ±0.1 °C), each stored as the zig-zag varint of its difference to the previous
//! value of the same channel; time as the varint of the step from the previous sample
//! (100 ms at 10 Hz, one byte). A flags byte carries pump, valve and which channels are
//! present. A typical 10 Hz sample takes 6–7 bytes instead of ~140 as JSON.

use crate::session::Sample;

/// Version of the envelope layout.
const ENVELOPE_FORMAT: u8 = 1;
/// Envelope kind: a JSON document.
pub(crate) const KIND_JSON: u8 = 1;
/// Envelope kind: a compact sample chunk.
pub(crate) const KIND_SAMPLES: u8 = 2;
/// Bytes before the payload.
const HEADER: usize = 6;

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
pub(crate) fn open(kind: u8, bytes: &[u8]) -> Result<&[u8], String> {
    if bytes.len() < HEADER {
        return Err(format!("value too short ({} bytes)", bytes.len()));
    }
    if bytes[0] != ENVELOPE_FORMAT {
        return Err(format!("unknown envelope format {}", bytes[0]));
    }
    if bytes[1] != kind {
        return Err(format!(
            "value kind {} where {} was expected",
            bytes[1], kind
        ));
    }
    let stored = u32::from_le_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
    let payload = &bytes[HEADER..];
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(payload);
    let actual = h.finalize();
    if stored != actual {
        return Err(format!(
            "checksum mismatch (stored {stored:08x}, computed {actual:08x})"
        ));
    }
    Ok(payload)
}

/// A serde value as a sealed JSON document.
pub(crate) fn seal_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value)
        .map(|json| seal(KIND_JSON, &json))
        .map_err(|e| e.to_string())
}

/// A sealed JSON document back into its value.
pub(crate) fn open_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let payload = open(KIND_JSON, bytes)?;
    serde_json::from_slice(payload).map_err(|e| format!("undecodable JSON: {e}"))
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

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| format!("sample chunk truncated at byte {}", self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 64 bits".into())
    }
}

/// Encodes consecutive samples of one session (the session id is in the key, not here).
pub(crate) fn encode_samples(samples: &[Sample]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + samples.len() * 7);
    put_varint(&mut out, samples.len() as u64);
    let mut prev_t: i64 = 0;
    let mut prev = [0i64; 4];
    for s in samples {
        let t = i64::from(s.t_ms);
        put_varint(&mut out, zigzag(t - prev_t));
        prev_t = t;
        let fixed: Vec<Option<i64>> = channels(s)
            .iter()
            .zip(SCALES)
            .map(|(v, scale)| to_fixed(*v, scale))
            .collect();
        let mut flags = u8::from(s.pump) | (u8::from(s.valve) << 1);
        for (i, f) in fixed.iter().enumerate() {
            if f.is_some() {
                flags |= 1 << (2 + i);
            }
        }
        out.push(flags);
        for (i, f) in fixed.iter().enumerate() {
            if let Some(v) = f {
                put_varint(&mut out, zigzag(v - prev[i]));
                prev[i] = *v;
            }
        }
    }
    out
}

/// Decodes a chunk made by [`encode_samples`].
pub(crate) fn decode_samples(session_id: u64, bytes: &[u8]) -> Result<Vec<Sample>, String> {
    let mut r = Reader { bytes, pos: 0 };
    let count = r.varint()?;
    // Every sample takes at least two bytes: refuse absurd counts before allocating.
    if count > (bytes.len() as u64) / 2 + 1 {
        return Err(format!(
            "sample count {count} does not fit in {} bytes",
            bytes.len()
        ));
    }
    let mut out = Vec::with_capacity(count as usize);
    let mut prev_t: i64 = 0;
    let mut prev = [0i64; 4];
    for _ in 0..count {
        let t = prev_t + unzigzag(r.varint()?);
        let t_ms = u32::try_from(t).map_err(|_| format!("sample time {t} out of range"))?;
        prev_t = t;
        let flags = r.byte()?;
        if flags >> 6 != 0 {
            return Err(format!("unknown sample flags {flags:#04x}"));
        }
        let mut vals = [None; 4];
        for (i, val) in vals.iter_mut().enumerate() {
            if flags & (1 << (2 + i)) != 0 {
                let v = prev[i] + unzigzag(r.varint()?);
                prev[i] = v;
                *val = Some(v as f64 / SCALES[i]);
            }
        }
        out.push(Sample {
            session_id,
            t_ms,
            mist_c: vals[0],
            skin_c: vals[1],
            reservoir_c: vals[2],
            pressure_bar: vals[3],
            pump: flags & 1 != 0,
            valve: flags & 2 != 0,
        });
    }
    if r.pos != bytes.len() {
        return Err(format!(
            "{} trailing bytes after {count} samples",
            bytes.len() - r.pos
        ));
    }
    Ok(out)
}

/// Bytes a curve takes in the store when cut into chunks of `batch` samples (envelopes
/// included, keys excluded): what the benchmark compares with JSON.
pub fn encoded_curve_len(samples: &[Sample], batch: usize) -> usize {
    samples
        .chunks(batch.max(1))
        .map(|c| seal(KIND_SAMPLES, &encode_samples(c)).len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(t_ms: u32, skin: Option<f64>) -> Sample {
        Sample {
            session_id: 7,
            t_ms,
            mist_c: Some(4.25),
            skin_c: skin,
            reservoir_c: Some(3.9),
            pressure_bar: Some(1.234),
            pump: true,
            valve: t_ms.is_multiple_of(200),
        }
    }

    #[test]
    fn typical_samples_are_small_and_round_trip() {
        let samples: Vec<Sample> = (0..50)
            .map(|i| sample(i * 100, Some(40.0 - f64::from(i) * 0.13)))
            .collect();
        let bytes = encode_samples(&samples);
        assert!(bytes.len() < 50 * 8, "{} bytes", bytes.len());
        let back = decode_samples(7, &bytes).unwrap();
        assert_eq!(back.len(), 50);
        for (a, b) in samples.iter().zip(&back) {
            assert_eq!(a.t_ms, b.t_ms);
            assert_eq!((a.pump, a.valve), (b.pump, b.valve));
            assert!((a.skin_c.unwrap() - b.skin_c.unwrap()).abs() <= 0.005 + 1e-9);
            assert!((a.pressure_bar.unwrap() - b.pressure_bar.unwrap()).abs() <= 0.0005 + 1e-9);
        }
    }

    #[test]
    fn truncated_or_padded_chunks_are_rejected() {
        let bytes = encode_samples(&[sample(0, None), sample(100, Some(30.0))]);
        assert!(decode_samples(1, &bytes[..bytes.len() - 1]).is_err());
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(decode_samples(1, &padded).is_err());
    }

    #[test]
    fn envelope_detects_a_flipped_bit() {
        let sealed = seal(KIND_JSON, b"{\"a\":1}");
        assert_eq!(open(KIND_JSON, &sealed).unwrap(), b"{\"a\":1}");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x10;
            assert!(open(KIND_JSON, &bad).is_err(), "flip at {i} not detected");
        }
    }

    #[test]
    fn time_keys_sort_like_times() {
        let times = [i64::MIN, -5, 0, 1, 1_700_000_000_000, i64::MAX];
        for w in times.windows(2) {
            assert!(time_key(w[0]) < time_key(w[1]));
        }
        for t in times {
            assert_eq!(time_from_key(&time_key(t)), Some(t));
        }
    }

    proptest! {
        #[test]
        fn any_samples_round_trip_to_fixed_point(
            raw in proptest::collection::vec(
                (0u32..2_000_000, proptest::option::of(-50.0f64..150.0),
                 proptest::option::of(-50.0f64..150.0), proptest::option::of(0.0f64..20.0),
                 any::<bool>(), any::<bool>()),
                0..80)
        ) {
            let samples: Vec<Sample> = raw.iter().map(|&(t, m, s, p, pump, valve)| Sample {
                session_id: 3, t_ms: t, mist_c: m, skin_c: s, reservoir_c: m.map(|x| x / 2.0),
                pressure_bar: p, pump, valve,
            }).collect();
            let back = decode_samples(3, &encode_samples(&samples)).unwrap();
            prop_assert_eq!(back.len(), samples.len());
            for (a, b) in samples.iter().zip(&back) {
                prop_assert_eq!(a.t_ms, b.t_ms);
                prop_assert_eq!(a.session_id, b.session_id);
                prop_assert_eq!((a.pump, a.valve), (b.pump, b.valve));
                for (x, y, tol) in [(a.mist_c, b.mist_c, 0.005), (a.skin_c, b.skin_c, 0.005),
                                    (a.reservoir_c, b.reservoir_c, 0.005),
                                    (a.pressure_bar, b.pressure_bar, 0.0005)] {
                    prop_assert_eq!(x.is_some(), y.is_some());
                    if let (Some(x), Some(y)) = (x, y) {
                        prop_assert!((x - y).abs() <= tol + 1e-9);
                    }
                }
            }
        }
    }
}
