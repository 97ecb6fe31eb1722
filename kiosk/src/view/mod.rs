//! What the screens look like: pure functions from [`App`] to iced elements. Big targets and
//! big text for a touchscreen read from a metre; two sizes, compact for 800×480 panels and
//! wide from 1280×800. Every action the role or the unit's state forbids is drawn disabled
//! with the reason under it, never hidden.

mod alarms;
mod chart;
mod history;
mod home;
mod maintenance;
mod protocols;
mod session;

use crate::app::{App, Link, Message, Screen};
use crate::client::Action;
use crate::model::Priority;
use iced::widget::{button, column, container, row, text, Column};
use iced::{Alignment, Border, Color, Element, Length, Size};

pub use chart::Chart;

/// Text and target sizes for a window size.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Body text, px.
    pub body: f32,
    /// Headline values, px.
    pub big: f32,
    /// Small print (reasons), px.
    pub small: f32,
    /// Minimum button height, px.
    pub target: f32,
    /// Space between blocks, px.
    pub gap: f32,
}

impl Scale {
    /// Compact below 600 px of height (800×480), wide above (1280×800).
    pub fn for_size(size: Size) -> Scale {
        if size.height < 600.0 {
            Scale {
                body: 18.0,
                big: 30.0,
                small: 14.0,
                target: 48.0,
                gap: 8.0,
            }
        } else {
            Scale {
                body: 24.0,
                big: 44.0,
                small: 18.0,
                target: 64.0,
                gap: 14.0,
            }
        }
    }
}

/// Green: ready, normal.
pub const GREEN: Color = Color::from_rgb(0.18, 0.75, 0.35);
/// IEC 60601-1-8 high priority.
pub const RED: Color = Color::from_rgb(0.90, 0.15, 0.15);
/// IEC 60601-1-8 medium priority.
pub const YELLOW: Color = Color::from_rgb(0.98, 0.80, 0.10);
/// IEC 60601-1-8 low priority.
pub const CYAN: Color = Color::from_rgb(0.15, 0.75, 0.90);
/// Inactive, unknown.
pub const GREY: Color = Color::from_rgb(0.55, 0.55, 0.58);

/// The colour of an alarm priority.
pub fn priority_colour(p: Priority) -> Color {
    match p {
        Priority::High => RED,
        Priority::Medium => YELLOW,
        Priority::Low => CYAN,
    }
}

/// The whole window: status bar, the screen, the notice line, the navigation bar.
pub fn view(app: &App, size: Size) -> Element<'_, Message> {
    let s = Scale::for_size(size);
    let body: Element<'_, Message> = match (&app.link, app.screen) {
        (Link::Up, Screen::Home) => home::view(app, s),
        (Link::Up, Screen::Session) => session::view(app, s),
        (Link::Up, Screen::Alarms) => alarms::view(app, s),
        (Link::Up, Screen::Protocols) => protocols::view(app, s),
        (Link::Up, Screen::Maintenance) => maintenance::view(app, s),
        // The log is read on its own: it stays readable while the unit reconnects.
        (_, Screen::History) => history::view(app, s),
        (Link::Connecting, _) => banner("Connecting to the unit…", GREY, s),
        (Link::Denied(why), _) => banner(
            &format!(
                "This user may not read the unit\n(needs the coldspray-operator group)\n{why}"
            ),
            YELLOW,
            s,
        ),
        (Link::Lost(why), _) => banner(
            &format!(
                "Unit not reachable — reconnecting\n{why}\nNo value is shown until it answers."
            ),
            RED,
            s,
        ),
    };
    let mut page = column![status_bar(app, s)].spacing(s.gap);
    page = page.push(container(body).height(Length::Fill).width(Length::Fill));
    if let Some(n) = &app.notice {
        page = page.push(
            text(&n.text)
                .size(s.body)
                .color(if n.ok { GREEN } else { RED }),
        );
    }
    page = page.push(nav(app, s));
    container(page).padding(s.gap).into()
}

/// State, daemon link and role, always on top.
fn status_bar(app: &App, s: Scale) -> Element<'_, Message> {
    let (label, colour) = match (&app.link, app.poll.as_ref()) {
        (Link::Up, Some(p)) => {
            let state = p.unit.state.clone().unwrap_or_else(|| "?".into());
            let c = match state.as_str() {
                "ready" => GREEN,
                "fault" => RED,
                "spraying" => CYAN,
                _ => YELLOW,
            };
            (state.to_uppercase(), c)
        }
        (Link::Lost(_), _) => ("NO CONNECTION".to_string(), RED),
        (Link::Denied(_), _) => ("NOT ALLOWED".to_string(), YELLOW),
        _ => ("CONNECTING".to_string(), GREY),
    };
    let alarm = app.alarms.first().map(|a| {
        text(format!("⚠ {}", a.key))
            .size(s.body)
            .color(priority_colour(a.priority))
    });
    let mut bar = row![lamp(colour, s.body), text(label).size(s.body).color(colour),]
        .spacing(s.gap)
        .align_y(Alignment::Center);
    if let Some(a) = alarm {
        bar = bar.push(a);
    }
    bar = bar.push(iced::widget::space::horizontal());
    bar = bar.push(text(app.role.label()).size(s.small).color(GREY));
    bar.into()
}

