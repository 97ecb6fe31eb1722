//! Protocols: the list; technicians edit the numbers with big − / + buttons (no keyboard).

use super::{Scale, GREY};
use crate::app::{App, Field, Message};
use iced::widget::{button, column, row, text};
use iced::{Alignment, Element, Length};

/// The protocols screen.
pub fn view(app: &App, s: Scale) -> Element<'_, Message> {
    let Some(p) = app.poll.as_ref() else {
        return text("").into();
    };
    if let Some(e) = &app.editing {
        let mut c = column![text(format!("Edit {} — {}", e.name, e.title)).size(s.body)]
            .spacing(s.gap / 2.0);
        for f in Field::ALL {
            let v = f.get(e);
            let stepper = |label: &str, d: f64| {
                button(text(label.to_string()).size(s.big).center())
                    .on_press_maybe(v.is_some().then_some(Message::Step(f, d)))
                    .width(s.target * 1.2)
                    .height(s.target * 0.9)
            };
            c = c.push(
                row![
                    text(f.label()).size(s.body).width(Length::Fill),
                    stepper("−", -f.step()),
                    text(v.map_or("none".into(), |v| format!("{v:.1}")))
                        .size(s.body)
                        .width(s.target * 1.6)
                        .center(),
                    stepper("+", f.step()),
                ]
                .spacing(s.gap)
                .align_y(Alignment::Center),
            );
        }
        c = c.push(
            row![
                button(text("Save").size(s.body).center())
                    .on_press(Message::Save)
                    .style(button::success)
                    .width(Length::Fill)
                    .height(s.target),
                button(text("Cancel").size(s.body).center())
                    .on_press(Message::Cancel)
                    .style(button::secondary)
                    .width(Length::Fill)
                    .height(s.target),
            ]
            .spacing(s.gap),
        );
        return super::scroll(c, s).into();
    }
    let may_edit = app.role.may("Protocols.Update");
    let mut list = column![].spacing(s.gap / 2.0);
    for proto in &p.protocols {
        let detail = format!(
            "{} · {:.0} s {} · target {} · floor {:.1} °C",
            proto.goal,
            proto.spray_s,
            proto.pattern,
            proto
                .skin_target_c
                .map_or("none".into(), |t| format!("{t:.1} °C")),
            proto.skin_floor_c
        );
        let edit = button(text("Edit").size(s.body).center())
            .on_press_maybe(may_edit.is_ok().then(|| Message::Edit(proto.name.clone())))
            .style(button::secondary)
            .width(s.target * 2.0)
            .height(s.target * 0.8);
        list = list.push(
            row![
                column![
                    text(format!("{} — {}", proto.name, proto.title)).size(s.body),
                    text(detail).size(s.small).color(GREY),
                ]
                .width(Length::Fill),
                edit,
            ]
            .spacing(s.gap)
            .align_y(Alignment::Center),
        );
    }
    let mut c = column![].spacing(s.gap);
    if let Err(why) = may_edit {
        c = c.push(text(format!("Editing: {why}")).size(s.small).color(GREY));
    }
    c.push(super::scroll(list, s)).into()
}
