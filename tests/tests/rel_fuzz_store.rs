//! Property-based fuzzing of the treatment log's record decoder (issue #8): the envelope,
//! the curve-chunk decoders (packed layout and the first layout) and the JSON records, fed
//! arbitrary bytes, arbitrary payloads behind a valid checksum, and mutated real records
//! (bit flips, truncations, extensions). Decoding must never panic and never allocate from
//! an unchecked length; a flipped bit in a sealed value is always reported; encoded curves
//! round-trip within the fixed-point resolution (0.01 °C, 0.001 bar).
//!
//! Bounded form: proptest's default 256 cases per property (a few seconds); set
//! `PROPTEST_CASES=20000` for the full form.

use std::time::Duration;

use coldsprayd::model::session::Sample;
use coldsprayd::model::state::UnitState;
use coldsprayd::store::fuzzing::{
    decode_any, decode_chunk, encode_chunk, encode_event, seal, split, Decoded, MAX_CHUNK_SAMPLES,
};
use coldsprayd::Event;
use proptest::prelude::*;

/// A curve as the unit records it: 10 Hz with a little jitter, slowly moving temperatures,
/// sometimes a missing channel, a valve pattern; plus arbitrary samples now and then.
fn curve() -> impl Strategy<Value = Vec<Sample>> {
    let one = (
        0u32..30,
        -30i32..30,
        -5i32..5,
        prop::option::weighted(0.9, 0.0f64..1.0),
        any::<bool>(),
        any::<bool>(),
    );
    (
        prop::collection::vec(one, 0..400),
        any::<u32>(),
        prop::option::of((any::<u32>(), -1e13f64..1e13)),
    )
        .prop_map(|(steps, t0, wild)| {
            let mut t = t0 % 4_000_000;
            let (mut skin, mut mist) = (45.0f64, 4.0f64);
            let mut out: Vec<Sample> = steps
                .into_iter()
                .map(|(jitter, dskin, dmist, pressure, pump, valve)| {
                    t = t.saturating_add(90 + jitter);
                    skin += f64::from(dskin) * 0.01;
                    mist += f64::from(dmist) * 0.01;
                    Sample {
                        session_id: 5,
                        t_ms: t,
                        mist_c: Some(mist),
                        skin_c: if jitter == 0 { None } else { Some(skin) },
                        reservoir_c: Some(3.9 + f64::from(dmist) * 0.001),
                        pressure_bar: pressure.map(|p| 1.2 + p * 0.3),
                        pump,
                        valve,
                    }
                })
                .collect();
            if let (Some((t, v)), false) = (wild, out.is_empty()) {
                let i = t as usize % out.len();
                out[i].t_ms = t;
                out[i].skin_c = Some(v);
            }
            out
        })
}

/// Every sample is plausible as decoded data: finite values, a bounded count.
fn check_samples(samples: &[Sample]) {
    assert!(
        samples.len() <= MAX_CHUNK_SAMPLES,
        "{} samples",
        samples.len()
    );
    for s in samples {
        for v in [s.mist_c, s.skin_c, s.reservoir_c, s.pressure_bar]
            .into_iter()
            .flatten()
        {
            assert!(v.is_finite(), "{s:?}");
        }
    }
}

fn check_any(bytes: &[u8]) {
    match decode_any(bytes) {
        Ok(Decoded::Samples(s)) => check_samples(&s),
        Ok(Decoded::Json(kinds)) => assert!(!kinds.is_empty()),
        Err(e) => assert!(!e.is_empty(), "an error without a reason"),
    }
}

