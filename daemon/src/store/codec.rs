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
//! differences, a flags byte and a time step per sample, ~7 bytes a sample) are still read.

use crate::session::Sample;

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

#[cfg(test)]
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

/// Most samples one chunk may hold. The store writes at most `sample_batch` (≤ 600) samples
/// per chunk; the decoder refuses a larger count before allocating anything.
pub(crate) const MAX_CHUNK_SAMPLES: usize = 4096;

/// Largest fixed-point magnitude the encoder writes (see [`to_fixed`]); the packed decoder
/// refuses anything beyond it.
const FIXED_LIMIT: i64 = 1_000_000_000_000;

/// Number of bits needed for `v` (0 for 0).
fn bit_len(v: u64) -> u32 {
    64 - v.leading_zeros()
}

/// Bits of `v` written as a varint.
fn varint_bits(mut v: u64) -> usize {
    let mut n = 8;
    while v >= 0x80 {
        v >>= 7;
        n += 8;
    }
    n
}

/// Packs values LSB first into bytes.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    pending: u32,
}

impl BitWriter {
    fn new(capacity: usize) -> Self {
        BitWriter {
            out: Vec::with_capacity(capacity),
            acc: 0,
            pending: 0,
        }
    }

    /// The low `width` (0..=64) bits of `v`.
    fn bits(&mut self, v: u64, width: u32) {
        let mut v = v;
        let mut left = width;
        while left > 0 {
            let take = left.min(32);
            let part = v & ((1u64 << take) - 1);
            self.acc |= part << self.pending;
            self.pending += take;
            while self.pending >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.pending -= 8;
            }
            v = v.checked_shr(take).unwrap_or(0);
            left -= take;
        }
    }

    /// A varint in 8-bit groups.
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.bits((v & 0x7f) | 0x80, 8);
            v >>= 7;
        }
        self.bits(v, 8);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.pending > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// Reads what [`BitWriter`] wrote; every read is checked against the bytes left.
struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn left(&self) -> usize {
        (self.bytes.len() * 8).saturating_sub(self.pos)
    }

    fn bits(&mut self, width: u32) -> Result<u64, String> {
        if width > 64 {
            return Err(format!("bit width {width} above 64"));
        }
        if (width as usize) > self.left() {
            return Err(format!("sample chunk truncated at bit {}", self.pos));
        }
        let mut v = 0u64;
        let mut got = 0u32;
        while got < width {
            let byte = self.bytes.get(self.pos / 8).copied().unwrap_or(0);
            let off = (self.pos % 8) as u32;
            let take = (8 - off).min(width - got);
            let part = (u64::from(byte) >> off) & ((1u64 << take) - 1);
            v |= part << got;
            got += take;
            self.pos += take as usize;
        }
        Ok(v)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.bits(8)?;
            v |= (b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 64 bits".into())
    }

    /// The chunk must end here: only zero padding up to the next byte.
    fn end(&mut self) -> Result<(), String> {
        let pad = (8 - self.pos % 8) % 8;
        if self.left() != pad {
            return Err(format!(
                "{} trailing bits after the last sample",
                self.left()
            ));
        }
        if self.bits(pad as u32)? != 0 {
            return Err("non-zero padding after the last sample".into());
        }
        Ok(())
    }
}

/// Frame of reference: (minimum, bit width of `max - min`).
fn frame(values: &[i64]) -> (i64, u32) {
    let min = values.iter().copied().min().unwrap_or(0);
    let max = values.iter().copied().max().unwrap_or(0);
    let range = (i128::from(max) - i128::from(min)) as u64;
    (min, bit_len(range))
}

/// Bits [`put_frame`] takes for `values`.
fn frame_bits(values: &[i64]) -> usize {
    if values.is_empty() {
        return 0;
    }
    let (min, width) = frame(values);
    varint_bits(zigzag(min)) + 7 + values.len() * width as usize
}

/// A column of integers: nothing when empty, else the minimum as a zig-zag varint, the bit
/// width (7 bits, 0..=64) of the largest distance to it, then every distance in that width.
/// A constant column costs its header only.
fn put_frame(w: &mut BitWriter, values: &[i64]) {
    if values.is_empty() {
        return;
    }
    let (min, width) = frame(values);
    w.varint(zigzag(min));
    w.bits(u64::from(width), 7);
    for &v in values {
        w.bits((i128::from(v) - i128::from(min)) as u64, width);
    }
}

