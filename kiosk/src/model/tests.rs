use super::*;
use std::collections::HashMap;

#[test]
fn alarm_details_are_shown_with_the_message_built_from_their_parameters() {
    use coldsprayd::model::alarm::{Alarm as DaemonAlarm, AlarmKind};
    use coldsprayd::model::alarm_text::AlarmText;
    let text = AlarmText::SkinBelowFloor {
        skin_c: 4.26,
        floor_c: 5.0,
        reading_c: None,
    };
    let raised = |message: &str| DaemonAlarm {
        kind: AlarmKind::SkinBelowFloor,
        priority: AlarmKind::SkinBelowFloor.priority(),
        message: message.into(),
        params: text.params(),
        raised_at: std::time::Duration::ZERO,
        raised_unix_ms: 7,
        condition_present: true,
        acknowledged: false,
    };
    // The daemon's English text stands apart: the kiosk's sentence comes from the values.
    let unit = UnitProperties {
        alarm_details: Some(vec![coldsprayd::dbus::convert::alarm_details(&raised(
            "not what the kiosk shows",
        ))]),
        ..UnitProperties::default()
    };
    let shown = alarms_of(&unit, Language::English);
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].key, "skin_below_floor");
    assert_eq!(shown[0].priority, Priority::High);
    assert_eq!(shown[0].message, "skin 4.3 °C < floor 5.0 °C");
    assert_eq!(shown[0].raised_unix_ms, 7);
    assert!(shown[0].present && !shown[0].acknowledged);
    // Without parameters it can read (an older record), the daemon's message is shown.
    let mut bare = raised("skin 4.3 °C < floor 5.0 °C (daemon)");
    bare.params.clear();
    let unit = UnitProperties {
        alarm_details: Some(vec![coldsprayd::dbus::convert::alarm_details(&bare)]),
        ..UnitProperties::default()
    };
    assert_eq!(
        alarms_of(&unit, Language::English)[0].message,
        "skin 4.3 °C < floor 5.0 °C (daemon)"
    );
}

fn tuple(key: &str, prio: &str, raised: i64, acked: bool) -> AlarmTuple {
    (
        key.into(),
        prio.into(),
        format!("{key} msg"),
        raised,
        true,
        acked,
    )
}

#[test]
fn alarms_are_ordered_by_priority_then_unacknowledged_then_newest() {
    let v = alarms(&[
        tuple("late_start", "low", 5, false),
        tuple("water_low", "medium", 1, false),
        tuple("estop", "high", 2, true),
        tuple("dry_run", "high", 3, false),
        tuple("skin_below_floor", "high", 4, false),
    ]);
    let keys: Vec<&str> = v.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "skin_below_floor",
            "dry_run",
            "estop",
            "water_low",
            "late_start"
        ]
    );
    assert!(v[0].what_to_do.contains("check the patient"));
}

#[test]
fn not_ready_codes_read_as_words() {
    let u = UnitProperties {
        state: Some("precooling".into()),
        ready: Some(false),
        setpoint: Some(8.0),
        temperatures: Some(HashMap::from([("reservoir".to_string(), 14.25)])),
        not_ready: Some(vec![
            "precooling".into(),
            "water_low".into(),
            "interlock:dry_run".into(),
        ]),
        ready_in: Some(f64::NAN),
        ..UnitProperties::default()
    };
    assert_eq!(
        not_ready_reasons(&u),
        [
            "Cooling water: 14.2 °C, needs 8.0 °C",
            "Water low: refill the reservoir",
            "Interlock: dry_run"
        ]
    );
    assert_eq!(ready_in(&u), None);
    assert_eq!(
        ready_in(&UnitProperties {
            ready_in: Some(42.0),
            ..u
        }),
        Some(42.0)
    );
}

#[test]
fn the_live_curve_grows_by_slices_and_starts_over_for_a_new_session() {
    let s = |t_s| CurveSample {
        t_s,
        skin_c: 30.0,
        mist_c: 5.0,
    };
    let slice = |id, from, next, n: usize| CurveSlice {
        session_id: id,
        running: true,
        next,
        from,
        samples: (0..n).map(|i| s(i as f64)).collect(),
    };
    let mut c = LiveCurve::default();
    c.add(slice(1, 0, 3, 3));
    c.add(slice(1, 3, 5, 2));
    assert_eq!((c.session_id, c.next, c.samples.len()), (1, 5, 5));
    // A slice of session 2 from index 5: not its start, asked again from 0.
    c.add(slice(2, 5, 9, 4));
    assert_eq!((c.session_id, c.next, c.samples.len()), (2, 0, 0));
    c.add(slice(2, 0, 9, 9));
    assert_eq!((c.session_id, c.next, c.samples.len()), (2, 9, 9));
}

#[test]
fn quality_forms_from_the_curve() {
    let s = |t_s, skin_c| CurveSample {
        t_s,
        skin_c,
        mist_c: 2.0,
    };
    let q = quality(
        &[s(0.0, 38.0), s(1.0, f64::NAN), s(2.0, 30.5), s(3.0, 4.0)],
        Some(30.0),
        1.0,
        5.0,
        false,
    );
    assert_eq!(q.time_to_target_s, Some(2.0));
    assert_eq!(q.peak_skin_c, Some(38.0));
    assert_eq!(q.min_skin_c, Some(4.0));
    assert!(q.below_floor);
}

#[test]
fn sessions_group_by_day_newest_first() {
    let s = |id, ms| SessionInfo {
        id,
        protocol: "pico".into(),
        started_unix_ms: ms,
        completed: true,
        ..SessionInfo::default()
    };
    let day = 86_400_000;
    let g = by_day(&[s(3, 2 * day + 5), s(2, 2 * day), s(1, day)]);
    assert_eq!(g.len(), 2);
    assert_eq!(g[0].0, "1970-01-03");
    assert_eq!(g[0].1.len(), 2);
    assert_eq!(mmss(125.4), "2:05");
}
