//! The live terminal view of the unit: state, temperatures, outputs, session and alarms.

use crate::api::Snapshot;
use coldspray_hal::{Output, Sensor};
use std::fmt::Write;

/// Renders a snapshot as a small text panel.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    let temp =
        |v: Option<f64>, unit: &str| v.map_or("   --  ".to_string(), |t| format!("{t:6.2} {unit}"));
    let _ = writeln!(
        out,
        "ColdSpray  t={:>8.1}s  state: {:<11} {}  setpoint {:.1} °C",
        s.at.as_secs_f64(),
        s.state.name(),
        if s.ready { "READY" } else { "     " },
        s.setpoint_c
    );
    let _ = writeln!(
        out,
        "  reservoir {}   mist {}   heatsink {}",
        temp(s.reading(Sensor::Reservoir), "°C"),
        temp(s.reading(Sensor::Mist), "°C"),
        temp(s.reading(Sensor::Heatsink), "°C"),
    );
    let _ = writeln!(
        out,
        "  skin      {}   line {}   flow {:5.2} L/min   laser {}",
        temp(s.reading(Sensor::Skin), "°C"),
        temp(s.reading(Sensor::Pressure), "bar"),
        s.flow_l_min,
        if s.laser_on { "EMITTING" } else { "off" }
    );
    let outs: Vec<String> = Output::ALL
        .into_iter()
        .map(|o| format!("{}:{}", o.name(), if s.output(o) { "ON" } else { "off" }))
        .collect();
    let _ = writeln!(out, "  outputs   {}", outs.join(" "));
    match (&s.session, &s.armed) {
        (Some(p), _) => {
            let _ = writeln!(
                out,
                "  session   #{} {} ({}) {:.1}s, {:.0}s left, laser->spray {}{}, skin peak {} min {}",
                p.start.id,
                p.start.protocol,
                p.start.goal.name(),
                p.elapsed_s,
                p.remaining_s,
                p.start
                    .laser_to_spray_ms
                    .map_or("n/a".into(), |d| format!("{d:.0} ms")),
                if p.start.late { " LATE" } else { "" },
                p.peak_skin_c.map_or("--".into(), |v| format!("{v:.1}")),
                p.min_skin_c.map_or("--".into(), |v| format!("{v:.1}")),
            );
        }
        (None, Some(armed)) => {
            let _ = writeln!(out, "  auto-start armed: {armed}");
        }
        (None, None) => {
            let _ = writeln!(out, "  no session");
        }
    }
    if s.alarms.is_empty() {
        let _ = writeln!(out, "  alarms    none");
    }
    for a in &s.alarms {
        let _ = writeln!(
            out,
            "  ALARM     [{:<6}] {:<28} {}{}{}",
            a.priority.name(),
            a.kind.key(),
            a.message,
            if a.acknowledged {
                " (acknowledged)"
            } else {
                ""
            },
            if a.condition_present {
                ""
            } else {
                " (cause gone)"
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_state_readings_and_alarms() {
        let mut s = Snapshot::power_on(4.0);
        s.readings[Sensor::Reservoir.index()] = Some(4.25);
        s.outputs[Output::Chiller.index()] = true;
        s.alarms.push(crate::model::alarm::Alarm {
            kind: crate::model::alarm::AlarmKind::WaterLow,
            priority: crate::model::alarm::Priority::Medium,
            message: "refill".into(),
            params: Default::default(),
            raised_at: Default::default(),
            raised_unix_ms: 0,
            condition_present: true,
            acknowledged: false,
        });
        let text = render(&s);
        assert!(text.contains("state: starting"), "{text}");
        assert!(text.contains("reservoir   4.25 °C"), "{text}");
        assert!(text.contains("chiller:ON"), "{text}");
        assert!(text.contains("[medium] water_low"), "{text}");
    }
}
