//! Every screen driven headlessly (iced_test: click, read) by the kiosk's own update and view
//! code, against the real `coldsprayd` on the simulated unit on a private D-Bus bus: the same
//! requests the window sends, the same replies.

use coldspray_e2e::rel::SimDaemon;
use coldspray_e2e::{PrivateBus, TempDir};
use coldspray_kiosk::app::{App, Link, Message, Screen};
use coldspray_kiosk::client::{Bus, Client};
use coldspray_kiosk::role::Role;
use coldspray_kiosk::view;
use coldsprayd::dbus::proxy::{uncached, SimulatorProxy};
use iced::{Point, Size};
use iced_test::selector::Candidate;
use iced_test::Simulator;
use std::time::{Duration, Instant};

/// The small panel.
const SMALL: Size = Size::new(800.0, 480.0);

/// The kiosk's state and its client, driven by a test, and the daemon it talks to.
struct Kiosk {
    app: App,
    client: Client,
    started: Instant,
    daemon: SimDaemon,
    bus: PrivateBus,
    _dir: TempDir,
}

type Ui<'a> = Simulator<'a, Message>;

impl Kiosk {
    /// The real daemon on the sim, on a private bus, near its setpoint so it is ready soon.
    fn start(role: Role) -> Kiosk {
        let bus = PrivateBus::start(&coldspray_e2e::current_user()).expect("private bus");
        let dir = TempDir::new("kiosk").expect("temp dir");
        let daemon = SimDaemon::spawn(&bus, dir.path(), 1.0, "initial_reservoir_c = 4.3", "")
            .expect("coldsprayd --sim");
        let client = Client::new(Bus::Address(bus.address().to_string()));
        Kiosk {
            app: App::new(role, Screen::Home),
            client,
            started: Instant::now(),
            daemon,
            bus,
            _dir: dir,
        }
    }

    /// Applies a message and carries out every request it leads to.
    async fn send(&mut self, m: Message) {
        let mut next = self.app.update(m);
        while let Some(r) = next {
            let reply = self.client.clone().perform(r).await;
            next = self.app.update(Message::Reply(reply));
        }
    }

    /// One tick of the clock (a poll).
    async fn tick(&mut self) {
        let now = self.started.elapsed().as_secs_f64();
        self.send(Message::Tick(now)).await;
    }

    /// Polls until `done` holds, at most 60 s.
    async fn until(&mut self, what: &str, done: impl Fn(&App) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.tick().await;
            if done(&self.app) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn state_is(&mut self, state: &str) {
        self.until(state, |a| {
            a.poll.as_ref().and_then(|p| p.unit.state.as_deref()) == Some(state)
        })
        .await;
    }

    /// Renders the screen, runs `interact` on it and applies the messages it produced.
    async fn on_screen(&mut self, interact: impl FnOnce(&mut Ui<'_>)) {
        let messages: Vec<Message> = {
            let mut ui = ui(&self.app);
            interact(&mut ui);
            ui.into_messages().collect()
        };
        for m in messages {
            self.send(m).await;
        }
    }

    /// Presses a navigation button.
    async fn go(&mut self, screen: Screen) {
        self.on_screen(|ui| click(ui, screen.label())).await;
        assert_eq!(self.app.screen, screen);
    }

    /// Every text on the screen, in layout order.
    fn texts(&self) -> Vec<String> {
        let mut ui = ui(&self.app);
        let mut found = Vec::new();
        let _ = ui.find(|c: Candidate<'_>| {
            if let Candidate::Text { content, .. } = c {
                found.push(content.to_string());
            }
            None::<()>
        });
        found
    }

    /// Some text on the screen starts with `prefix`.
    fn shows(&self, prefix: &str) -> bool {
        self.texts().iter().any(|t| t.starts_with(prefix))
    }

    /// The notice line.
    fn notice(&self) -> String {
        self.app
            .notice
            .as_ref()
            .map(|n| n.text.clone())
            .unwrap_or_default()
    }
}

/// The screen of `app` on the small panel.
fn ui(app: &App) -> Ui<'_> {
    Simulator::with_size(
        iced_test::core::Settings::default(),
        SMALL,
        view::view(app, SMALL),
    )
}

