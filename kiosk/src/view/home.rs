//! Home: state, ready lamp, water temperature against the setpoint, why not ready and how
//! long until ready, the protocol to start and the one the pedal starts, start and stop.

use super::{act, celsius, figure, lamp, Scale, GREEN, GREY, YELLOW};
use crate::app::{App, Message};
use crate::client::Action;
use crate::model;
use iced::widget::{button, column, row, text};
use iced::{Alignment, Element, Length};

/// The home screen.
pub fn view(app: &App, s: Scale) -> Element<'_, Message> {
    let Some(p) = app.poll.as_ref() else {
        return text("").into();
    };
    let u = &p.unit;
    let ready = u.ready == Some(true);
    let reasons = model::not_ready_reasons(u);
    let head = row![
        lamp(if ready { GREEN } else { GREY }, s.big),
        text(if ready { "READY" } else { "NOT READY" })
            .size(s.big)
            .color(if ready { GREEN } else { YELLOW }),
    ]
    .spacing(s.gap)
    .align_y(Alignment::Center);
    let water = row![
        figure("Water", celsius(model::reservoir(u)), iced::Color::WHITE, s),
        figure("Setpoint", celsius(u.setpoint), GREY, s),
    ]
    .spacing(s.gap * 3.0);
    let mut left = column![head, water].spacing(s.gap);
    for r in &reasons {
        left = left.push(text(r.clone()).size(s.body).color(YELLOW));
    }
    if u.state.as_deref() == Some("precooling") {
        left = left.push(
            text(match model::ready_in(u) {
                Some(e) => format!("Ready in about {}", model::mmss(e)),
                None => "Time until ready: not known yet".to_string(),
            })
            .size(s.body),
        );
    }
    if u.water_low == Some(true) && !u.not_ready.iter().flatten().any(|c| c == "water_low") {
        left = left.push(text("Water low: refill").size(s.body).color(YELLOW));
    }
    let armed = u.armed.clone().filter(|a| !a.is_empty());
    let pedal = u.pedal_protocol.clone().filter(|p| !p.is_empty());
    left = left.push(
        text(match (&armed, &pedal) {
            (Some(a), _) => format!("Pedal starts: {a} (armed)"),
            (None, Some(p)) => format!("Pedal starts: {p}"),
            (None, None) => "Pedal: not armed".to_string(),
        })
        .size(s.body),
    );

    let chosen = app.protocol();
    let mut list = column![].spacing(s.gap / 2.0);
    for proto in &p.protocols {
        let on = chosen.as_deref() == Some(proto.name.as_str());
        list = list.push(
            button(text(format!("{} — {}", proto.name, proto.title)).size(s.body))
                .on_press(Message::Choose(proto.name.clone()))
                .style(if on {
                    button::primary
                } else {
                    button::secondary
                })
                .width(Length::Fill)
                .height(s.target * 0.8),
        );
    }
    let running = model::running(&u.current_session).is_some();
    let name = chosen.clone().unwrap_or_default();
    let start_blocked = if running {
        Some("A session is running".to_string())
    } else if !ready {
        Some(
            reasons
                .first()
                .cloned()
                .unwrap_or_else(|| "Not ready".into()),
        )
    } else if chosen.is_none() {
        Some("No protocol".to_string())
    } else {
        None
    };
    let stop_blocked = (!running).then(|| "No session running".to_string());
    let controls = row![
        act(
            app,
            &format!("START {name}"),
            Action::Start(name.clone()),
            start_blocked,
            s,
            button::success
        ),
        act(app, "STOP", Action::Stop, stop_blocked, s, button::danger),
    ]
    .spacing(s.gap);
    let pedal = if armed.is_some() {
        act(
            app,
            "Disarm pedal",
            Action::Disarm,
            None,
            s,
            button::secondary,
        )
    } else {
        act(
            app,
            &format!("Pedal starts {name}"),
            Action::Arm(name.clone()),
            chosen.is_none().then(|| "No protocol".to_string()),
            s,
            button::secondary,
        )
    };
    let right = column![super::scroll(list, s), controls, pedal].spacing(s.gap);
    row![
        left.width(Length::FillPortion(1)),
        right.width(Length::FillPortion(1))
    ]
    .spacing(s.gap * 2.0)
    .into()
}
