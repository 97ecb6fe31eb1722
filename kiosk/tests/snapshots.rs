//! Every screen of a fixed, busy unit (alarms, a running session, history, maintenance) at
//! both panel sizes, without a daemon: each text inside the window and no two texts on top
//! of each other, and the rendered pixels equal to the reviewed snapshot
//! (`kiosk/tests/snapshots/*.sha256`; `KIOSK_SNAPSHOTS=update` rewrites them and saves the
//! PNGs under `target/kiosk-snapshots/` to look at).

use coldspray_kiosk::app::{App, Message, Screen};
use coldspray_kiosk::client::Reply;
use coldspray_kiosk::model::{CurveSample, CurveSlice, Poll};
use coldspray_kiosk::role::Role;
use coldspray_kiosk::view;
use coldsprayd::dbus::proxy::{
    LiveSession, MaintenanceProperties, ProtocolInfo, SessionInfo, UnitProperties,
};
use iced::{Rectangle, Size, Theme};
use iced_test::selector::Candidate;
use iced_test::Simulator;
use std::collections::HashMap;
use std::path::PathBuf;

const SIZES: [Size; 2] = [Size::new(800.0, 480.0), Size::new(1280.0, 800.0)];

fn protocol(name: &str, title: &str, target: f64) -> ProtocolInfo {
    ProtocolInfo {
        name: name.into(),
        title: title.into(),
        goal: "protect".into(),
        spray_s: 60.0,
        pattern: "pulsed".into(),
        on_ms: Some(500),
        off_ms: Some(500),
        pump_percent: 60,
        skin_target_c: Some(target),
        skin_floor_c: 10.0,
        band_c: 1.0,
        hold_s: 3.0,
    }
}

fn session(id: u64, started_unix_ms: i64, outcome: &str) -> SessionInfo {
    SessionInfo {
        id,
        protocol: "co2_fractional".into(),
        goal: "protect".into(),
        cause: "trigger".into(),
        started_unix_ms,
        ended_unix_ms: Some(started_unix_ms + 14_000),
        duration_s: Some(14.0),
        outcome: outcome.into(),
        completed: true,
        late: false,
        laser_to_spray_ms: Some(12.0),
        skin_target_c: Some(26.0),
        skin_floor_c: 10.0,
        peak_skin_c: Some(41.2),
        min_skin_c: Some(25.4),
        time_to_target_ms: Some(9_400),
        above_40_ms: Some(800),
        spray_ms: 14_000,
        ended_by_alarm: None,
    }
}

fn curve(n: u32) -> Vec<CurveSample> {
    (0..n)
        .map(|i| {
            let t = f64::from(i) / 10.0;
            CurveSample {
                t_s: t,
                skin_c: 26.0 + 14.0 * (-t / 4.0).exp(),
                mist_c: 4.0 + 10.0 * (-t / 2.0).exp(),
            }
        })
        .collect()
}

/// A unit spraying, with a high and a medium alarm and a paused buzzer.
fn busy_unit() -> App {
    let day = 1_764_500_000_000; // 2025-11-30
    let unit = UnitProperties {
        state: Some("spraying".into()),
        ready: Some(false),
        temperatures: Some(HashMap::from([
            ("reservoir".to_string(), 4.1),
            ("skin".to_string(), 29.3),
            ("mist".to_string(), 5.0),
        ])),
        setpoint: Some(4.0),
        active_alarms: Some(vec![
            (
                "water_low".into(),
                "medium".into(),
                "reservoir float switch: water low".into(),
                day,
                true,
                false,
            ),
            (
                "sensor_stale:skin".into(),
                "high".into(),
                "skin: no valid reading for 2.0 s (no response)".into(),
                day + 1_000,
                false,
                true,
            ),
        ]),
        current_session: Some(LiveSession {
            id: Some(12),
            protocol: Some("co2_fractional".into()),
            goal: Some("protect".into()),
            elapsed_s: Some(8.0),
            remaining_s: Some(112.0),
            end_in_s: Some(4.5),
            end_basis: Some("hold".into()),
            skin_target_c: Some(26.0),
            skin_floor_c: Some(10.0),
            late: Some(false),
            in_band: Some(false),
        }),
        armed: Some(String::new()),
        laser_on: Some(false),
        audio_paused: Some(true),
        audio_pause_left: Some(95.0),
        not_ready: Some(vec!["spraying".into(), "water_low".into()]),
        ready_in: Some(f64::NAN),
        water_low: Some(true),
        pedal_protocol: Some("co2_fractional".into()),
        version: Some("0.1.0".into()),
        backend: Some("sim".into()),
        ..UnitProperties::default()
    };
    let maintenance = MaintenanceProperties {
        active: Some(false),
        activity: Some(String::new()),
        pump_hours: Some(12.5),
        chiller_hours: Some(30.1),
        session_count: Some(412),
        late_session_count: Some(3),
        water_changes: Some(9),
        chiller_duty: Some(0.4),
        last_self_test: Some("passed".into()),
        last_self_test_report: Some(vec![
            "reservoir: TMP117 ok, 4.10 °C".into(),
            "skin: MLX90614 ok, 32.39 °C".into(),
        ]),
    };
    let poll = Poll {
        unit,
        maintenance,
        protocols: vec![
            protocol("pico", "Pico", 30.0),
            protocol("co2_fractional", "CO2 fractional", 26.0),
            protocol("rf_microneedling", "RF microneedling", 27.0),
        ],
        curve: Some(CurveSlice {
            session_id: 12,
            running: true,
            next: 80,
            from: 0,
            samples: curve(80),
        }),
    };
    let mut app = App::new(Role::Operator, Screen::Home);
    app.update(Message::Tick(0.0));
    app.update(Message::Reply(Reply::Polled(Ok(Box::new(poll)))));
    app.update(Message::Reply(Reply::History(Ok(vec![
        session(12, day + 86_400_000, "completed"),
        session(11, day + 3_600_000, "stopped"),
        session(10, day, "completed"),
    ]))));
    app
}

