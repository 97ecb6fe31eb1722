//! Spray protocols: one preset per treatment kind, editable by a technician.

use serde::{Deserialize, Serialize};

/// The treatment goal a protocol serves (the seed's "making the right choice").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// Start at once and cool hard until the skin is below the target, to stop lateral heat
    /// spread (complication management: PIH, scarring).
    Protect,
    /// Bring the skin into a stable band around the target and hold it, then tell the operator
    /// the surface is ready for the repair dressing.
    Prepare,
}

impl Goal {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Goal::Protect => "protect",
            Goal::Prepare => "prepare",
        }
    }
}

/// How the valve opens during a session.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Pattern {
    /// Valve open the whole time.
    Continuous,
    /// Valve open `on_ms`, closed `off_ms`, repeated (the pump keeps running).
    Pulsed {
        /// Open time per cycle, ms.
        on_ms: u32,
        /// Closed time per cycle, ms.
        off_ms: u32,
    },
}

/// A spray protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    /// Identifier: 1–32 characters of `a-z`, `0-9`, `_`, `-`.
    pub name: String,
    /// Display title.
    pub title: String,
    /// Treatment goal.
    pub goal: Goal,
    /// Maximum spray time of a session, seconds (1–120: never past the continuous-spray cap).
    pub spray_s: f64,
    /// Valve pattern.
    pub pattern: Pattern,
    /// Pump drive strength, percent (20–100).
    pub pump_percent: u8,
    /// Skin target, °C (12–36): protect stops at or below it; prepare holds the band around it.
    pub skin_target_c: Option<f64>,
    /// Skin floor, °C (5–25, below the target): spraying never takes the skin below it.
    pub skin_floor_c: f64,
    /// Prepare: half-width of the hold band around the target. Protect: the mist pauses this
    /// far below the target. °C (0.5–5).
    pub band_c: f64,
    /// Prepare: how long the skin must stay in the band before it is ready. Protect: how long
    /// it must stay at or below the target before the session ends (no rebound). Seconds.
    pub hold_s: f64,
}

/// Allowed ranges, shared by validation, D-Bus errors and the documentation.
pub mod limits {
    use std::ops::RangeInclusive;
    /// Session spray time, s.
    pub const SPRAY_S: RangeInclusive<f64> = 1.0..=120.0;
    /// Pulse on/off time, ms.
    pub const PULSE_MS: RangeInclusive<u32> = 20..=10_000;
    /// Pump drive, %.
    pub const PUMP_PERCENT: RangeInclusive<u8> = 20..=100;
    /// Skin target, °C.
    pub const SKIN_TARGET_C: RangeInclusive<f64> = 12.0..=36.0;
    /// Skin floor, °C.
    pub const SKIN_FLOOR_C: RangeInclusive<f64> = 5.0..=25.0;
    /// Prepare band half-width, °C.
    pub const BAND_C: RangeInclusive<f64> = 0.5..=5.0;
    /// Prepare hold time, s.
    pub const HOLD_S: RangeInclusive<f64> = 5.0..=120.0;
    /// Protocol name length.
    pub const NAME_LEN: RangeInclusive<usize> = 1..=32;
    /// Protocol title length.
    pub const TITLE_LEN: RangeInclusive<usize> = 1..=64;
}

/// Why a protocol (or a protocol override) is not acceptable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    /// A number outside its allowed range (or not finite).
    #[error("{field} = {value} is out of range {min}..={max}")]
    OutOfRange {
        /// Field name.
        field: &'static str,
        /// The value given.
        value: f64,
        /// Smallest allowed.
        min: f64,
        /// Largest allowed.
        max: f64,
    },
    /// A name or title that is empty, too long or uses other characters.
    #[error("{field}: {reason}")]
    BadText {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The floor is not safely below the target.
    #[error("skin_floor_c ({floor}) must be at least 2 °C below skin_target_c ({target})")]
    FloorAboveTarget {
        /// Floor given.
        floor: f64,
        /// Target given.
        target: f64,
    },
    /// Prepare needs a skin target.
    #[error("a prepare protocol needs skin_target_c")]
    PrepareWithoutTarget,
}

