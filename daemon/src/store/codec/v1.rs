//! The first layout of a curve chunk (envelope kind 2): byte-aligned varints, still read.

use super::{sample_from, unzigzag, CodecError, SCALES};
use crate::model::session::Sample;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, CodecError> {
        let b = *self.bytes.get(self.pos).ok_or_else(|| {
            CodecError::Chunk(format!("sample chunk truncated at byte {}", self.pos))
        })?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::Chunk("varint longer than 64 bits".into()))
    }
}

/// Decodes a chunk of the first layout ([`KIND_SAMPLES_V1`], written before the packed
/// one): a varint count, then per sample the zig-zag varint time step, a flags byte and the
/// zig-zag varint difference of each present channel.
pub(crate) fn decode_samples_v1(session_id: u64, bytes: &[u8]) -> Result<Vec<Sample>, CodecError> {
    let mut r = Reader { bytes, pos: 0 };
    let count = r.varint()?;
    // Every sample takes at least two bytes: refuse absurd counts before allocating.
    if count > (bytes.len() as u64) / 2 + 1 {
        return Err(CodecError::Chunk(format!(
            "sample count {count} does not fit in {} bytes",
            bytes.len()
        )));
    }
    let mut out = Vec::with_capacity(count as usize);
    let mut prev_t: i64 = 0;
    let mut prev = [0i64; 4];
    for _ in 0..count {
        let t = prev_t.wrapping_add(unzigzag(r.varint()?));
        let t_ms = u32::try_from(t)
            .map_err(|_| CodecError::Chunk(format!("sample time {t} out of range")))?;
        prev_t = t;
        let flags = r.byte()?;
        if flags >> 6 != 0 {
            return Err(CodecError::Chunk(format!(
                "unknown sample flags {flags:#04x}"
            )));
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
        return Err(CodecError::Chunk(format!(
            "{} trailing bytes after {count} samples",
            bytes.len() - r.pos
        )));
    }
    Ok(out)
}
