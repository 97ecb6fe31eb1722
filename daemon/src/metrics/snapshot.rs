//! Metrics read at scrape time: the latest [`Snapshot`], the static unit facts, the shared
//! [`Telemetry`] counters and the log store's size. Nothing here touches the control loop:
//! the snapshot is an `Arc` the loop already published.

use super::family::{flag, Family};
use crate::api::Snapshot;
use crate::handle::ControlHandle;
use crate::model::alarm::{AlarmKind, Priority};
use crate::model::state::UnitState;
use crate::telemetry::{Telemetry, STEP_BUCKETS_S};
use coldspray_hal::{Output, Sensor};
use prometheus::proto::MetricFamily;
use std::sync::atomic::Ordering;

/// Pascals per bar: pressures are exported in the SI base unit.
const PA_PER_BAR: f64 = 100_000.0;

/// The `sensor` label of an alarm: the sensor's name for sensor alarms, empty otherwise (an
/// empty label is no label to Prometheus). Bounded: at most one value per fitted sensor.
pub(crate) fn sensor_label(kind: AlarmKind) -> &'static str {
    kind.sensor().map_or("", |s| s.name())
}

/// Whether an alarm whose condition is present says `sensor`'s reading cannot be trusted
/// (stale, implausible or stuck), whatever value the reading still holds.
fn distrusted(snap: &Snapshot, sensor: Sensor) -> bool {
    snap.alarms
        .iter()
        .any(|a| a.condition_present && a.kind.sensor() == Some(sensor))
}

/// Appends the scrape-time families for `handle` to `out`.
pub(crate) fn collect(handle: &ControlHandle, out: &mut Vec<MetricFamily>) {
    let snap = handle.snapshot();
    unit(handle, &snap, out);
    alarms(&snap, out);
    telemetry(&handle.telemetry, out);
    store(handle, out);
}

fn unit(handle: &ControlHandle, snap: &Snapshot, out: &mut Vec<MetricFamily>) {
    Family::gauge(
        "coldspray_build_info",
        "Daemon version and backend; always 1.",
    )
    .value(
        &[
            ("version", &handle.info.version),
            ("backend", &handle.info.backend),
        ],
        1.0,
    )
    .into(out);

    let mut temps = Family::gauge(
        "coldspray_temperature_celsius",
        "Last valid calibrated temperature per sensor; absent while the sensor has no valid reading.",
    );
    let mut valid = Family::gauge(
        "coldspray_sensor_valid",
        "1 when the sensor has a valid reading now, 0 when stale, implausible, stuck, faulty or \
         not fitted.",
    );
    for sensor in Sensor::ALL {
        let reading = snap.reading(sensor);
        if sensor.is_temperature() {
            temps = temps.maybe(&[("sensor", sensor.name())], reading);
        }
        let trusted = reading.is_some() && !distrusted(snap, sensor);
        valid = valid.value(&[("sensor", sensor.name())], flag(trusted));
    }
    temps.into(out);
    valid.into(out);
    Family::gauge(
        "coldspray_line_pressure_pascals",
        "Line pressure at the pump above atmospheric pressure; absent while the sensor has no \
         valid reading.",
    )
    .maybe(
        &[],
        snap.reading(Sensor::Pressure).map(|bar| bar * PA_PER_BAR),
    )
    .into(out);
    Family::gauge(
        "coldspray_flow_cubic_meters_per_second",
        "Water flow through the flow meter.",
    )
    .value(&[], snap.flow_l_min / 60_000.0)
    .into(out);
    Family::gauge(
        "coldspray_reservoir_setpoint_celsius",
        "Reservoir temperature setpoint of the chiller thermostat.",
    )
    .value(&[], snap.setpoint_c)
    .into(out);

    let mut outputs = Family::gauge(
        "coldspray_output_on",
        "1 when the output is driven on, per output signal.",
    );
    for output in Output::ALL {
        outputs = outputs.value(&[("output", output.name())], flag(snap.output(output)));
    }
    outputs.into(out);

    let mut states = Family::gauge(
        "coldspray_state",
        "1 for the unit's current operating state, 0 for the others.",
    );
    for state in UnitState::ALL {
        states = states.value(&[("state", state.name())], flag(snap.state == state));
    }
    states.into(out);
    Family::gauge(
        "coldspray_state_duration_seconds",
        "Time spent in the current state so far.",
    )
    .value(&[], snap.at.saturating_sub(snap.state_since).as_secs_f64())
    .into(out);
    Family::gauge("coldspray_ready", "1 when the unit can spray at once.")
        .value(&[], flag(snap.ready))
        .into(out);
    Family::gauge(
        "coldspray_autostart_armed",
        "1 when auto-start is armed with a protocol.",
    )
    .value(&[], flag(snap.armed.is_some()))
    .into(out);
    Family::gauge(
        "coldspray_laser_emitting",
        "1 while the laser reports emission.",
    )
    .value(&[], flag(snap.laser_on))
    .into(out);
    Family::gauge("coldspray_session_active", "1 while a session is running.")
        .value(&[], flag(snap.session.is_some()))
        .into(out);
    Family::gauge(
        "coldspray_session_skin_min_so_far_celsius",
        "Coldest skin reading of the running session so far; absent without a session or skin sensor.",
    )
    .maybe(&[], snap.session.as_ref().and_then(|s| s.min_skin_c))
    .into(out);
    Family::gauge(
        "coldspray_chiller_duty_ratio",
        "Fraction of the last 10 minutes the chiller was on (0-1).",
    )
    .value(&[], snap.chiller_duty)
    .into(out);
    Family::counter(
        "coldspray_pump_running_seconds_total",
        "Lifetime pump running time (service counter).",
    )
    .value(&[], snap.counters.pump_seconds)
    .into(out);
    Family::counter(
        "coldspray_chiller_running_seconds_total",
        "Lifetime chiller running time (service counter).",
    )
    .value(&[], snap.counters.chiller_seconds)
    .into(out);
    Family::counter(
        "coldspray_water_changes_total",
        "Water changes recorded (service counter).",
    )
    .value(&[], snap.counters.water_changes as f64)
    .into(out);
    Family::gauge(
        "coldspray_self_test_passed",
        "1 when the last self-test passed, 0 when it failed; absent before the first one.",
    )
    .maybe(&[], snap.last_self_test.map(|(_, passed)| flag(passed)))
    .into(out);
}

