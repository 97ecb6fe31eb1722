//! History: the treatment log by day; a session opens with its curve and its indicators.

use super::session::indicators;
use super::{Chart, Scale, GREY, RED};
use crate::app::{App, Message};
use crate::model;
use iced::widget::{button, canvas, column, row, text};
use iced::{Element, Length};

/// The history screen.
pub fn view(app: &App, s: Scale) -> Element<'_, Message> {
    if let Some(opened) = &app.opened {
        let back = button(text("◀ Back").size(s.body))
            .on_press(Message::CloseSession)
            .height(s.target);
        return match opened {
            Ok((info, curve)) => column![
                row![
                    back,
                    text(format!(
                        "#{} {} · {} {} · {}",
                        info.id,
                        info.protocol,
                        model::day_of(info.started_unix_ms),
                        model::time_of(info.started_unix_ms),
                        info.outcome
                    ))
                    .size(s.body)
                ]
                .spacing(s.gap),
                canvas(Chart {
                    samples: curve.clone(),
                    span_s: info.duration_s.unwrap_or(30.0),
                    target: info.skin_target_c,
                    floor: Some(info.skin_floor_c),
                    text: s.small,
                })
                .width(Length::Fill)
                .height(Length::Fill),
                indicators(&model::recorded_quality(info), s),
            ]
            .spacing(s.gap)
            .into(),
            Err(e) => column![back, text(e.to_string()).size(s.body).color(RED)].into(),
        };
    }
    let sessions = match &app.history {
        None => return text("Reading the treatment log…").size(s.body).into(),
        Some(Err(e)) => {
            return text(format!("Treatment log not readable: {e}"))
                .size(s.body)
                .color(RED)
                .into()
        }
        Some(Ok(v)) => v,
    };
    let mut list = column![].spacing(s.gap / 2.0);
    if sessions.is_empty() {
        list = list.push(text("No session recorded yet").size(s.body).color(GREY));
    }
    for (day, items) in model::by_day(sessions) {
        list = list.push(text(day).size(s.body).color(GREY));
        for i in items {
            let line = format!(
                "{}  #{} {}  {}  {}",
                model::time_of(i.started_unix_ms),
                i.id,
                i.protocol,
                i.duration_s
                    .map_or("running".into(), |d| format!("{d:.1} s")),
                i.outcome
            );
            list = list.push(
                button(text(line).size(s.body))
                    .on_press(Message::Open(i.id))
                    .style(button::secondary)
                    .width(Length::Fill)
                    .height(s.target * 0.8),
            );
        }
    }
    super::scroll(list, s).into()
}
