//! Treatment sessions: how one started, its quality indicators, how it ended, its curve.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

use crate::protocol::Goal;

/// What started a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartCause {
    /// A start command (touchscreen, `coldsprayctl start`).
    Command,
    /// The foot pedal / handpiece trigger.
    Trigger,
    /// Auto-start: the end of laser emission while armed.
    AutoStart,
}

impl StartCause {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            StartCause::Command => "command",
            StartCause::Trigger => "trigger",
            StartCause::AutoStart => "auto_start",
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Protect goal: the skin reached the target.
    TargetReached,
    /// Prepare goal: the skin held the band; ready for the repair dressing.
    ReadyForDressing,
    /// The protocol's spray time ran out (no skin sensor, or target not reached).
    DurationElapsed,
    /// The operator stopped it.
    Stopped,
    /// An interlock stopped it (the alarm is in the event log).
    Interlock,
    /// The daemon stopped (shutdown) while it ran.
    Shutdown,
    /// Found open after a crash or power loss and closed at the next start.
    Aborted,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 7] = [
        Outcome::TargetReached,
        Outcome::ReadyForDressing,
        Outcome::DurationElapsed,
        Outcome::Stopped,
        Outcome::Interlock,
        Outcome::Shutdown,
        Outcome::Aborted,
    ];

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::TargetReached => "target_reached",
            Outcome::ReadyForDressing => "ready_for_dressing",
            Outcome::DurationElapsed => "duration_elapsed",
            Outcome::Stopped => "stopped",
            Outcome::Interlock => "interlock",
            Outcome::Shutdown => "shutdown",
            Outcome::Aborted => "aborted",
        }
    }

    /// Looks an outcome up by name.
    pub fn from_name(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.name() == name)
    }

    /// True when the session did its job (target reached, band held, or time completed).
    pub fn is_completed(self) -> bool {
        matches!(
            self,
            Outcome::TargetReached | Outcome::ReadyForDressing | Outcome::DurationElapsed
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The opening record of a session, persisted (flushed) before anyone is told it started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionStart {
    /// Unique, increasing session id.
    pub id: u64,
    /// Protocol name.
    pub protocol: String,
    /// Treatment goal of the protocol.
    pub goal: Goal,
    /// What started it.
    pub cause: StartCause,
    /// Monotonic start time.
    pub started_at: Duration,
    /// Wall-clock start, milliseconds since the Unix epoch.
    pub started_unix_ms: i64,
    /// Laser end → spray start, milliseconds, when a laser pass preceded the session.
    /// *Measured*: both instants are kernel-stamped GPIO edges / control steps.
    pub laser_to_spray_ms: Option<f64>,
    /// Whether the start was later than the late threshold after the laser stopped.
    pub late: bool,
    /// Skin target of this session, °C, if any.
    pub skin_target_c: Option<f64>,
    /// Skin floor of this session, °C.
    pub skin_floor_c: f64,
}

/// Declares a struct with the fields given, followed by a session's quality indicators
/// (docs/REQUIREMENTS.md §4). The stored [`SessionRecord`] and the D-Bus session dictionary
/// (`dbus::wire::SessionInfo`) carry the same indicators under the same names and meaning:
/// they are declared once, here, so the two cannot drift apart.
macro_rules! with_quality_indicators {
    // Tokens pass through untouched (no `ty`/`meta` fragments), so derive macros see the
    // fields as written (zvariant tells an `Option` field by its tokens).
    (
        $(#[$($meta:tt)*])*
        pub struct $name:ident {
            $($fields:tt)*
        }
    ) => {
        $(#[$($meta)*])*
        pub struct $name {
            $($fields)*
            /// Hottest skin reading during the session, °C. *From the sensor*: the surface as
            /// the IR sensor sees it (filter lag, field of view averaged with untreated skin);
            /// the subsurface peak is not measured and can be ~15 K hotter (docs/TWIN.md).
            pub peak_skin_c: Option<f64>,
            /// Coldest skin reading during the session, °C. *From the sensor*: it reads warm on
            /// a falling surface (lag) and on a small spot (field of view); the floor guard
            /// works on an *estimate* of the spot instead (`[session] skin_sensor_fill`).
            pub min_skin_c: Option<f64>,
            /// Spray start → skin at or below target, milliseconds. *From the sensor* (the
            /// true surface gets there a little earlier: the sensor lags).
            pub time_to_target_ms: Option<u64>,
            /// Time the skin spent above 40 °C after the laser stopped, milliseconds. *From the
            /// sensor*, i.e. the surface: the subsurface, where deep modalities put their heat,
            /// stays above 40 °C longer and is not measured.
            pub above_40_ms: Option<u64>,
            /// Total time the valve was open, milliseconds.
            pub spray_ms: u64,
            /// The alarm key that ended it, for `Outcome::Interlock`.
            pub ended_by_alarm: Option<String>,
        }
    };
}
pub(crate) use with_quality_indicators;

with_quality_indicators! {
    /// The closing record of a session with its quality indicators (docs/REQUIREMENTS.md §4),
    /// which follow the fields below.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct SessionRecord {
        /// The opening record.
        pub start: SessionStart,
        /// Monotonic end time.
        pub ended_at: Duration,
        /// Wall-clock end, milliseconds since the Unix epoch.
        pub ended_unix_ms: i64,
        /// How it ended.
        pub outcome: Outcome,
    }
}

impl SessionRecord {
    /// Session id.
    pub fn id(&self) -> u64 {
        self.start.id
    }

    /// Duration from start to end.
    pub fn duration(&self) -> Duration {
        self.ended_at.saturating_sub(self.start.started_at)
    }
}

/// One point of a session's 10 Hz curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Session this sample belongs to.
    pub session_id: u64,
    /// Milliseconds since the session started.
    pub t_ms: u32,
    /// Mist temperature, °C.
    pub mist_c: Option<f64>,
    /// Skin temperature, °C.
    pub skin_c: Option<f64>,
    /// Reservoir temperature, °C.
    pub reservoir_c: Option<f64>,
    /// Line pressure, bar.
    pub pressure_bar: Option<f64>,
    /// Pump on.
    pub pump: bool,
    /// Valve open.
    pub valve: bool,
}