/// The navigation bar: one big button per screen.
fn nav(app: &App, s: Scale) -> Element<'_, Message> {
    let mut r = row![].spacing(s.gap / 2.0);
    for screen in Screen::ALL {
        let label = match screen {
            Screen::Alarms if !app.alarms.is_empty() => format!("Alarms ({})", app.alarms.len()),
            _ => screen.label().to_string(),
        };
        let style = if screen == app.screen {
            button::primary
        } else {
            button::secondary
        };
        r = r.push(
            button(
                text(label)
                    .size(s.body)
                    .width(Length::Fill)
                    .height(Length::Fill)
                    .center(),
            )
            .on_press(Message::Go(screen))
            .style(style)
            .width(Length::Fill)
            .height(s.target),
        );
    }
    r.into()
}

/// A vertical scroll area filling the height, its scroll bar beside the content, not on it.
pub fn scroll<'a>(
    content: impl Into<Element<'a, Message>>,
    s: Scale,
) -> iced::widget::Scrollable<'a, Message> {
    iced::widget::scrollable(
        container(content)
            .width(Length::Fill)
            .padding(iced::Padding::ZERO.right(s.gap * 2.0)),
    )
    .height(Length::Fill)
}

/// A coloured round lamp.
pub fn lamp<'a>(colour: Color, size: f32) -> Element<'a, Message> {
    container(text(""))
        .width(size)
        .height(size)
        .style(move |_| container::Style {
            background: Some(colour.into()),
            border: Border {
                radius: (size / 2.0).into(),
                ..Border::default()
            },
            ..container::Style::default()
        })
        .into()
}

/// A full-area message.
fn banner<'a>(what: &str, colour: Color, s: Scale) -> Element<'a, Message> {
    container(text(what.to_string()).size(s.big).color(colour).center())
        .center(Length::Fill)
        .into()
}

/// A button style of iced.
pub type Style = fn(&iced::Theme, button::Status) -> button::Style;

/// An action button; disabled, with the reason under it, when `blocked` says why or the role
/// may not call it.
pub fn act<'a>(
    app: &App,
    label: &str,
    action: Action,
    blocked: Option<String>,
    s: Scale,
    style: Style,
) -> Element<'a, Message> {
    ActionButtons {
        app,
        s,
        style,
        reason_below: true,
    }
    .button(label, action, blocked)
}

/// Action buttons of one kind: how they look, and whether a disabled one carries its reason
/// below it (`false` for a group whose common reason is written once beside it).
pub struct ActionButtons<'x> {
    /// The kiosk (its role decides what is allowed).
    pub app: &'x App,
    /// Sizes.
    pub s: Scale,
    /// The button style.
    pub style: Style,
    /// A disabled button shows its reason below it.
    pub reason_below: bool,
}

impl ActionButtons<'_> {
    /// One button for `action`, disabled when `blocked` says why or the role may not call it.
    pub fn button<'a>(
        &self,
        label: &str,
        action: Action,
        blocked: Option<String>,
    ) -> Element<'a, Message> {
        let s = self.s;
        let why = self
            .app
            .role
            .may(action.method())
            .err()
            .map(str::to_string)
            .or(blocked);
        let b = button(
            text(label.to_string())
                .size(s.body)
                .width(Length::Fill)
                .height(Length::Fill)
                .center(),
        )
        .on_press_maybe(why.is_none().then_some(Message::Do(action)))
        .style(self.style)
        .width(Length::Fill)
        .height(s.target);
        let mut c: Column<'a, Message> = column![b].spacing(2);
        if let Some(w) = why.filter(|_| self.reason_below) {
            c = c.push(text(w).size(s.small).color(GREY));
        }
        c.width(Length::Fill).into()
    }
}

/// A label and a value, the value large.
pub fn figure<'a>(label: &str, value: String, colour: Color, s: Scale) -> Element<'a, Message> {
    column![
        text(label.to_string()).size(s.small).color(GREY),
        text(value).size(s.big).color(colour),
    ]
    .spacing(0)
    .into()
}

/// A yes/no figure: the word and colour of the state it is in (`yes` when `on`).
pub fn either<'a>(
    label: &str,
    on: bool,
    yes: (&str, Color),
    no: (&str, Color),
    s: Scale,
) -> Element<'a, Message> {
    let (word, colour) = if on { yes } else { no };
    figure(label, word.to_string(), colour, s)
}

/// A °C value or a dash.
pub fn celsius(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.1} °C"))
}
