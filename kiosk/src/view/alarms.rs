//! Alarms: IEC 60601-1-8 priorities with their colours, in priority order, each with what to
//! do and its own acknowledge; acknowledge all and the audio pause.

use super::{act, priority_colour, Scale, GREEN, GREY};
use crate::app::{App, Message};
use crate::client::Action;
use crate::model;
use iced::widget::{button, column, container, row, text};
use iced::{Border, Element, Length};

/// The alarm screen.
pub fn view(app: &App, s: Scale) -> Element<'_, Message> {
    let Some(p) = app.poll.as_ref() else {
        return text("").into();
    };
    let paused = p.unit.audio_paused == Some(true);
    let pause_label = match p.unit.audio_pause_left.filter(|l| paused && *l > 0.0) {
        Some(left) => format!("Audio paused, {} left", model::mmss(left)),
        None if paused => "Audio paused".to_string(),
        None => "Pause audio".to_string(),
    };
    let none = app.alarms.is_empty();
    let top = row![
        act(
            app,
            "Acknowledge all",
            Action::Acknowledge(String::new()),
            none.then(|| "No alarm".to_string()),
            s,
            button::primary
        ),
        act(
            app,
            &pause_label,
            Action::AudioPause,
            if none {
                Some("No alarm".to_string())
            } else {
                paused.then(|| "Already paused".to_string())
            },
            s,
            button::secondary
        ),
    ]
    .spacing(s.gap);
    let mut list = column![].spacing(s.gap);
    if none {
        list = list.push(text("No alarm").size(s.big).color(GREEN));
    }
    for a in &app.alarms {
        let c = priority_colour(a.priority);
        let status = match (a.present, a.acknowledged) {
            (true, true) => "acknowledged, condition still present",
            (true, false) => "active",
            (false, true) => "acknowledged",
            (false, false) => "condition gone, acknowledge to clear",
        };
        let card = column![
            row![
                text(a.priority.label()).size(s.body).color(c),
                text(a.key.clone()).size(s.body),
                text(format!("{} · {}", model::time_of(a.raised_unix_ms), status))
                    .size(s.small)
                    .color(GREY),
            ]
            .spacing(s.gap),
            text(a.message.clone()).size(s.body),
            text(format!("What to do: {}", a.what_to_do)).size(s.small),
            container(act(
                app,
                "Acknowledge",
                Action::Acknowledge(a.key.clone()),
                a.acknowledged.then(|| "Acknowledged".to_string()),
                s,
                button::secondary
            ))
            .width(s.target * 4.0),
        ]
        .spacing(4);
        list = list.push(
            container(card)
                .padding(s.gap)
                .width(Length::Fill)
                .style(move |_| container::Style {
                    border: Border {
                        color: c,
                        width: 3.0,
                        radius: 6.0.into(),
                    },
                    ..container::Style::default()
                }),
        );
    }
    column![top, super::scroll(list, s)].spacing(s.gap).into()
}
