//! Human-readable output: the status screen, protocol and session lines, a session's detail
//! and curve, the service counters.

use crate::json::to_json;
use coldsprayd::dbus::convert::{CurvePoint, Dict};
use coldsprayd::dbus::proxy::{ProtocolInfo, SessionInfo};
use std::collections::{BTreeMap, HashMap};

/// A number property of a property dictionary.
fn f(d: &Dict, k: &str) -> Option<f64> {
    d.get(k).and_then(|v| f64::try_from(v).ok())
}

/// A text property ("" when absent).
fn s(d: &Dict, k: &str) -> String {
    d.get(k)
        .and_then(|v| v.try_clone().ok())
        .and_then(|v| String::try_from(v).ok())
        .unwrap_or_default()
}

/// A flag property (false when absent).
fn b(d: &Dict, k: &str) -> bool {
    d.get(k)
        .and_then(|v| bool::try_from(v).ok())
        .unwrap_or(false)
}

/// A count property.
fn u(d: &Dict, k: &str) -> Option<u64> {
    d.get(k).and_then(|v| u64::try_from(v).ok())
}

/// A temperature, or `--`.
fn opt_c(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.1} °C"))
        .unwrap_or_else(|| "--".into())
}

/// The status screen from the properties of Unit and Maintenance (`GetAll`).
pub fn status(unit: &Dict, maint: &Dict) -> String {
    let mut out = String::new();
    let state = s(unit, "State");
    let ready = b(unit, "Ready");
    out.push_str(&format!(
        "State       {state}{}\n",
        if ready { " (ready to spray)" } else { "" }
    ));
    let temps: HashMap<String, f64> = unit
        .get("Temperatures")
        .and_then(|v| v.try_clone().ok())
        .and_then(|v| v.try_into().ok())
        .unwrap_or_default();
    out.push_str(&format!(
        "Setpoint    {}\nTemps       reservoir {}  mist {}  heatsink {}  skin {}\n",
        opt_c(f(unit, "Setpoint")),
        opt_c(temps.get("reservoir").copied()),
        opt_c(temps.get("mist").copied()),
        opt_c(temps.get("heatsink").copied()),
        opt_c(temps.get("skin").copied()),
    ));
    let p = f(unit, "Pressure").filter(|x| x.is_finite());
    out.push_str(&format!(
        "Line        {}  flow {:.2} L/min{}\n",
        p.map(|x| format!("{x:.2} bar"))
            .unwrap_or_else(|| "-- bar".into()),
        f(unit, "FlowRate").unwrap_or(0.0),
        if b(unit, "LaserOn") { "  LASER ON" } else { "" }
    ));
    let armed = s(unit, "Armed");
    out.push_str(&format!(
        "Auto-start  {}\n",
        if armed.is_empty() {
            "disarmed".to_string()
        } else {
            format!("armed with {armed}")
        }
    ));
    let sess: Dict = unit
        .get("CurrentSession")
        .and_then(|v| v.try_clone().ok())
        .and_then(|v| v.try_into().ok())
        .unwrap_or_default();
    if sess.is_empty() {
        out.push_str("Session     none\n");
    } else {
        out.push_str(&format!(
            "Session     #{} {} ({}), {:.1} s elapsed, {:.1} s left{}{}\n",
            u(&sess, "id").unwrap_or(0),
            s(&sess, "protocol"),
            s(&sess, "goal"),
            f(&sess, "elapsed_s").unwrap_or(0.0),
            f(&sess, "remaining_s").unwrap_or(0.0),
            if b(&sess, "late") { ", LATE" } else { "" },
            if b(&sess, "in_band") { ", in band" } else { "" },
        ));
    }
    let alarms: Vec<(String, String, String, i64, bool, bool)> = unit
        .get("ActiveAlarms")
        .and_then(|v| v.try_clone().ok())
        .and_then(|v| v.try_into().ok())
        .unwrap_or_default();
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
                if present { "" } else { " (latched)" },
                if acked { " [acknowledged]" } else { "" }
            ));
        }
    }
    if b(unit, "AudioPaused") {
        out.push_str("Audio       paused\n");
    }
    let activity = s(maint, "Activity");
    if b(maint, "Active") {
        out.push_str(&format!(
            "Maintenance {}\n",
            if activity.is_empty() {
                "idle"
            } else {
                &activity
            }
        ));
    }
    out.push_str(&format!(
        "Self-test   {}\nDaemon      {} ({})\n",
        s(maint, "LastSelfTest"),
        s(unit, "Version"),
        s(unit, "Backend")
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

/// The service counters from the Maintenance properties (`GetAll`).
pub fn counters(d: &Dict) -> String {
    format!(
        "pump hours      {:.2}\nchiller hours   {:.2}\nsessions        {}\nlate sessions   {}\nwater changes   {}\nchiller duty    {:.0} %\nlast self-test  {}",
        f(d, "PumpHours").unwrap_or(0.0),
        f(d, "ChillerHours").unwrap_or(0.0),
        u(d, "SessionCount").unwrap_or(0),
        u(d, "LateSessionCount").unwrap_or(0),
        u(d, "WaterChanges").unwrap_or(0),
        f(d, "ChillerDuty").unwrap_or(0.0) * 100.0,
        s(d, "LastSelfTest"),
    )
}