/// Reads a column of `count` values written by [`put_frame`]; checks that its bits are
/// there before allocating.
fn get_frame(r: &mut BitReader<'_>, count: usize) -> Result<Vec<i64>, String> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let min = unzigzag(r.varint()?);
    let width = r.bits(7)? as u32;
    if width > 64 {
        return Err(format!("column bit width {width} above 64"));
    }
    if count.saturating_mul(width as usize) > r.left() {
        return Err(format!(
            "column of {count} values x {width} bits does not fit in the chunk"
        ));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(min.wrapping_add(r.bits(width)? as i64));
    }
    Ok(out)
}

fn deltas(values: &[i64]) -> Vec<i64> {
    values.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Encodes consecutive samples of one session (the session id is in the key, not here) in
/// the packed layout ([`KIND_SAMPLES_PACKED`]). At most [`MAX_CHUNK_SAMPLES`] samples: the
/// store cuts longer runs into several chunks.
///
/// Layout, a bit stream (LSB first, varints in 8-bit groups), zero-padded to a byte:
/// `count` varint; then, when `count > 0`: first `t_ms` varint; the time steps as a column;
/// the flags (bit 0 pump, bit 1 valve, bits 2–5 which channels are present) as a column;
/// then per channel with at least one value: one mode bit and either the values as a column
/// (mode 0) or the first value as a zig-zag varint and the differences as a column (mode 1),
/// whichever is smaller. Columns are frame-of-reference packed (see [`put_frame`]): a time
/// step, flag or difference that does not vary within the chunk costs no bits per sample.
pub(crate) fn encode_samples(samples: &[Sample]) -> Vec<u8> {
    let mut w = BitWriter::new(16 + samples.len() * 3);
    w.varint(samples.len() as u64);
    let Some(first) = samples.first() else {
        return w.finish();
    };
    w.varint(u64::from(first.t_ms));
    let times: Vec<i64> = samples.iter().map(|s| i64::from(s.t_ms)).collect();
    put_frame(&mut w, &deltas(&times));
    let fixed: Vec<[Option<i64>; 4]> = samples
        .iter()
        .map(|s| {
            let c = channels(s);
            std::array::from_fn(|i| to_fixed(c[i], SCALES[i]))
        })
        .collect();
    let flags: Vec<i64> = samples
        .iter()
        .zip(&fixed)
        .map(|(s, f)| {
            let mut flags = i64::from(s.pump) | (i64::from(s.valve) << 1);
            for (i, v) in f.iter().enumerate() {
                if v.is_some() {
                    flags |= 1 << (2 + i);
                }
            }
            flags
        })
        .collect();
    put_frame(&mut w, &flags);
    for ch in 0..4 {
        let values: Vec<i64> = fixed.iter().filter_map(|f| f[ch]).collect();
        let Some(&first) = values.first() else {
            continue;
        };
        let d = deltas(&values);
        if frame_bits(&values) <= varint_bits(zigzag(first)) + frame_bits(&d) {
            w.bits(0, 1);
            put_frame(&mut w, &values);
        } else {
            w.bits(1, 1);
            w.varint(zigzag(first));
            put_frame(&mut w, &d);
        }
    }
    w.finish()
}

/// Decodes a chunk made by [`encode_samples`].
pub(crate) fn decode_samples(session_id: u64, bytes: &[u8]) -> Result<Vec<Sample>, String> {
    let mut r = BitReader { bytes, pos: 0 };
    let count = r.varint()?;
    if count > MAX_CHUNK_SAMPLES as u64 {
        return Err(format!(
            "sample count {count} above the chunk limit {MAX_CHUNK_SAMPLES}"
        ));
    }
    let count = count as usize;
    if count == 0 {
        r.end()?;
        return Ok(Vec::new());
    }
    let t0 = r.varint()?;
    let steps = get_frame(&mut r, count - 1)?;
    let flags = get_frame(&mut r, count)?;
    if let Some(f) = flags.iter().find(|&&f| !(0..64).contains(&f)) {
        return Err(format!("unknown sample flags {f:#x}"));
    }
    let mut values: [Vec<i64>; 4] = Default::default();
    for (ch, column) in values.iter_mut().enumerate() {
        let present = flags.iter().filter(|&&f| f & (1 << (2 + ch)) != 0).count();
        if present == 0 {
            continue;
        }
        *column = if r.bits(1)? == 0 {
            get_frame(&mut r, present)?
        } else {
            let first = unzigzag(r.varint()?);
            let d = get_frame(&mut r, present - 1)?;
            let mut col = Vec::with_capacity(present);
            col.push(first);
            for step in d {
                let next = col.last().copied().unwrap_or(0).wrapping_add(step);
                col.push(next);
            }
            col
        };
        if let Some(v) = column
            .iter()
            .find(|v| v.unsigned_abs() > FIXED_LIMIT as u64)
        {
            return Err(format!("channel {ch} value {v} out of range"));
        }
    }
    r.end()?;
    let mut next = [0usize; 4];
    let mut t = i64::try_from(t0).map_err(|_| format!("first sample time {t0} out of range"))?;
    let mut out = Vec::with_capacity(count);
    for (i, &f) in flags.iter().enumerate() {
        if i > 0 {
            t = t.wrapping_add(steps[i - 1]);
        }
        let t_ms = u32::try_from(t).map_err(|_| format!("sample time {t} out of range"))?;
        let mut vals = [None; 4];
        for (ch, val) in vals.iter_mut().enumerate() {
            if f & (1 << (2 + ch)) != 0 {
                let v = values[ch].get(next[ch]).copied().unwrap_or(0);
                next[ch] += 1;
                *val = Some(v as f64 / SCALES[ch]);
            }
        }
        out.push(sample_from(session_id, t_ms, f & 1 != 0, f & 2 != 0, vals));
    }
    Ok(out)
}

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

/// Decodes a chunk of the first layout ([`KIND_SAMPLES_V1`], written before the packed
/// one): a varint count, then per sample the zig-zag varint time step, a flags byte and the
/// zig-zag varint difference of each present channel.
pub(crate) fn decode_samples_v1(session_id: u64, bytes: &[u8]) -> Result<Vec<Sample>, String> {
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
        let t = prev_t.wrapping_add(unzigzag(r.varint()?));
        let t_ms = u32::try_from(t).map_err(|_| format!("sample time {t} out of range"))?;
        prev_t = t;
        let flags = r.byte()?;
        if flags >> 6 != 0 {
            return Err(format!("unknown sample flags {flags:#04x}"));
        }
        let mut vals = [None; 4];
        for (i, val) in vals.iter_mut().enumerate() {
            if flags & (1 << (2 + i)) != 0 {
                let v = prev[i].wrapping_add(unzigzag(r.varint()?));
                prev[i] = v;
                *val = Some(v as f64 / SCALES[i]);
            }
        }
        out.push(sample_from(
            session_id,
            t_ms,
            flags & 1 != 0,
            flags & 2 != 0,
            vals,
        ));
    }
    if r.pos != bytes.len() {
        return Err(format!(
            "{} trailing bytes after {count} samples",
            bytes.len() - r.pos
        ));
    }
    Ok(out)
}

