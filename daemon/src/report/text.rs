//! The report's words: title, outcome and quality indicators in plain language, each with
//! its unit, so the picture reads without the README.

use crate::dbus::proxy::SessionInfo;

/// Name of the skin curve in the legend.
pub const SKIN_LABEL: &str = "Skin temperature (sensor)";
/// Name of the mist curve in the legend.
pub const MIST_LABEL: &str = "Mist temperature at the nozzle";
/// Horizontal axis label.
pub const X_AXIS: &str = "Time since the session started (seconds)";
/// Vertical axis label.
pub const Y_AXIS: &str = "Temperature (°C)";

/// "Cooling treatment report — session 12".
pub fn title(s: &SessionInfo) -> String {
    format!("Cooling treatment report — session {}", s.id)
}

/// Protocol, goal, start time (UTC), duration and what started it.
pub fn subtitle(s: &SessionInfo) -> String {
    let goal = match s.goal.as_str() {
        "protect" => "cool the skin down to the target after the laser",
        "prepare" => "hold the skin in the target band before the dressing",
        other => other,
    };
    let start = chrono::DateTime::from_timestamp_millis(s.started_unix_ms).map_or_else(
        || "start time unknown".to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    );
    let lasted = s
        .duration_s
        .map_or("still running".to_string(), |d| format!("lasted {d:.1} s"));
    let cause = match s.cause.as_str() {
        "auto_start" => "started automatically when the laser stopped",
        "trigger" => "started with the foot pedal",
        "command" => "started from the touchscreen or command line",
        other => other,
    };
    format!(
        "Protocol {} (goal: {goal}) · {start} · {lasted} · {cause}",
        s.protocol
    )
}

/// How the session ended, in plain words, and whether it did its job.
pub fn outcome(s: &SessionInfo) -> (String, bool) {
    let words = match s.outcome.as_str() {
        "target_reached" => "the skin reached the target temperature".to_string(),
        "ready_for_dressing" => "the skin held the target band: ready for the dressing".into(),
        "duration_elapsed" => "the protocol's spray time ran out".into(),
        "stopped" => "stopped by the operator".into(),
        "interlock" => format!(
            "stopped by a safety interlock ({})",
            s.ended_by_alarm.as_deref().unwrap_or("alarm not recorded")
        ),
        "shutdown" => "the unit shut down during the session".into(),
        "aborted" => "interrupted by a power loss or crash".into(),
        "running" => "still running when this report was drawn".into(),
        other => other.to_string(),
    };
    let verdict = if s.completed {
        "COMPLETED"
    } else {
        "NOT COMPLETED"
    };
    (format!("Outcome: {verdict} — {words}"), s.completed)
}

fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// The quality indicators, one line each (docs/REQUIREMENTS.md §4).
pub fn indicators(s: &SessionInfo) -> Vec<String> {
    let delay = match s.laser_to_spray_ms {
        Some(ms) => format!(
            "Laser stop → spray start: {} ms ({})",
            if ms < 10.0 {
                format!("{ms:.1}")
            } else {
                format!("{ms:.0}")
            },
            if s.late { "LATE" } else { "on time" }
        ),
        None => "Laser stop → spray start: no laser pass before this session".into(),
    };
    let target = match (s.skin_target_c, s.time_to_target_ms) {
        (Some(t), Some(ms)) => format!("Skin reached the target ({t:.1} °C) after {}", secs(ms)),
        (Some(t), None) => format!("Skin did not reach the target ({t:.1} °C)"),
        (None, _) => "This protocol has no skin target".into(),
    };
    let skin = match (s.peak_skin_c, s.min_skin_c) {
        (Some(hi), Some(lo)) => format!("Skin: warmest {hi:.1} °C, coldest {lo:.1} °C"),
        _ => "Skin: no sensor readings".into(),
    };
    let hot = s.above_40_ms.map_or_else(
        || "Skin above 40 °C after the laser: not measured".into(),
        |ms| format!("Skin above 40 °C after the laser: {}", secs(ms)),
    );
    let spray = format!("Spraying: {} in total", secs(s.spray_ms));
    vec![delay, target, skin, hot, spray]
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn session() -> SessionInfo {
        SessionInfo {
            id: 7,
            protocol: "co2_fractional".into(),
            goal: "protect".into(),
            cause: "auto_start".into(),
            started_unix_ms: 1_796_000_000_000,
            ended_unix_ms: Some(1_796_000_012_000),
            duration_s: Some(12.0),
            outcome: "interlock".into(),
            completed: false,
            late: true,
            laser_to_spray_ms: Some(612.0),
            skin_target_c: Some(15.0),
            skin_floor_c: 5.0,
            peak_skin_c: Some(41.5),
            min_skin_c: Some(20.0),
            time_to_target_ms: None,
            above_40_ms: Some(1500),
            spray_ms: 11_800,
            ended_by_alarm: Some("over_pressure".into()),
        }
    }

    #[test]
    fn an_interlocked_late_session_says_so_in_plain_words() {
        let s = session();
        let (line, ok) = outcome(&s);
        assert!(!ok);
        assert!(line.contains("NOT COMPLETED"), "{line}");
        assert!(line.contains("over_pressure"), "{line}");
        let all = indicators(&s).join("\n");
        assert!(all.contains("612 ms (LATE)"), "{all}");
        assert!(all.contains("did not reach the target (15.0 °C)"), "{all}");
        assert!(all.contains("1.5 s"), "{all}");
        let sub = subtitle(&s);
        assert!(sub.contains("co2_fractional"), "{sub}");
        assert!(sub.contains("UTC"), "{sub}");
        assert!(sub.contains("automatically"), "{sub}");
    }

    #[test]
    fn a_session_without_laser_or_sensor_is_not_given_invented_figures() {
        let mut s = session();
        s.laser_to_spray_ms = None;
        s.peak_skin_c = None;
        s.min_skin_c = None;
        s.skin_target_c = None;
        s.above_40_ms = None;
        let all = indicators(&s).join("\n");
        assert!(all.contains("no laser pass"), "{all}");
        assert!(all.contains("no sensor readings"), "{all}");
        assert!(all.contains("no skin target"), "{all}");
        assert!(all.contains("not measured"), "{all}");
    }
}
