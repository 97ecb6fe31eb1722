//! The kiosk's state and how each message changes it. `update` is a pure function of the state
//! and the message that may ask for one [`Request`] to the daemon; the window (main.rs) or a
//! test carries the request out and feeds the [`Reply`] back, so every screen is driven
//! headlessly by the same code that runs on the unit.

use crate::alarm_text::Language;
use crate::client::{Action, ClientError, Reply, Request};
use crate::model::{self, Alarm, CurveSample, LiveCurve, Poll};
use crate::role::Role;
use coldsprayd::dbus::proxy::{ProtocolInfo, SessionInfo};

/// The screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// State, ready lamp, water temperature, start/stop.
    Home,
    /// The running session's curve.
    Session,
    /// Alarms, acknowledge, audio pause.
    Alarms,
    /// The treatment log.
    History,
    /// The protocols.
    Protocols,
    /// Technician functions.
    Maintenance,
}

impl Screen {
    /// Every screen, in the navigation bar's order.
    pub const ALL: [Screen; 6] = [
        Screen::Home,
        Screen::Session,
        Screen::Alarms,
        Screen::History,
        Screen::Protocols,
        Screen::Maintenance,
    ];

    /// Its name in the navigation bar.
    pub fn label(self) -> &'static str {
        match self {
            Screen::Home => "Home",
            Screen::Session => "Session",
            Screen::Alarms => "Alarms",
            Screen::History => "History",
            Screen::Protocols => "Protocols",
            Screen::Maintenance => "Service",
        }
    }

    /// From its lower-case name (`--screen`).
    pub fn from_name(name: &str) -> Option<Screen> {
        Screen::ALL.into_iter().find(|s| {
            s.label().eq_ignore_ascii_case(name) || format!("{s:?}").eq_ignore_ascii_case(name)
        })
    }
}

/// The link to the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// No answer yet.
    Connecting,
    /// The last poll was answered.
    Up,
    /// The last poll failed: the daemon is gone or restarting.
    Lost(String),
    /// The daemon answered, but this user may not read the unit (not in the operator group).
    Denied(String),
}

/// A numeric field of a protocol the edit screen changes with big − / + buttons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Spray time, s.
    SprayS,
    /// Skin target, °C.
    TargetC,
    /// Skin floor, °C.
    FloorC,
    /// Hold time in the band, s.
    HoldS,
}

impl Field {
    /// Every editable field.
    pub const ALL: [Field; 4] = [Field::SprayS, Field::TargetC, Field::FloorC, Field::HoldS];

    /// The D-Bus key.
    pub fn key(self) -> &'static str {
        match self {
            Field::SprayS => "spray_s",
            Field::TargetC => "skin_target_c",
            Field::FloorC => "skin_floor_c",
            Field::HoldS => "hold_s",
        }
    }

    /// Label and unit.
    pub fn label(self) -> &'static str {
        match self {
            Field::SprayS => "Spray time, s",
            Field::TargetC => "Skin target, °C",
            Field::FloorC => "Skin floor, °C",
            Field::HoldS => "Hold in band, s",
        }
    }

    /// The step of one press.
    pub fn step(self) -> f64 {
        match self {
            Field::SprayS | Field::HoldS => 1.0,
            Field::TargetC | Field::FloorC => 0.5,
        }
    }

    /// Its value in a protocol.
    pub fn get(self, p: &ProtocolInfo) -> Option<f64> {
        match self {
            Field::SprayS => Some(p.spray_s),
            Field::TargetC => p.skin_target_c,
            Field::FloorC => Some(p.skin_floor_c),
            Field::HoldS => Some(p.hold_s),
        }
    }

    fn set(self, p: &mut ProtocolInfo, v: f64) {
        match self {
            Field::SprayS => p.spray_s = v,
            Field::TargetC => p.skin_target_c = Some(v),
            Field::FloorC => p.skin_floor_c = v,
            Field::HoldS => p.hold_s = v,
        }
    }
}

/// Everything that happens to the kiosk.
#[derive(Debug, Clone)]
pub enum Message {
    /// The clock: monotonic seconds since the kiosk started (asks for a poll).
    Tick(f64),
    /// The daemon signalled a change (properties, state, an alarm): read it now.
    Changed,
    /// A navigation button.
    Go(Screen),
    /// The daemon's answer to a request.
    Reply(Reply),
    /// An action button.
    Do(Action),
    /// The protocol Start and Arm use.
    Choose(String),
    /// Opens a session of the history.
    Open(u64),
    /// Back to the list of sessions.
    CloseSession,
    /// Edit a protocol (admin).
    Edit(String),
    /// One press of − or + on a field being edited.
    Step(Field, f64),
    /// Save the edited protocol.
    Save,
    /// Leave the editor without saving.
    Cancel,
}