/// Clicks the first text that starts with `prefix` (a button's label).
fn click(ui: &mut Ui<'_>, prefix: &str) {
    let at = ui
        .find(|c: Candidate<'_>| match c {
            Candidate::Text {
                content,
                visible_bounds: Some(b),
                ..
            } if content.starts_with(prefix) => Some(b.center()),
            _ => None,
        })
        .unwrap_or_else(|e| panic!("no {prefix:?} on screen: {e}"));
    // Not `ui.click(point)`: that clicks the centre of the outermost widget under the point.
    ui.point_at(Point::new(at.x, at.y));
    ui.simulate(iced_test::simulator::click());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_session_history_a_treatment_from_start_to_record() {
    let mut k = Kiosk::start(Role::Operator);
    k.state_is("ready").await;
    assert!(k.shows("READY"), "{:?}", k.texts());
    assert!(k.shows("Water"));
    assert!(k.shows("Pedal starts: "), "{:?}", k.texts());

    // Arm the pedal with nd_yag, disarm it, then start pico by hand.
    k.on_screen(|ui| click(ui, "nd_yag")).await;
    k.on_screen(|ui| click(ui, "Arm pedal: nd_yag")).await;
    assert_eq!(k.notice(), "Pedal starts nd_yag");
    k.until("armed", |a| {
        a.poll.as_ref().and_then(|p| p.unit.armed.as_deref()) == Some("nd_yag")
    })
    .await;
    assert!(k.shows("Pedal starts: nd_yag (armed)"), "{:?}", k.texts());
    k.on_screen(|ui| click(ui, "Disarm pedal")).await;
    assert_eq!(k.notice(), "Pedal disarmed");
    k.on_screen(|ui| click(ui, "pico")).await;
    k.on_screen(|ui| click(ui, "START pico")).await;
    assert_eq!(k.notice(), "Started pico");
    k.state_is("spraying").await;

    // The session screen draws the curve as it forms.
    k.go(Screen::Session).await;
    for _ in 0..10 {
        k.tick().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let samples = k.app.live.samples.len();
    assert!(samples >= 5, "{samples} live samples");
    assert!(k.shows("#1 pico"), "{:?}", k.texts());
    assert!(k.shows("Ends ("), "{:?}", k.texts());
    assert!(k.shows("Peak skin"));
    k.on_screen(|ui| click(ui, "STOP")).await;
    assert_eq!(k.notice(), "Stopped");
    k.state_is("ready").await;

    // The record, with its curve and indicators.
    k.go(Screen::History).await;
    let line = k
        .texts()
        .into_iter()
        .find(|t| t.contains("#1 pico"))
        .unwrap_or_else(|| panic!("the session in the list: {:?}", k.texts()));
    assert!(line.contains("stopped"), "{line}");
    k.on_screen(|ui| click(ui, &line)).await;
    let opened = k.app.opened.clone().expect("opened").expect("read");
    assert_eq!(opened.0.id, 1);
    assert!(opened.1.len() > 5, "{} curve points", opened.1.len());
    assert!(k.shows("◀ Back"));
    assert!(k.shows("To target"));
    k.on_screen(|ui| click(ui, "◀ Back")).await;
    assert!(k.app.opened.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_in_priority_order_with_what_to_do_and_acknowledge() {
    let mut k = Kiosk::start(Role::Operator);
    k.state_is("ready").await;
    let conn = k.bus.connect().await.expect("client connection");
    let sim: SimulatorProxy = uncached(&conn).await.expect("proxy");
    sim.inject_fault("water_low", "").await.expect("fault");
    sim.set_estop(true).await.expect("estop");
    k.until("two alarms", |a| a.alarms.len() >= 2).await;
    k.go(Screen::Alarms).await;
    let texts = k.texts();
    let high = texts.iter().position(|t| t == "HIGH").expect("HIGH");
    let medium = texts.iter().position(|t| t == "MEDIUM").expect("MEDIUM");
    assert!(high < medium, "high first: {texts:?}");
    assert!(k.shows("What to do: refill, acknowledge"), "{texts:?}");
    assert!(k.shows("Alarms (2)"));

    // Fix both causes, pause the sound, acknowledge all: the list empties.
    sim.clear_all_faults().await.expect("clear");
    sim.set_estop(false).await.expect("release");
    k.on_screen(|ui| click(ui, "Pause audio")).await;
    assert_eq!(k.notice(), "Audio paused");
    k.on_screen(|ui| click(ui, "Acknowledge all")).await;
    assert_eq!(k.notice(), "All alarms acknowledged");
    k.until("no alarm", |a| a.alarms.is_empty()).await;
    assert!(k.shows("No alarm"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_role_may_not_do_is_disabled_with_the_reason() {
    let mut k = Kiosk::start(Role::Operator);
    k.state_is("ready").await;
    k.go(Screen::Maintenance).await;
    assert!(
        k.shows("Technicians only (coldspray-admin): prime"),
        "{:?}",
        k.texts()
    );
    // A disabled button sends nothing.
    k.on_screen(|ui| click(ui, "Prime")).await;
    assert_eq!(k.app.notice, None);
    k.go(Screen::Protocols).await;
    assert!(k.shows("Editing: Technicians only"));
    k.on_screen(|ui| click(ui, "Edit")).await;
    assert!(k.app.editing.is_none());

    // A technician edits pico's spray time with the + button, and the daemon keeps it.
    k.app.role = Role::Admin;
    let before = k.app.protocol_info("pico").expect("pico").spray_s;
    k.on_screen(|ui| click(ui, "Edit")).await;
    assert!(k.shows("Edit pico"), "{:?}", k.texts());
    k.on_screen(|ui| click(ui, "+")).await;
    k.on_screen(|ui| click(ui, "Save")).await;
    assert_eq!(k.notice(), "pico saved");
    k.until("the saved spray time", |a| {
        a.protocol_info("pico")
            .is_some_and(|p| p.spray_s == before + 1.0)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_going_away_is_said_no_value_stays_and_it_reconnects() {
    let mut k = Kiosk::start(Role::Operator);
    k.state_is("ready").await;
    assert!(k.shows("Water"));
    k.daemon.kill9();
    k.until("the link lost", |a| matches!(a.link, Link::Lost(_)))
        .await;
    assert!(k.app.poll.is_none());
    assert!(k.shows("Unit not reachable"), "{:?}", k.texts());
    assert!(!k.shows("Water"), "no stale value");
    assert!(k.shows("NO CONNECTION"));
    k.daemon.start().expect("restart");
    k.state_is("ready").await;
    assert_eq!(k.app.link, Link::Up);
    assert!(k.shows("READY"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_reaches_the_kiosk_by_the_daemons_signals_without_a_tick() {
    use futures_util::StreamExt;
    let mut k = Kiosk::start(Role::Operator);
    k.state_is("ready").await;
    let changes = coldspray_kiosk::client::changes(Bus::Address(k.bus.address().to_string()));
    let mut changes = Box::pin(changes);
    let conn = k.bus.connect().await.expect("client connection");
    let sim: SimulatorProxy = uncached(&conn).await.expect("proxy");
    sim.set_estop(true).await.expect("estop");
    // Only signals from here on: each one read as the kiosk reads it, no clock tick.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !k.app.alarms.iter().any(|a| a.key == "estop") {
        let left = deadline.saturating_duration_since(Instant::now());
        let signal = tokio::time::timeout(left, changes.next()).await;
        assert!(
            matches!(signal, Ok(Some(()))),
            "no signal led to the estop alarm"
        );
        k.send(Message::Changed).await;
    }
    let estop = k
        .app
        .alarms
        .iter()
        .find(|a| a.key == "estop")
        .expect("estop");
    assert_eq!(estop.message, "E-stop pressed");
}