fn close(a: Option<f64>, b: Option<f64>, tol: f64) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => (a.clamp(-1e10, 1e10) - b).abs() <= tol + 1e-9,
        _ => false,
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Extend(Vec<u8>),
    Set(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        prop::collection::vec(any::<u8>(), 1..16).prop_map(Mutation::Extend),
        (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match m {
        Mutation::Flip(i, b) => {
            let i = i % bytes.len();
            bytes[i] ^= 1 << b;
        }
        Mutation::Truncate(n) => bytes.truncate(n % bytes.len()),
        Mutation::Extend(tail) => bytes.extend_from_slice(tail),
        Mutation::Set(i, v) => {
            let i = i % bytes.len();
            bytes[i] = *v;
        }
    }
}

fn state_event(unix_ms: i64, reason: String) -> Event {
    Event::StateChanged {
        at: Duration::from_millis(unix_ms.unsigned_abs() % 1_000_000_000),
        unix_ms,
        from: UnitState::Ready,
        to: UnitState::Spraying,
        reason,
        code: "session_started".into(),
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ticket = coldspray_e2e::gate::shared();
        check_any(&bytes);
    }

    #[test]
    fn arbitrary_payloads_behind_a_valid_checksum_never_panic(
        kind in 0u8..5,
        payload in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let _ticket = coldspray_e2e::gate::shared();
        check_any(&seal(kind, &payload));
    }

    #[test]
    fn curves_round_trip_within_the_fixed_point_resolution(samples in curve()) {
        let _ticket = coldspray_e2e::gate::shared();
        let sealed = encode_chunk(&samples);
        let back = decode_chunk(5, &sealed).unwrap();
        prop_assert_eq!(back.len(), samples.len());
        for (a, b) in samples.iter().zip(&back) {
            prop_assert_eq!((a.session_id, a.t_ms, a.pump, a.valve),
                            (b.session_id, b.t_ms, b.pump, b.valve));
            prop_assert!(close(a.mist_c, b.mist_c, 0.005), "{:?} {:?}", a, b);
            prop_assert!(close(a.skin_c, b.skin_c, 0.005), "{:?} {:?}", a, b);
            prop_assert!(close(a.reservoir_c, b.reservoir_c, 0.005), "{:?} {:?}", a, b);
            prop_assert!(close(a.pressure_bar, b.pressure_bar, 0.0005), "{:?} {:?}", a, b);
        }
    }

    #[test]
    fn mutated_chunks_are_refused_or_decode_sanely(
        samples in curve(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let _ticket = coldspray_e2e::gate::shared();
        let sealed = encode_chunk(&samples);
        // Behind the checksum: the decoder itself must cope with the damage.
        let (kind, payload) = split(&sealed).unwrap();
        let mut damaged = payload.to_vec();
        for m in &mutations {
            apply(&mut damaged, m);
        }
        check_any(&seal(kind, &damaged));
        // In front of it: any single flipped bit of the stored value is reported.
        if let Some(Mutation::Flip(i, b)) = mutations.first() {
            let mut flipped = sealed.clone();
            let i = i % flipped.len();
            flipped[i] ^= 1 << b;
            prop_assert!(decode_any(&flipped).is_err(), "flip at {} not detected", i);
        }
    }

    #[test]
    fn mutated_json_records_are_refused_or_decode(
        unix_ms in any::<i64>(),
        reason in ".{0,40}",
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let _ticket = coldspray_e2e::gate::shared();
        let sealed = encode_event(&state_event(unix_ms, reason)).unwrap();
        match decode_any(&sealed) {
            Ok(Decoded::Json(kinds)) => prop_assert!(kinds.contains(&"event"), "{:?}", kinds),
            other => prop_assert!(false, "a sealed event read as {:?}", other),
        }
        let (kind, payload) = split(&sealed).unwrap();
        let mut damaged = payload.to_vec();
        for m in &mutations {
            apply(&mut damaged, m);
        }
        check_any(&seal(kind, &damaged));
    }
}

/// A column claiming the largest count at the widest width must be refused before anything
/// is allocated, whatever the checksum says.
#[test]
fn huge_counts_and_widths_are_refused() {
    let _ticket = coldspray_e2e::gate::shared();
    for payload in [
        // count = u64::MAX >> 1 as a varint
        vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
        // count 4000, t0 0, step column base 0 width 64: needs 4000 x 64 bits
        vec![0xa0, 0x1f, 0, 0, 64],
    ] {
        for kind in [2, 3] {
            let err = decode_any(&seal(kind, &payload)).unwrap_err();
            assert!(!err.is_empty());
        }
    }
}