/// A message on the screen after an action: it worked, or why not.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// It worked.
    pub ok: bool,
    /// What to say.
    pub text: String,
}

/// The kiosk.
#[derive(Debug, Clone)]
pub struct App {
    /// Who runs it.
    pub role: Role,
    /// The screen shown.
    pub screen: Screen,
    /// The link to the daemon.
    pub link: Link,
    /// The last poll; `None` while the daemon is not reachable (no stale value is shown).
    pub poll: Option<Poll>,
    /// Alarms of the last poll, in display order.
    pub alarms: Vec<Alarm>,
    /// The running (or last) session's curve, as `Sessions.LiveCurve` gives it.
    pub live: LiveCurve,
    /// The treatment log (newest first), once loaded.
    pub history: Option<Result<Vec<SessionInfo>, ClientError>>,
    /// The session opened from the history.
    pub opened: Option<Result<(SessionInfo, Vec<CurveSample>), ClientError>>,
    /// The protocol Start and Arm use.
    pub chosen: Option<String>,
    /// The protocol being edited.
    pub editing: Option<ProtocolInfo>,
    /// The result of the last action.
    pub notice: Option<Notice>,
    /// Clock of the last tick, s.
    pub now_s: f64,
    /// A poll is on its way.
    polling: bool,
    /// A change was signalled while a poll was on its way: read again when it is back.
    stale: bool,
}

impl App {
    /// A kiosk for `role`, on `screen`, not yet connected.
    pub fn new(role: Role, screen: Screen) -> App {
        App {
            role,
            screen,
            link: Link::Connecting,
            poll: None,
            alarms: Vec::new(),
            live: LiveCurve::default(),
            history: None,
            opened: None,
            chosen: None,
            editing: None,
            notice: None,
            now_s: 0.0,
            polling: false,
            stale: false,
        }
    }

    /// The protocol Start and Arm use: the chosen one, else the armed one, else the first.
    pub fn protocol(&self) -> Option<String> {
        let poll = self.poll.as_ref()?;
        self.chosen
            .clone()
            .or_else(|| poll.unit.armed.clone().filter(|a| !a.is_empty()))
            .or_else(|| poll.protocols.first().map(|p| p.name.clone()))
    }

    /// The description of a protocol of the last poll.
    pub fn protocol_info(&self, name: &str) -> Option<&ProtocolInfo> {
        self.poll
            .as_ref()?
            .protocols
            .iter()
            .find(|p| p.name == name)
    }

    /// Applies a message; returns the request to send to the daemon, if any.
    pub fn update(&mut self, message: Message) -> Option<Request> {
        match message {
            Message::Tick(now) => {
                self.now_s = now;
                self.poll_now()
            }
            Message::Changed => {
                if self.polling {
                    self.stale = true;
                }
                self.poll_now()
            }
            Message::Go(screen) => {
                self.screen = screen;
                self.notice = None;
                (screen == Screen::History).then_some(Request::History)
            }
            Message::Reply(reply) => self.on_reply(reply),
            Message::Do(action) => {
                if let Err(why) = self.role.may(action.method()) {
                    self.notice = Some(Notice {
                        ok: false,
                        text: why.to_string(),
                    });
                    return None;
                }
                Some(Request::Act(action))
            }
            Message::Choose(p) => {
                self.chosen = Some(p);
                None
            }
            Message::Open(id) => Some(Request::Session(id)),
            Message::CloseSession => {
                self.opened = None;
                None
            }
            Message::Edit(name) => {
                self.editing = self.protocol_info(&name).cloned();
                None
            }
            Message::Step(field, delta) => {
                if let Some(p) = self.editing.as_mut() {
                    let v = field.get(p).unwrap_or(0.0) + delta;
                    field.set(p, (v * 10.0).round() / 10.0);
                }
                None
            }
            Message::Save => {
                let p = self.editing.take()?;
                let fields = Field::ALL
                    .into_iter()
                    .filter_map(|f| f.get(&p).map(|v| (f.key().to_string(), v)))
                    .collect();
                self.update(Message::Do(Action::UpdateProtocol(p.name, fields)))
            }
            Message::Cancel => {
                self.editing = None;
                None
            }
        }
    }

    fn on_reply(&mut self, reply: Reply) -> Option<Request> {
        match reply {
            Reply::Polled(r) => {
                self.polling = false;
                match r {
                    Ok(p) => self.polled(*p),
                    Err(e) => self.lost(e),
                }
                // What was signalled meanwhile may not be in this answer.
                std::mem::take(&mut self.stale)
                    .then(|| self.poll_now())
                    .flatten()
            }
            Reply::History(r) => {
                self.history = Some(r);
                None
            }
            Reply::Session(r) => {
                self.opened = Some(r.map(|b| (b.0, model::curve(&b.1))));
                None
            }
            Reply::Acted(action, r) => {
                self.notice = Some(match r {
                    Ok(()) => Notice {
                        ok: true,
                        text: action.done_text(),
                    },
                    Err(e) => Notice {
                        ok: false,
                        text: e.to_string(),
                    },
                });
                // Show the effect at once rather than at the next tick.
                self.poll_now()
            }
        }
    }

