//! `coldspray-kiosk`: the touchscreen kiosk of the ColdSpray unit, a client of `coldsprayd`
//! over D-Bus. Runs full-screen under `cage` on the unit, or in a window on a desktop.

use anyhow::Context;
use clap::Parser;
use coldspray_kiosk::app::{App, Message, Screen};
use coldspray_kiosk::client::{self, Bus, Client, Request};
use coldspray_kiosk::role::Role;
use coldspray_kiosk::view;
use iced::{Size, Subscription, Task};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How often the kiosk reads the unit without being told of a change: the live curve during
/// a session, the clocks on the screens, and a safety net for a missed signal. Changes of
/// state, properties and alarms are read when the daemon signals them.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// Command line.
#[derive(Debug, Clone, Parser)]
#[command(
    version,
    about = "Touchscreen kiosk of the ColdSpray unit (D-Bus client of coldsprayd)"
)]
struct Cli {
    /// D-Bus address of the daemon's bus (default: the system bus).
    #[arg(long, env = "COLDSPRAY_BUS_ADDRESS")]
    address: Option<String>,
    /// Use the session bus (a developer's `coldsprayd --sim`).
    #[arg(long)]
    session: bool,
    /// The role the screens assume: viewer, operator or admin (default: admin on the session
    /// bus, where the daemon checks nobody; else from this process's groups). The daemon still
    /// decides what is allowed.
    #[arg(long, value_parser = parse_role)]
    role: Option<Role>,
    /// The screen to open: home, session, alarms, history, protocols, service.
    #[arg(long, default_value = "home", value_parser = parse_screen)]
    screen: Screen,
    /// Window width, px (ignored full-screen).
    #[arg(long, default_value_t = 800.0)]
    width: f32,
    /// Window height, px (ignored full-screen).
    #[arg(long, default_value_t = 480.0)]
    height: f32,
    /// Full-screen (the unit's panel).
    #[arg(long)]
    fullscreen: bool,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::from_name(s).ok_or_else(|| format!("unknown role {s} (viewer, operator, admin)"))
}

fn parse_screen(s: &str) -> Result<Screen, String> {
    Screen::from_name(s).ok_or_else(|| format!("unknown screen {s}"))
}

/// The kiosk and its connection.
struct Kiosk {
    app: App,
    client: Client,
    bus: Bus,
}

/// When the kiosk started, for the monotonic clock of [`Message::Tick`].
static STARTED: OnceLock<Instant> = OnceLock::new();

fn seconds(now: Instant) -> f64 {
    now.duration_since(*STARTED.get_or_init(Instant::now))
        .as_secs_f64()
}

impl Kiosk {
    fn send(&self, request: Option<Request>) -> Task<Message> {
        match request {
            Some(r) => Task::perform(self.client.clone().perform(r), Message::Reply),
            None => Task::none(),
        }
    }

    fn update(&mut self, message: Message) -> Task<Message> {
        let request = self.app.update(message);
        self.send(request)
    }

    fn view(&self) -> iced::Element<'_, Message> {
        iced::widget::responsive(|size: Size| view::view(&self.app, size)).into()
    }

    fn subscription(&self) -> Subscription<Message> {
        Subscription::batch([
            iced::time::every(POLL_EVERY).map(|t| Message::Tick(seconds(t))),
            Subscription::run_with(self.bus.clone(), |bus| client::changes(bus.clone()))
                .map(|()| Message::Changed),
        ])
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let bus = match (&cli.address, cli.session) {
        (Some(a), _) => Bus::Address(a.clone()),
        (None, true) => Bus::Session,
        (None, false) => Bus::System,
    };
    // On the session bus the daemon checks no caller (a developer's sim): every function is
    // open, and the screens say so. Elsewhere the groups of this process decide.
    let role = cli.role.unwrap_or_else(|| match bus {
        Bus::Session => Role::Admin,
        _ => Role::of_this_process(),
    });
    let screen = cli.screen;
    STARTED.get_or_init(Instant::now);
    let boot = move || {
        let mut k = Kiosk {
            app: App::new(role, screen),
            client: Client::new(bus.clone()),
            bus: bus.clone(),
        };
        let first = k.app.update(Message::Tick(0.0));
        let history = (screen == Screen::History).then_some(Request::History);
        let tasks = Task::batch([k.send(first), k.send(history)]);
        (k, tasks)
    };
    iced::application(boot, Kiosk::update, Kiosk::view)
        .title("ColdSpray")
        .subscription(Kiosk::subscription)
        .theme(|_: &Kiosk| iced::Theme::Dark)
        // The embedded Fira Sans (iced's `fira-sans`): the panel's image may carry no font at
        // all, and the text must look as in the headless snapshots.
        .default_font(iced::Font::with_name("Fira Sans"))
        .window(iced::window::Settings {
            size: Size::new(cli.width, cli.height),
            fullscreen: cli.fullscreen,
            resizable: !cli.fullscreen,
            ..iced::window::Settings::default()
        })
        .run()
        .context("running the kiosk window")
}
