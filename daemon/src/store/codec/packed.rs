//! The packed layout of a curve chunk (envelope kind 3, written since schema version 2):
//! frame-of-reference bit-packed columns. See [`encode_samples`].

use super::{
    channels, sample_from, to_fixed, unzigzag, zigzag, CodecError, MAX_CHUNK_SAMPLES, SCALES,
};
use crate::model::session::Sample;

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
pub(super) struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    pending: u32,
}

impl BitWriter {
    pub(super) fn new(capacity: usize) -> Self {
        BitWriter {
            out: Vec::with_capacity(capacity),
            acc: 0,
            pending: 0,
        }
    }

    /// The low `width` (0..=64) bits of `v`.
    pub(super) fn bits(&mut self, v: u64, width: u32) {
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
    pub(super) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.bits((v & 0x7f) | 0x80, 8);
            v >>= 7;
        }
        self.bits(v, 8);
    }

    pub(super) fn finish(mut self) -> Vec<u8> {
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

    fn bits(&mut self, width: u32) -> Result<u64, CodecError> {
        if width > 64 {
            return Err(CodecError::Chunk(format!("bit width {width} above 64")));
        }
        if (width as usize) > self.left() {
            return Err(CodecError::Chunk(format!(
                "sample chunk truncated at bit {}",
                self.pos
            )));
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

    fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.bits(8)?;
            v |= (b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::Chunk("varint longer than 64 bits".into()))
    }

    /// The chunk must end here: only zero padding up to the next byte.
    fn end(&mut self) -> Result<(), CodecError> {
        let pad = (8 - self.pos % 8) % 8;
        if self.left() != pad {
            return Err(CodecError::Chunk(format!(
                "{} trailing bits after the last sample",
                self.left()
            )));
        }
        if self.bits(pad as u32)? != 0 {
            return Err(CodecError::Chunk(
                "non-zero padding after the last sample".into(),
            ));
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
fn get_frame(r: &mut BitReader<'_>, count: usize) -> Result<Vec<i64>, CodecError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let min = unzigzag(r.varint()?);
    let width = r.bits(7)? as u32;
    if width > 64 {
        return Err(CodecError::Chunk(format!(
            "column bit width {width} above 64"
        )));
    }
    if count.saturating_mul(width as usize) > r.left() {
        return Err(CodecError::Chunk(format!(
            "column of {count} values x {width} bits does not fit in the chunk"
        )));
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
pub(crate) fn decode_samples(session_id: u64, bytes: &[u8]) -> Result<Vec<Sample>, CodecError> {
    let mut r = BitReader { bytes, pos: 0 };
    let count = r.varint()?;
    if count > MAX_CHUNK_SAMPLES as u64 {
        return Err(CodecError::Chunk(format!(
            "sample count {count} above the chunk limit {MAX_CHUNK_SAMPLES}"
        )));
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
        return Err(CodecError::Chunk(format!("unknown sample flags {f:#x}")));
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
            return Err(CodecError::Chunk(format!(
                "channel {ch} value {v} out of range"
            )));
        }
    }
    r.end()?;
    let mut next = [0usize; 4];
    let mut t = i64::try_from(t0)
        .map_err(|_| CodecError::Chunk(format!("first sample time {t0} out of range")))?;
    let mut out = Vec::with_capacity(count);
    for (i, &f) in flags.iter().enumerate() {
        if i > 0 {
            t = t.wrapping_add(steps[i - 1]);
        }
        let t_ms = u32::try_from(t)
            .map_err(|_| CodecError::Chunk(format!("sample time {t} out of range")))?;
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