    /// A poll, unless one is on its way already.
    fn poll_now(&mut self) -> Option<Request> {
        if self.polling {
            return None;
        }
        self.polling = true;
        Some(Request::Poll(self.live.next))
    }

    /// A poll answered: the model follows it.
    fn polled(&mut self, p: Poll) {
        self.link = Link::Up;
        self.alarms = model::alarms_of(&p.unit, Language::default());
        if let Some(slice) = p.curve.clone() {
            self.live.add(slice);
        }
        if let Some(c) = &self.chosen {
            if !p.protocols.iter().any(|x| &x.name == c) {
                self.chosen = None;
            }
        }
        self.poll = Some(p);
    }

    /// The daemon went away: nothing it said before is shown any more.
    fn lost(&mut self, e: ClientError) {
        self.link = match &e {
            ClientError::Refused { .. } => Link::Denied(e.to_string()),
            _ => Link::Lost(e.to_string()),
        };
        self.poll = None;
        self.alarms.clear();
        self.live = LiveCurve::default();
        self.editing = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coldsprayd::dbus::proxy::UnitProperties;

    fn poll(state: &str) -> Reply {
        Reply::Polled(Ok(Box::new(Poll {
            unit: UnitProperties {
                state: Some(state.into()),
                ready: Some(state == "ready"),
                ..UnitProperties::default()
            },
            ..Poll::default()
        })))
    }

    #[test]
    fn a_tick_polls_once_until_the_answer_comes() {
        let mut app = App::new(Role::Operator, Screen::Home);
        assert_eq!(app.update(Message::Tick(0.1)), Some(Request::Poll(0)));
        assert_eq!(app.update(Message::Tick(0.2)), None);
        app.update(Message::Reply(poll("ready")));
        assert_eq!(app.link, Link::Up);
        assert_eq!(app.update(Message::Tick(0.3)), Some(Request::Poll(0)));
    }

    #[test]
    fn a_signalled_change_polls_at_once_or_again_after_the_poll_under_way() {
        let mut app = App::new(Role::Operator, Screen::Home);
        assert_eq!(app.update(Message::Changed), Some(Request::Poll(0)));
        // Two more changes while that poll is out: one more poll, after the answer.
        assert_eq!(app.update(Message::Changed), None);
        assert_eq!(app.update(Message::Changed), None);
        assert_eq!(
            app.update(Message::Reply(poll("ready"))),
            Some(Request::Poll(0))
        );
        assert_eq!(app.update(Message::Reply(poll("ready"))), None);
        assert_eq!(app.update(Message::Tick(1.0)), Some(Request::Poll(0)));
    }

    #[test]
    fn a_lost_daemon_leaves_no_stale_value() {
        let mut app = App::new(Role::Operator, Screen::Home);
        app.update(Message::Tick(0.0));
        app.update(Message::Reply(poll("ready")));
        assert!(app.poll.is_some());
        app.update(Message::Tick(1.0));
        app.update(Message::Reply(Reply::Polled(Err(
            ClientError::Unreachable("ServiceUnknown".into()),
        ))));
        assert!(app.poll.is_none());
        assert!(matches!(app.link, Link::Lost(_)));
        // and the next tick tries again
        assert_eq!(app.update(Message::Tick(2.0)), Some(Request::Poll(0)));
    }

    #[test]
    fn a_refused_poll_is_said_as_such_not_as_a_lost_daemon() {
        let mut app = App::new(Role::Viewer, Screen::Home);
        app.update(Message::Tick(0.0));
        app.update(Message::Reply(Reply::Polled(Err(ClientError::Refused {
            name: "AccessDenied".into(),
            message: "not for outsiders".into(),
        }))));
        assert!(matches!(app.link, Link::Denied(_)));
        assert!(app.poll.is_none());
    }

    #[test]
    fn an_action_the_role_may_not_do_is_not_sent() {
        let mut app = App::new(Role::Operator, Screen::Maintenance);
        assert_eq!(app.update(Message::Do(Action::Prime(10.0))), None);
        assert!(app.notice.as_ref().is_some_and(|n| !n.ok));
        assert_eq!(
            app.update(Message::Do(Action::Stop)),
            Some(Request::Act(Action::Stop))
        );
    }

    #[test]
    fn screen_names_parse() {
        assert_eq!(Screen::from_name("service"), Some(Screen::Maintenance));
        assert_eq!(Screen::from_name("maintenance"), Some(Screen::Maintenance));
        assert_eq!(Screen::from_name("history"), Some(Screen::History));
    }
}