/// Texts inside the window, none on top of another.
fn check_layout(app: &App, size: Size, name: &str) {
    let mut ui = Simulator::with_size(
        iced_test::core::Settings::default(),
        size,
        view::view(app, size),
    );
    let mut texts: Vec<(String, Rectangle)> = Vec::new();
    let _ = ui.find(|c: Candidate<'_>| {
        if let Candidate::Text {
            content,
            visible_bounds: Some(b),
            ..
        } = c
        {
            if !content.is_empty() {
                texts.push((content.to_string(), b));
            }
        }
        None::<()>
    });
    assert!(texts.len() > 5, "{name}: {} texts", texts.len());
    let window = Rectangle::new(iced::Point::ORIGIN, size);
    for (t, b) in &texts {
        assert!(
            b.x >= -0.5
                && b.y >= -0.5
                && b.x + b.width <= window.width + 0.5
                && b.y + b.height <= window.height + 0.5,
            "{name}: {t:?} at {b:?} outside {size:?}"
        );
    }
    for (i, (ta, a)) in texts.iter().enumerate() {
        for (tb, b) in &texts[i + 1..] {
            let overlap = a.intersection(b).map_or(0.0, |r| r.width * r.height);
            assert!(overlap < 1.0, "{name}: {ta:?} {a:?} overlaps {tb:?} {b:?}");
        }
    }
}

/// The rendered screen against its reviewed hash.
fn check_snapshot(app: &App, size: Size, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let update = std::env::var("KIOSK_SNAPSHOTS").is_ok_and(|v| v == "update");
    let mut ui = Simulator::with_size(
        iced_test::core::Settings::default(),
        size,
        view::view(app, size),
    );
    let snap = ui.snapshot(&Theme::Dark).expect("snapshot");
    let hash = dir.join(name);
    if update {
        let _ = std::fs::remove_file(dir.join(format!("{name}-tiny-skia.sha256")));
        let png = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/kiosk-snapshots")
            .join(name);
        let _ = std::fs::remove_file(png.with_file_name(format!("{name}-tiny-skia.png")));
        assert!(snap.matches_image(&png).expect("png written"));
    } else {
        assert!(
            dir.join(format!("{name}-tiny-skia.sha256")).exists(),
            "{name}: no reviewed snapshot (KIOSK_SNAPSHOTS=update writes it)"
        );
    }
    assert!(
        snap.matches_hash(&hash).expect("hash"),
        "{name}: the screen differs from its reviewed snapshot; look at it with \
         KIOSK_SNAPSHOTS=update (target/kiosk-snapshots/) and commit the new hash if right"
    );
}

#[test]
fn every_screen_fits_both_panels_and_matches_its_snapshot() {
    let mut app = busy_unit();
    for size in SIZES {
        for screen in Screen::ALL {
            app.update(Message::Go(screen));
            let name = format!(
                "{}-{}x{}",
                screen.label().to_lowercase(),
                size.width,
                size.height
            );
            check_layout(&app, size, &name);
            check_snapshot(&app, size, &name);
        }
        // A session opened from the history.
        app.update(Message::Go(Screen::History));
        app.update(Message::Reply(Reply::Session(Ok(Box::new((
            session(12, 1_764_586_400_000, "completed"),
            curve(140)
                .into_iter()
                .map(|s| {
                    (
                        (s.t_s * 1000.0) as u32,
                        s.mist_c,
                        s.skin_c,
                        4.0,
                        1.2,
                        true,
                        true,
                    )
                })
                .collect(),
        ))))));
        let name = format!("history-session-{}x{}", size.width, size.height);
        check_layout(&app, size, &name);
        check_snapshot(&app, size, &name);
        app.update(Message::CloseSession);
    }
}

#[test]
fn the_unreachable_screen_fits_and_shows_no_value() {
    let mut app = busy_unit();
    app.update(Message::Tick(1.0));
    app.update(Message::Reply(Reply::Polled(Err(
        coldspray_kiosk::client::ClientError::Unreachable("ServiceUnknown".into()),
    ))));
    for size in SIZES {
        let name = format!("unreachable-{}x{}", size.width, size.height);
        check_layout(&app, size, &name);
        check_snapshot(&app, size, &name);
    }
}
