//! Tests of the byte layouts: both sample layouts, the envelope, the keys.

use super::*;
use proptest::prelude::*;

/// A byte varint as the first layout wrote it (to build hostile chunks).
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

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
    let err = decode_samples(1, &huge).unwrap_err().to_string();
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
        .to_string()
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