/// A sealed chunk in the current layout.
pub(crate) fn seal_samples(samples: &[Sample]) -> Vec<u8> {
    seal(KIND_SAMPLES_PACKED, &encode_samples(samples))
}

/// A sealed chunk of either layout back into its samples.
pub(crate) fn open_samples(session_id: u64, bytes: &[u8]) -> Result<Vec<Sample>, String> {
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

    fn v1_fixture_samples() -> Vec<Sample> {
        let s = |t_ms, mist, skin, pressure, pump, valve| Sample {
            session_id: 9,
            t_ms,
            mist_c: Some(mist),
            skin_c: skin,
            reservoir_c: Some(3.87),
            pressure_bar: pressure,
            pump,
            valve,
        };
        vec![
            s(0, 4.0, Some(41.5), Some(1.482), false, false),
            s(100, 4.03, Some(41.29), Some(1.486), true, true),
            s(200, 4.06, None, Some(1.49), true, false),
            s(300, 4.09, Some(40.87), Some(1.494), true, false),
            s(407, 4.12, Some(40.66), Some(1.498), true, true),
            s(500, 4.15, Some(40.45), None, true, false),
        ]
    }

    fn assert_close(a: &[Sample], b: &[Sample]) {
        assert_eq!(a.len(), b.len());
        for (a, b) in a.iter().zip(b) {
            assert_eq!(
                (a.session_id, a.t_ms, a.pump, a.valve),
                (b.session_id, b.t_ms, b.pump, b.valve)
            );
            for (x, y, tol) in [
                (a.mist_c, b.mist_c, 0.005),
                (a.skin_c, b.skin_c, 0.005),
                (a.reservoir_c, b.reservoir_c, 0.005),
                (a.pressure_bar, b.pressure_bar, 0.0005),
            ] {
                assert_eq!(x.is_some(), y.is_some(), "{a:?} vs {b:?}");
                if let (Some(x), Some(y)) = (x, y) {
                    assert!((x - y).abs() <= tol + 1e-9, "{a:?} vs {b:?}");
                }
            }
        }
    }

    #[test]
    fn a_chunk_of_the_first_layout_still_decodes() {
        assert_eq!(V1_CHUNK[1], KIND_SAMPLES_V1);
        let back = open_samples(9, &V1_CHUNK).unwrap();
        assert_close(&back, &v1_fixture_samples());
        // Re-written in the packed layout it reads back the same, and is smaller.
        let packed = seal_samples(&back);
        assert_eq!(packed[1], KIND_SAMPLES_PACKED);
        assert!(packed.len() < V1_CHUNK.len(), "{} bytes", packed.len());
        assert_close(&open_samples(9, &packed).unwrap(), &back);
    }

    #[test]
    fn first_layout_decoder_does_not_overflow_on_hostile_deltas() {
        // count 2; then per sample: time delta, flags (mist only), mist delta of i64::MAX.
        let mut bytes = vec![2];
        for _ in 0..2 {
            put_varint(&mut bytes, zigzag(1));
            bytes.push(1 << 2);
            put_varint(&mut bytes, zigzag(i64::MAX));
        }
        let back = decode_samples_v1(1, &bytes).unwrap();
        assert_eq!(back.len(), 2);
        let mut bytes = vec![2];
        for _ in 0..2 {
            put_varint(&mut bytes, zigzag(i64::MAX));
            bytes.push(0);
        }
        assert!(decode_samples_v1(1, &bytes).is_err());
    }

    #[test]
    fn typical_samples_are_small_and_round_trip() {
        let samples: Vec<Sample> = (0..50)
            .map(|i| sample(i * 100, Some(40.0 - f64::from(i) * 0.13)))
            .collect();
        let bytes = encode_samples(&samples);
        // Regular time step and steady flags cost nothing per sample: a few bits each.
        assert!(bytes.len() < 50 * 2, "{} bytes", bytes.len());
        assert_close(&decode_samples(7, &bytes).unwrap(), &samples);
    }

    #[test]
    fn truncated_padded_or_oversized_chunks_are_rejected() {
        let samples: Vec<Sample> = (0..20)
            .map(|i| sample(i * 100 + i % 3, Some(30.0 + f64::from(i))))
            .collect();
        let bytes = encode_samples(&samples);
        for cut in 0..bytes.len() {
            assert!(decode_samples(1, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(decode_samples(1, &padded).is_err());
        // A count above the limit is refused before anything is allocated.
        let mut w = BitWriter::new(8);
        w.varint(u64::MAX >> 1);
        let huge = w.finish();
        let err = decode_samples(1, &huge).unwrap_err();
        assert!(err.contains("above the chunk limit"), "{err}");
        // A column whose width times count exceeds the bytes left is refused.
        let mut w = BitWriter::new(8);
        w.varint(4000);
        w.varint(0);
        w.varint(0);
        w.bits(64, 7);
        let wide = w.finish();
        assert!(decode_samples(1, &wide)
            .unwrap_err()
            .contains("does not fit"));
    }

    #[test]
    fn empty_and_single_sample_chunks_round_trip() {
        assert!(decode_samples(1, &encode_samples(&[])).unwrap().is_empty());
        let one = [sample(12_345, None)];
        assert_close(&decode_samples(7, &encode_samples(&one)).unwrap(), &one);
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
                0..300)
        ) {
            let samples: Vec<Sample> = raw.iter().map(|&(t, m, s, p, pump, valve)| Sample {
                session_id: 3, t_ms: t, mist_c: m, skin_c: s, reservoir_c: m.map(|x| x / 2.0),
                pressure_bar: p, pump, valve,
            }).collect();
            let back = open_samples(3, &seal_samples(&samples)).unwrap();
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
