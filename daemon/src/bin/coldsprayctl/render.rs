//! Human-readable output: the status screen, protocol and session lines, a session's detail
//! and curve, the service counters.

use crate::json::to_json;
use coldsprayd::dbus::convert::{CurvePoint, Dict};
use coldsprayd::dbus::proxy::{
    LiveSession, MaintenanceProperties, ProtocolInfo, SessionInfo, UnitProperties,
};
use std::collections::BTreeMap;

/// A temperature, or `--`.
fn opt_c(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.1} °C"))
        .unwrap_or_else(|| "--".into())
}

/// The status screen from the properties of Unit and Maintenance.
pub fn status(unit: &UnitProperties, maint: &MaintenanceProperties) -> String {
    let mut out = String::new();
    let state = unit.state.as_deref().unwrap_or_default();
    let ready = unit.ready.unwrap_or(false);
    out.push_str(&format!(
        "State       {state}{}\n",
        if ready { " (ready to spray)" } else { "" }
    ));
    let temp = |name: &str| {
        unit.temperatures
            .as_ref()
            .and_then(|t| t.get(name).copied())
    };
    out.push_str(&format!(
        "Setpoint    {}\nTemps       reservoir {}  mist {}  heatsink {}  skin {}\n",
        opt_c(unit.setpoint),
        opt_c(temp("reservoir")),
        opt_c(temp("mist")),
        opt_c(temp("heatsink")),
        opt_c(temp("skin")),
    ));
    let p = unit.pressure.filter(|x| x.is_finite());
    out.push_str(&format!(
        "Line        {}  flow {:.2} L/min{}\n",
        p.map(|x| format!("{x:.2} bar"))
            .unwrap_or_else(|| "-- bar".into()),
        unit.flow_rate.unwrap_or(0.0),
        if unit.laser_on.unwrap_or(false) {
            "  LASER ON"
        } else {
            ""
        }
    ));
    let armed = unit.armed.as_deref().unwrap_or_default();
    out.push_str(&format!(
        "Auto-start  {}\n",
        if armed.is_empty() {
            "disarmed".to_string()
        } else {
            format!("armed with {armed}")
        }
    ));
    let sess = unit.current_session.clone().unwrap_or_default();
    if sess == LiveSession::default() {
        out.push_str("Session     none\n");
    } else {
        out.push_str(&format!(
            "Session     #{} {} ({}), {:.1} s elapsed, {:.1} s left{}{}\n",
            sess.id.unwrap_or(0),
            sess.protocol.unwrap_or_default(),
            sess.goal.unwrap_or_default(),
            sess.elapsed_s.unwrap_or(0.0),
            sess.remaining_s.unwrap_or(0.0),
            if sess.late.unwrap_or(false) {
                ", LATE"
            } else {
                ""
            },
            if sess.in_band.unwrap_or(false) {
                ", in band"
            } else {
                ""
            },
        ));
    }
    let alarms = unit.active_alarms.as_deref().unwrap_or_default();
    if alarms.is_empty() {
        out.push_str("Alarms      none\n");
    } else {
        out.push_str("Alarms\n");
        for (key, prio, msg, _, present, acked) in alarms {
            out.push_str(&format!(
                "  {:<6} {:<24} {}{}{}\n",
                prio.to_uppercase(),
                key,
                msg,
                if *present { "" } else { " (latched)" },
                if *acked { " [acknowledged]" } else { "" }
            ));
        }
    }
    if unit.audio_paused.unwrap_or(false) {
        out.push_str("Audio       paused\n");
    }
    let activity = maint.activity.as_deref().unwrap_or_default();
    if maint.active.unwrap_or(false) {
        out.push_str(&format!(
            "Maintenance {}\n",
            if activity.is_empty() {
                "idle"
            } else {
                activity
            }
        ));
    }
    out.push_str(&format!(
        "Self-test   {}\nDaemon      {} ({})\n",
        maint.last_self_test.as_deref().unwrap_or_default(),
        unit.version.as_deref().unwrap_or_default(),
        unit.backend.as_deref().unwrap_or_default()
    ));
    out
}

/// One protocol on one line.
pub fn protocol_line(p: &ProtocolInfo) -> String {
    let pattern = match p.pattern.as_str() {
        "pulsed" => format!(
            "pulsed {}/{} ms",
            p.on_ms.unwrap_or(0),
            p.off_ms.unwrap_or(0)
        ),
        other => other.to_string(),
    };
    format!(
        "{:<18} {:<18} {:<8} {:>5.0} s  {:<18} pump {:>3}%  target {}  floor {}",
        p.name,
        p.title,
        p.goal,
        p.spray_s,
        pattern,
        p.pump_percent,
        opt_c(p.skin_target_c),
        opt_c(Some(p.skin_floor_c)),
    )
}

/// One session on one line.
pub fn session_line(d: &SessionInfo) -> String {
    format!(
        "#{:<5} {:<18} {:<11} {:<19} {:>7.1} s  laser->spray {}{}",
        d.id,
        d.protocol,
        d.cause,
        d.outcome,
        d.duration_s.unwrap_or(0.0),
        d.laser_to_spray_ms
            .map(|x| format!("{x:.0} ms"))
            .unwrap_or_else(|| "--".into()),
        if d.late { " LATE" } else { "" },
    )
}

/// Every key of a dictionary on its own line, sorted, the names padded to `width`.
pub fn fields(d: &Dict, width: usize) -> String {
    let sorted: BTreeMap<_, _> = d.iter().collect();
    sorted
        .into_iter()
        .map(|(k, v)| format!("{k:<width$} {}\n", to_json(v)))
        .collect()
}

/// A session's record, its curve's length, and with `curve` the curve as a table.
pub fn session_detail(rec: &Dict, points: &[CurvePoint], curve: bool) -> String {
    let mut out = fields(rec, 18);
    out.push_str(&format!("{:<18} {} points\n", "curve", points.len()));
    if curve {
        out.push_str("t_ms\tmist_c\tskin_c\treservoir_c\tpressure_bar\tpump\tvalve\n");
        for p in points {
            out.push_str(&format!(
                "{}\t{:.2}\t{:.2}\t{:.2}\t{:.2}\t{}\t{}\n",
                p.0, p.1, p.2, p.3, p.4, p.5, p.6
            ));
        }
    }
    out
}

/// The service counters from the Maintenance properties.
pub fn counters(d: &MaintenanceProperties) -> String {
    format!(
        "pump hours      {:.2}\nchiller hours   {:.2}\nsessions        {}\nlate sessions   {}\nwater changes   {}\nchiller duty    {:.0} %\nlast self-test  {}",
        d.pump_hours.unwrap_or(0.0),
        d.chiller_hours.unwrap_or(0.0),
        d.session_count.unwrap_or(0),
        d.late_session_count.unwrap_or(0),
        d.water_changes.unwrap_or(0),
        d.chiller_duty.unwrap_or(0.0) * 100.0,
        d.last_self_test.as_deref().unwrap_or_default(),
    )
}
