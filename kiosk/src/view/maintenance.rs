//! Service: maintenance mode, prime, drain, output tests, self-test, water change and the
//! service counters.

use super::{act, figure, ActionButtons, Scale, GREEN, GREY, RED, YELLOW};
use crate::app::{App, Message};
use crate::client::Action;
use coldspray_hal::Output;
use iced::widget::{button, column, row, text, Row};
use iced::{Color, Element};

/// Seconds a prime, a drain or an output test runs.
pub const RUN_S: f64 = 5.0;

/// The service screen.
pub fn view(app: &App, s: Scale) -> Element<'_, Message> {
    let Some(p) = app.poll.as_ref() else {
        return text("").into();
    };
    let m = &p.maintenance;
    let active = m.active == Some(true);
    let need = || (!active).then(|| "Enter maintenance first".to_string());
    let mode = if active {
        act(
            app,
            "Leave maintenance",
            Action::ExitMaintenance,
            None,
            s,
            button::primary,
        )
    } else {
        act(
            app,
            "Enter maintenance",
            Action::EnterMaintenance,
            None,
            s,
            button::primary,
        )
    };
    let activity = m.activity.clone().filter(|a| !a.is_empty());
    // The technician functions need maintenance mode (or the technician role): one reason,
    // written once above them.
    let why = app
        .role
        .may("Maintenance.Prime")
        .err()
        .map(str::to_string)
        .or_else(need);
    let group = ActionButtons {
        app,
        s,
        style: button::secondary,
        reason_below: false,
    };
    let gated = |label: &str, action: Action| group.button(label, action, why.clone());
    let first = row![
        mode,
        act(
            app,
            "Water changed",
            Action::RecordWaterChange,
            None,
            s,
            button::secondary
        ),
    ]
    .spacing(s.gap);
    let second = row![
        gated(&format!("Prime {RUN_S:.0} s"), Action::Prime(RUN_S)),
        gated(&format!("Drain {RUN_S:.0} s"), Action::Drain(RUN_S)),
        gated("Self-test", Action::SelfTest),
    ]
    .spacing(s.gap);
    let outputs: Vec<Row<'_, Message>> = Output::ALL
        .chunks(4)
        .map(|chunk| {
            Row::with_children(chunk.iter().map(|o| {
                gated(
                    &o.name().replace('_', " "),
                    Action::TestOutput(o.name().to_string(), RUN_S),
                )
            }))
            .spacing(s.gap / 2.0)
        })
        .collect();
    let last = m.last_self_test.clone().unwrap_or_else(|| "—".into());
    let last_colour = match last.as_str() {
        "passed" => GREEN,
        "failed" => RED,
        _ => GREY,
    };
    let hours = |v: Option<f64>| v.map_or("—".into(), |h| format!("{h:.1} h"));
    let count = |v: Option<u64>| v.map_or("—".into(), |n| n.to_string());
    let counters = row![
        figure("Pump", hours(m.pump_hours), Color::WHITE, s),
        figure("Chiller", hours(m.chiller_hours), Color::WHITE, s),
        figure("Sessions", count(m.session_count), Color::WHITE, s),
        figure("Late", count(m.late_session_count), Color::WHITE, s),
        figure("Water changes", count(m.water_changes), Color::WHITE, s),
        figure("Self-test", last, last_colour, s),
    ]
    .spacing(s.gap * 2.0);
    let mut c = column![
        text(match &activity {
            Some(a) => format!("Running: {a}"),
            None if active => "Maintenance mode: outputs under technician control".into(),
            None => "Normal operation".into(),
        })
        .size(s.body)
        .color(if active { YELLOW } else { GREY }),
        first,
        text(match &why {
            Some(w) => format!("{w}: prime, drain, self-test, output tests ({RUN_S:.0} s each)"),
            None => format!("Prime, drain, self-test, output tests ({RUN_S:.0} s each)"),
        })
        .size(s.small)
        .color(GREY),
        second,
    ]
    .spacing(s.gap);
    for r in outputs {
        c = c.push(r);
    }
    let mut c = c.push(counters);
    let report = m.last_self_test_report.clone().unwrap_or_default();
    if !report.is_empty() {
        c = c.push(text("Last self-test report:").size(s.small).color(GREY));
    }
    for line in report {
        c = c.push(text(line).size(s.small));
    }
    super::scroll(c, s).into()
}