fn check_f64(
    field: &'static str,
    value: f64,
    range: std::ops::RangeInclusive<f64>,
) -> Result<(), ProtocolError> {
    if value.is_finite() && range.contains(&value) {
        Ok(())
    } else {
        Err(ProtocolError::OutOfRange {
            field,
            value,
            min: *range.start(),
            max: *range.end(),
        })
    }
}

fn check_u32(
    field: &'static str,
    value: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<(), ProtocolError> {
    check_f64(
        field,
        f64::from(value),
        f64::from(*range.start())..=f64::from(*range.end()),
    )
}

/// Checks a protocol name: 1–32 characters of `a-z`, `0-9`, `_`, `-`.
pub fn validate_name(name: &str) -> Result<(), ProtocolError> {
    if !limits::NAME_LEN.contains(&name.len()) {
        return Err(ProtocolError::BadText {
            field: "name",
            reason: format!("length {} is outside 1..=32", name.len()),
        });
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
    {
        return Err(ProtocolError::BadText {
            field: "name",
            reason: format!("character {c:?} not allowed (a-z, 0-9, _, -)"),
        });
    }
    Ok(())
}

impl Protocol {
    /// Checks every field against [`limits`].
    pub fn validate(&self) -> Result<(), ProtocolError> {
        validate_name(&self.name)?;
        let title_len = self.title.chars().count();
        if !limits::TITLE_LEN.contains(&title_len) || self.title.chars().any(char::is_control) {
            return Err(ProtocolError::BadText {
                field: "title",
                reason: "must be 1–64 printable characters".into(),
            });
        }
        check_f64("spray_s", self.spray_s, limits::SPRAY_S)?;
        if let Pattern::Pulsed { on_ms, off_ms } = self.pattern {
            check_u32("on_ms", on_ms, limits::PULSE_MS)?;
            check_u32("off_ms", off_ms, limits::PULSE_MS)?;
        }
        check_u32(
            "pump_percent",
            u32::from(self.pump_percent),
            u32::from(*limits::PUMP_PERCENT.start())..=u32::from(*limits::PUMP_PERCENT.end()),
        )?;
        check_f64("skin_floor_c", self.skin_floor_c, limits::SKIN_FLOOR_C)?;
        check_f64("band_c", self.band_c, limits::BAND_C)?;
        check_f64("hold_s", self.hold_s, limits::HOLD_S)?;
        match self.skin_target_c {
            Some(target) => {
                check_f64("skin_target_c", target, limits::SKIN_TARGET_C)?;
                let lowest = if self.goal == Goal::Prepare {
                    target - self.band_c
                } else {
                    target
                };
                if self.skin_floor_c > lowest - 2.0 {
                    return Err(ProtocolError::FloorAboveTarget {
                        floor: self.skin_floor_c,
                        target,
                    });
                }
            }
            None if self.goal == Goal::Prepare => return Err(ProtocolError::PrepareWithoutTarget),
            None => {}
        }
        Ok(())
    }

    /// The factory protocols, one per treatment kind.
    ///
    /// Why these numbers:
    /// * **Skin floor 10 °C** everywhere: at 10 °C skin nerve conduction is already down by a
    ///   third (Algafly 2007, BJSM 41:365) and colder mist risks cold injury on skin whose
    ///   barrier the laser just opened; tissue freezes at −0.55 °C.
    /// * **Spray time ≤ 120 s**: the unit's maximum continuous spray (docs/REQUIREMENTS.md §4); the heat that
    ///   matters is gone within the first minute (epidermis 0.21, dermis 0.29–0.37 W/m·K give
    ///   thermal time constants of seconds to tens of seconds for the top millimetre).
    /// * **Protect** protocols (CO2 fractional, Nd:YAG, Pico) spray continuously at full pump
    ///   so the surface drops at once and blocks lateral conduction; they stop at a target a
    ///   few degrees under resting skin (≈ 32–34 °C), lower for the hotter treatments.
    /// * **Prepare** protocols (HIFU, RF microneedling) heat deep (SMAS, dermis) and spare the
    ///   surface: they pulse gently (the cryogen-spray practice of short spurts, scaled to
    ///   water mist's lower cooling power) and hold the surface in a band the repair dressing
    ///   tolerates, for long enough (20–30 s) that the surface is stable.
    pub fn factory_defaults() -> Vec<Protocol> {
        vec![
            // Picosecond: photoacoustic, little bulk heat; cool for erythema and comfort.
            Protocol {
                name: "pico".into(),
                title: "Pico".into(),
                goal: Goal::Protect,
                spray_s: 60.0,
                pattern: Pattern::Pulsed {
                    on_ms: 800,
                    off_ms: 200,
                },
                pump_percent: 70,
                skin_target_c: Some(30.0),
                skin_floor_c: 10.0,
                band_c: 1.0,
                hold_s: 10.0,
            },
            // Nd:YAG 1064 nm: deep dermal/vascular heating; cool continuously.
            Protocol {
                name: "nd_yag".into(),
                title: "Nd:YAG".into(),
                goal: Goal::Protect,
                spray_s: 90.0,
                pattern: Pattern::Continuous,
                pump_percent: 90,
                skin_target_c: Some(28.0),
                skin_floor_c: 10.0,
                band_c: 1.0,
                hold_s: 10.0,
            },
            // CO2 fractional: ablative, the most residual heat and the highest PIH risk.
            Protocol {
                name: "co2_fractional".into(),
                title: "CO2 fractional".into(),
                goal: Goal::Protect,
                spray_s: 120.0,
                pattern: Pattern::Continuous,
                pump_percent: 100,
                skin_target_c: Some(26.0),
                skin_floor_c: 10.0,
                band_c: 1.0,
                hold_s: 10.0,
            },
            // HIFU: focal heat at depth, surface spared: stabilise for the dressing.
            Protocol {
                name: "hifu".into(),
                title: "HIFU".into(),
                goal: Goal::Prepare,
                spray_s: 90.0,
                pattern: Pattern::Pulsed {
                    on_ms: 500,
                    off_ms: 500,
                },
                pump_percent: 60,
                skin_target_c: Some(28.0),
                skin_floor_c: 10.0,
                band_c: 2.0,
                hold_s: 20.0,
            },
            // RF microneedling: dermal heating through open channels: gentle, then dressing.
            Protocol {
                name: "rf_microneedling".into(),
                title: "RF microneedling".into(),
                goal: Goal::Prepare,
                spray_s: 120.0,
                pattern: Pattern::Pulsed {
                    on_ms: 600,
                    off_ms: 400,
                },
                pump_percent: 70,
                skin_target_c: Some(27.0),
                skin_floor_c: 10.0,
                band_c: 1.5,
                hold_s: 30.0,
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factory_defaults_are_valid_and_uniquely_named() {
        let all = Protocol::factory_defaults();
        assert_eq!(all.len(), 5);
        for p in &all {
            p.validate().unwrap_or_else(|e| panic!("{}: {e}", p.name));
        }
        let mut names: Vec<_> = all.iter().map(|p| p.name.clone()).collect();
        names.dedup();
        assert_eq!(names.len(), 5);
    }

    #[test]
    fn validation_rejects_bad_values() {
        let good = Protocol::factory_defaults().remove(2);
        let mut p = good.clone();
        p.spray_s = f64::NAN;
        assert!(matches!(
            p.validate(),
            Err(ProtocolError::OutOfRange {
                field: "spray_s",
                ..
            })
        ));
        let mut p = good.clone();
        p.spray_s = 121.0;
        assert!(p.validate().is_err());
        let mut p = good.clone();
        p.skin_floor_c = 25.0;
        assert!(matches!(
            p.validate(),
            Err(ProtocolError::FloorAboveTarget { .. })
        ));
        let mut p = good.clone();
        p.name = "CO2!".into();
        assert!(matches!(
            p.validate(),
            Err(ProtocolError::BadText { field: "name", .. })
        ));
        let mut p = good;
        p.goal = Goal::Prepare;
        p.skin_target_c = None;
        assert_eq!(p.validate(), Err(ProtocolError::PrepareWithoutTarget));
    }
}
