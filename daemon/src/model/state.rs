//! The unit's operating states (docs/REQUIREMENTS.md §4).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Operating state of the unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitState {
    /// Power-on self-test; every actuator off.
    Starting,
    /// Chiller pulling the reservoir down to the setpoint.
    Precooling,
    /// Cold and able to spray at once.
    Ready,
    /// A session is spraying.
    Spraying,
    /// Latched fault: every actuator off until acknowledged *and* the cause is gone.
    Fault,
    /// Technician mode: prime, drain, output test, self-test.
    Maintenance,
    /// Shutting down: every output off.
    Stopping,
}

impl UnitState {
    /// Every state, in a fixed order.
    pub const ALL: [UnitState; 7] = [
        UnitState::Starting,
        UnitState::Precooling,
        UnitState::Ready,
        UnitState::Spraying,
        UnitState::Fault,
        UnitState::Maintenance,
        UnitState::Stopping,
    ];

    /// The fixed lower-case name used on D-Bus, in metrics and in logs.
    pub fn name(self) -> &'static str {
        match self {
            UnitState::Starting => "starting",
            UnitState::Precooling => "precooling",
            UnitState::Ready => "ready",
            UnitState::Spraying => "spraying",
            UnitState::Fault => "fault",
            UnitState::Maintenance => "maintenance",
            UnitState::Stopping => "stopping",
        }
    }

    /// Looks a state up by name.
    pub fn from_name(name: &str) -> Option<UnitState> {
        UnitState::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for UnitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
