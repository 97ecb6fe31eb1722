//! Session: the running session's skin and mist curve with target and floor, elapsed and
//! remaining time, and the quality indicators as they form.

use super::{act, celsius, either, figure, Chart, Scale, CYAN, GREEN, GREY, RED, YELLOW};
use crate::app::{App, Message};
use crate::client::Action;
use crate::model::{self, Quality};
use iced::widget::{button, canvas, column, row, text};
use iced::{Element, Length};

/// The session screen.
pub fn view(app: &App, s: Scale) -> Element<'_, Message> {
    let Some(p) = app.poll.as_ref() else {
        return text("").into();
    };
    let run = model::running(&p.unit.current_session);
    let live = &app.live;
    if live.session_id == 0 {
        return super::banner("No session yet: start one on Home.", GREY, s);
    }
    let (id, samples) = (live.session_id, &live.samples);
    let protocol = run
        .as_ref()
        .map(|r| r.protocol.clone())
        .or_else(|| app.protocol())
        .unwrap_or_default();
    let info = app.protocol_info(&protocol);
    let target = run
        .as_ref()
        .and_then(|r| r.target_c)
        .or_else(|| info.and_then(|i| i.skin_target_c));
    let floor = run
        .as_ref()
        .and_then(|r| r.floor_c)
        .or_else(|| info.map(|i| i.skin_floor_c));
    let q = model::quality(
        samples,
        target,
        info.map_or(1.0, |i| i.band_c),
        floor.unwrap_or(f64::NEG_INFINITY),
        run.as_ref().is_some_and(|r| r.late),
    );
    let head = match &run {
        Some(r) => row![
            figure("Session", format!("#{} {}", r.id, r.protocol), CYAN, s),
            figure("Elapsed", model::mmss(r.elapsed_s), iced::Color::WHITE, s),
            figure(
                model::end_basis(r.end_basis.as_deref()),
                r.end_in_s
                    .map_or("—".into(), |e| format!("in {}", model::mmss(e))),
                iced::Color::WHITE,
                s
            ),
            either(
                "Skin",
                r.in_band,
                ("in band", GREEN),
                ("cooling", YELLOW),
                s
            ),
        ],
        None => row![figure("Session", format!("#{id} ended"), GREY, s)],
    }
    .spacing(s.gap * 2.0);
    let stop = act(
        app,
        "STOP",
        Action::Stop,
        run.is_none().then(|| "No session running".to_string()),
        s,
        button::danger,
    );
    column![
        head,
        canvas(Chart {
            samples: samples.clone(),
            span_s: info.map_or(30.0, |i| i.spray_s),
            target,
            floor,
            text: s.small,
        })
        .width(Length::Fill)
        .height(Length::Fill),
        row![indicators(&q, s), column![stop].width(s.target * 3.0)].spacing(s.gap),
    ]
    .spacing(s.gap)
    .into()
}

/// Quality indicators in one line.
pub fn indicators<'a>(q: &Quality, s: Scale) -> Element<'a, Message> {
    row![
        figure(
            "To target",
            q.time_to_target_s
                .map_or("—".into(), |t| format!("{t:.1} s")),
            iced::Color::WHITE,
            s
        ),
        figure("Peak skin", celsius(q.peak_skin_c), iced::Color::WHITE, s),
        figure(
            "Min skin",
            celsius(q.min_skin_c),
            if q.below_floor {
                RED
            } else {
                iced::Color::WHITE
            },
            s
        ),
        either("Start", q.late, ("late", YELLOW), ("on time", GREEN), s),
    ]
    .spacing(s.gap * 2.0)
    .width(Length::Fill)
    .into()
}
