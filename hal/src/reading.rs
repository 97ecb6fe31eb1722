//! Sensor errors and chip identities.

use crate::signal::Sensor;
use serde::{Deserialize, Serialize};

/// Why a sensor gave no valid reading.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum SensorError {
    /// The chip did not acknowledge its address (NACK) or timed out.
    #[error("no response")]
    NoResponse,
    /// The chip answered with an identity that is not the expected part.
    #[error("wrong chip: expected id {expected:#06x}, found {found:#06x}")]
    WrongChip {
        /// The identity register value of the expected part.
        expected: u16,
        /// What the chip reported.
        found: u16,
    },
    /// A packet error code (PEC/CRC) did not match.
    #[error("checksum mismatch")]
    Checksum,
    /// The chip reported a value outside what it can measure, or flagged the value invalid.
    #[error("value out of range: {0}")]
    OutOfRange(f64),
    /// This unit has no such sensor fitted.
    #[error("sensor not fitted")]
    NotFitted,
    /// Any other bus-level failure, with the OS or driver message.
    #[error("bus error: {0}")]
    Bus(String),
}

/// What a sensor chip says it is, checked at self-test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChipIdentity {
    /// Which sensor this chip serves.
    pub sensor: Sensor,
    /// Part name, e.g. `"TMP117"`.
    pub part: String,
    /// The identity register value read back (0 where the part has none).
    pub id: u16,
}

/// How a skin IR sensor sees the treated spot: what a reader of its values must know to judge
/// the spot behind a reading (docs/TWIN.md, "Skin sensor").
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SkinSensorView {
    /// Share of the sensor's signal from the treated spot (1.0: nothing but the spot); the
    /// rest comes from untreated skin around it.
    pub spot_fill: f64,
    /// 95 % settling time of the sensor's filter, s (0: the reading follows at once).
    pub settle_s: f64,
}

impl SkinSensorView {
    /// An ideal sensor: the exact surface of the spot, no lag (the legacy twin's).
    pub const IDEAL: SkinSensorView = SkinSensorView {
        spot_fill: 1.0,
        settle_s: 0.0,
    };
}