fn alarms(snap: &Snapshot, out: &mut Vec<MetricFamily>) {
    let mut active = Family::gauge(
        "coldspray_alarms_active",
        "Alarms active or latched, by priority, kind and sensor (empty unless a sensor alarm).",
    );
    for kind in AlarmKind::every(&Sensor::ALL) {
        for priority in Priority::ALL {
            let n = snap
                .alarms
                .iter()
                .filter(|a| a.kind == kind && a.priority == priority)
                .count();
            // Every kind's own priority is always present (0 when quiet); another priority
            // only appears while such an alarm exists, so the series set stays fixed.
            if n > 0 || priority == kind.priority() {
                active = active.value(
                    &[
                        ("priority", priority.name()),
                        ("kind", kind.code()),
                        ("sensor", sensor_label(kind)),
                    ],
                    n as f64,
                );
            }
        }
    }
    active.into(out);
    Family::gauge(
        "coldspray_alarms_unacknowledged",
        "Active or latched alarms nobody acknowledged yet.",
    )
    .value(
        &[],
        snap.alarms.iter().filter(|a| !a.acknowledged).count() as f64,
    )
    .into(out);
    Family::gauge(
        "coldspray_alarm_audio_paused",
        "1 while the alarm sound is paused by an operator.",
    )
    .value(
        &[],
        flag(snap.audio_paused_until.is_some_and(|until| until > snap.at)),
    )
    .into(out);
}

fn telemetry(t: &Telemetry, out: &mut Vec<MetricFamily>) {
    let counts: Vec<u64> = t
        .step_buckets
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect();
    let sum = t.step_ns_sum.load(Ordering::Relaxed) as f64 / 1e9;
    Family::histogram(
        "coldspray_control_step_duration_seconds",
        "Time one control-loop step took.",
    )
    .histogram_value(&[], &STEP_BUCKETS_S, &counts, sum)
    .into(out);
    for (name, help, count) in [
        (
            "coldspray_control_step_overruns_total",
            "Control-loop steps that finished after their deadline.",
            &t.overruns,
        ),
        (
            "coldspray_events_lagged_total",
            "Events a slow consumer (D-Bus, metrics, live view) missed.",
            &t.events_lagged,
        ),
        (
            "coldspray_log_store_write_errors_total",
            "Treatment-log writes that failed.",
            &t.store_write_errors,
        ),
    ] {
        Family::counter(name, help)
            .value(&[], count.load(Ordering::Relaxed) as f64)
            .into(out);
    }

    let mut calls = Family::counter(
        "coldspray_dbus_calls_total",
        "D-Bus method calls handled, per method.",
    );
    let mut errors = Family::counter(
        "coldspray_dbus_call_errors_total",
        "D-Bus method calls answered with an error, per method.",
    );
    for (method, (n, errs)) in t.dbus_calls() {
        calls = calls.value(&[("method", &method)], n as f64);
        errors = errors.value(&[("method", &method)], errs as f64);
    }
    calls.into(out);
    errors.into(out);
}

fn store(handle: &ControlHandle, out: &mut Vec<MetricFamily>) {
    Family::gauge(
        "coldspray_log_store_available",
        "1 when the treatment log is open and takes writes, 0 when the unit runs without it \
         or its last write failed.",
    )
    .value(
        &[],
        flag(handle.store.is_some() && !handle.telemetry.store_health.failing()),
    )
    .into(out);
    Family::gauge(
        "coldspray_log_store_size_bytes",
        "Disk space the treatment log uses; absent when the store cannot tell.",
    )
    .maybe(
        &[],
        handle
            .store
            .as_ref()
            .and_then(|s| s.size_on_disk())
            .map(|b| b as f64),
    )
    .into(out);
}
