//! What an alarm says: its values as typed, named parameters, and the English message built
//! from them in one place, so the text and the parameters can never disagree.
//!
//! The stable message key is the alarm's code ([`AlarmKind::code`]); docs/ALARMS.md lists
//! every code with its parameter names, for a kiosk that translates the text.

use super::alarm::AlarmKind;
use coldspray_hal::Sensor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One parameter value of an alarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamValue {
    /// A measured or configured quantity; its unit is in the parameter's name (`_bar`, `_c`, `_s`).
    Number(f64),
    /// A count or an id.
    Integer(u64),
    /// A name or a reason told by the part that failed (English).
    Text(String),
}

/// The parameters of one alarm, by name.
pub type AlarmParams = BTreeMap<String, ParamValue>;

/// What one alarm says, with the values seen. Each variant is one message of one alarm kind
/// (or of several, for [`AlarmText::Reason`]).
#[derive(Debug, Clone, PartialEq)]
pub enum AlarmText {
    /// The E-stop is pressed.
    Estop,
    /// The reservoir float reports low water.
    WaterLow,
    /// No flow with the pump on.
    DryRun {
        /// How long without a flow pulse.
        no_flow_s: f64,
    },
    /// Line pressure too high.
    OverPressure {
        /// The pressure seen.
        pressure_bar: f64,
    },
    /// Line pressure too low while water flows.
    UnderPressure {
        /// The pressure seen.
        pressure_bar: f64,
    },
    /// No valid reading from a sensor.
    SensorStale {
        /// The sensor.
        sensor: Sensor,
        /// For how long.
        for_s: f64,
        /// The last error or implausible value, if any.
        problem: Option<String>,
    },
    /// A sensor reports values outside its physical range.
    SensorImplausible {
        /// The sensor.
        sensor: Sensor,
        /// The reading (or error) seen, if known.
        reading: Option<String>,
    },
    /// A sensor reading has not changed at all.
    SensorStuck {
        /// The sensor.
        sensor: Sensor,
        /// The unchanging value.
        value: f64,
        /// For how long.
        for_s: f64,
    },
    /// Chiller heatsink too hot.
    HeatsinkOverTemp {
        /// The heatsink temperature seen.
        heatsink_c: f64,
        /// The limit.
        limit_c: f64,
    },
    /// Continuous spray too long.
    MaxSprayTime {
        /// How long the spray has run.
        spray_s: f64,
    },
    /// Skin colder than the protocol's floor.
    SkinBelowFloor {
        /// The skin temperature judged: the safety layer's estimate of the treated spot.
        skin_c: f64,
        /// The protocol's floor.
        floor_c: f64,
        /// The skin sensor's reading the estimate came from, if known.
        reading_c: Option<f64>,
    },
    /// Reservoir near freezing: the chiller is held off.
    FreezeCutout {
        /// The cut-out temperature.
        cutout_c: f64,
    },
    /// The self-test failed.
    SelfTestFailed {
        /// The failed check, as the self-test reports it.
        reason: String,
    },
    /// The control loop was silent.
    ControlStalled {
        /// For how long.
        silent_s: f64,
    },
    /// A session started late after the laser.
    LateStart {
        /// The session.
        session_id: u64,
        /// Laser stop to spray start.
        delay_s: f64,
    },
    /// An alarm whose message is the reason told by the part that failed (an I/O error, the
    /// thermostat's check): `chiller_ineffective`, `output_fault`, the treatment log and
    /// settings alarms, `service_due`.
    Reason {
        /// The alarm.
        kind: AlarmKind,
        /// Why, in English.
        reason: String,
    },
}

impl AlarmText {
    /// A message that is just the reason given.
    pub fn reason(kind: AlarmKind, reason: impl Into<String>) -> Self {
        AlarmText::Reason {
            kind,
            reason: reason.into(),
        }
    }

    /// The alarm this text belongs to.
    pub fn kind(&self) -> AlarmKind {
        match self {
            AlarmText::Estop => AlarmKind::Estop,
            AlarmText::WaterLow => AlarmKind::WaterLow,
            AlarmText::DryRun { .. } => AlarmKind::DryRun,
            AlarmText::OverPressure { .. } => AlarmKind::OverPressure,
            AlarmText::UnderPressure { .. } => AlarmKind::UnderPressure,
            AlarmText::SensorStale { sensor, .. } => AlarmKind::SensorStale(*sensor),
            AlarmText::SensorImplausible { sensor, .. } => AlarmKind::SensorImplausible(*sensor),
            AlarmText::SensorStuck { sensor, .. } => AlarmKind::SensorStuck(*sensor),
            AlarmText::HeatsinkOverTemp { .. } => AlarmKind::HeatsinkOverTemp,
            AlarmText::MaxSprayTime { .. } => AlarmKind::MaxSprayTime,
            AlarmText::SkinBelowFloor { .. } => AlarmKind::SkinBelowFloor,
            AlarmText::FreezeCutout { .. } => AlarmKind::FreezeCutout,
            AlarmText::SelfTestFailed { .. } => AlarmKind::SelfTestFailed,
            AlarmText::ControlStalled { .. } => AlarmKind::ControlStalled,
            AlarmText::LateStart { .. } => AlarmKind::LateStart,
            AlarmText::Reason { kind, .. } => *kind,
        }
    }

    /// The named parameters (the key is the alarm's code).
    pub fn params(&self) -> AlarmParams {
        let num = |name: &str, v: f64| (name.to_string(), ParamValue::Number(v));
        let txt = |name: &str, v: &str| (name.to_string(), ParamValue::Text(v.to_string()));
        let list: Vec<(String, ParamValue)> = match self {
            AlarmText::Estop | AlarmText::WaterLow => vec![],
            AlarmText::DryRun { no_flow_s } => vec![num("no_flow_s", *no_flow_s)],
            AlarmText::OverPressure { pressure_bar }
            | AlarmText::UnderPressure { pressure_bar } => {
                vec![num("pressure_bar", *pressure_bar)]
            }
            AlarmText::SensorStale {
                sensor,
                for_s,
                problem,
            } => {
                let mut l = vec![txt("sensor", sensor.name()), num("for_s", *for_s)];
                l.extend(problem.as_deref().map(|p| txt("problem", p)));
                l
            }
            AlarmText::SensorImplausible { sensor, reading } => {
                let mut l = vec![txt("sensor", sensor.name())];
                l.extend(reading.as_deref().map(|r| txt("reading", r)));
                l
            }
            AlarmText::SensorStuck {
                sensor,
                value,
                for_s,
            } => vec![
                txt("sensor", sensor.name()),
                num("value", *value),
                num("for_s", *for_s),
            ],
            AlarmText::HeatsinkOverTemp {
                heatsink_c,
                limit_c,
            } => vec![num("heatsink_c", *heatsink_c), num("limit_c", *limit_c)],
            AlarmText::MaxSprayTime { spray_s } => vec![num("spray_s", *spray_s)],
            AlarmText::SkinBelowFloor {
                skin_c,
                floor_c,
                reading_c,
            } => {
                let mut l = vec![num("skin_c", *skin_c), num("floor_c", *floor_c)];
                l.extend(reading_c.map(|r| num("reading_c", r)));
                l
            }
            AlarmText::FreezeCutout { cutout_c } => vec![num("cutout_c", *cutout_c)],
            AlarmText::SelfTestFailed { reason } | AlarmText::Reason { reason, .. } => {
                vec![txt("reason", reason)]
            }
            AlarmText::ControlStalled { silent_s } => vec![num("silent_s", *silent_s)],
            AlarmText::LateStart {
                session_id,
                delay_s,
            } => vec![
                ("session_id".to_string(), ParamValue::Integer(*session_id)),
                num("delay_s", *delay_s),
            ],
        };
        list.into_iter().collect()
    }

    /// The English message, with the values: the one place it is written.
    pub fn english(&self) -> String {
        match self {
            AlarmText::Estop => "E-stop pressed".to_string(),
            AlarmText::WaterLow => "reservoir float switch: water low".to_string(),
            AlarmText::DryRun { no_flow_s } => {
                format!("no flow for {no_flow_s:.1} s with the pump on")
            }
            AlarmText::OverPressure { pressure_bar } => {
                format!("line pressure {pressure_bar:.2} bar")
            }
            AlarmText::UnderPressure { pressure_bar } => {
                format!("line pressure {pressure_bar:.2} bar while water flows (leak?)")
            }
            AlarmText::SensorStale {
                sensor,
                for_s,
                problem,
            } => format!(
                "{sensor}: no valid reading for {for_s:.1} s ({})",
                problem.as_deref().unwrap_or("no data")
            ),
            AlarmText::SensorImplausible { sensor, reading } => format!(
                "{sensor}: implausible reading {}",
                reading.as_deref().unwrap_or("?")
            ),
            AlarmText::SensorStuck {
                sensor,
                value,
                for_s,
            } => format!("{sensor}: reading unchanged at {value:.3} for {for_s:.0} s"),
            AlarmText::HeatsinkOverTemp {
                heatsink_c,
                limit_c,
            } => format!("heatsink {heatsink_c:.1} °C > {limit_c:.1} °C"),
            AlarmText::MaxSprayTime { spray_s } => format!("continuous spray {spray_s:.0} s"),
            AlarmText::SkinBelowFloor {
                skin_c,
                floor_c,
                reading_c,
            } => {
                let judged = format!("skin {skin_c:.1} °C < floor {floor_c:.1} °C");
                // The reading is told only where the estimate moved away from it.
                match reading_c {
                    Some(r) if (r - skin_c).abs() >= 0.05 => {
                        format!("{judged} (spot estimate; the sensor reads {r:.1} °C)")
                    }
                    _ => judged,
                }
            }
            AlarmText::FreezeCutout { cutout_c } => format!("reservoir below {cutout_c:.1} °C"),
            AlarmText::SelfTestFailed { reason } => format!("self-test failed: {reason}"),
            AlarmText::ControlStalled { silent_s } => {
                format!("control loop silent for {silent_s:.1} s: outputs were driven safe")
            }
            AlarmText::LateStart {
                session_id,
                delay_s,
            } => format!("session {session_id} started {delay_s:.1} s after the laser stopped"),
            AlarmText::Reason { reason, .. } => reason.clone(),
        }
    }

    /// The text of `kind` again from its parameters (as [`AlarmText::params`] gives them and
    /// `Unit.AlarmDetails` serves them): what a kiosk renders in its own language. `None`
    /// when a parameter the text needs is missing or of another type.
    pub fn from_params(kind: AlarmKind, params: &AlarmParams) -> Option<AlarmText> {
        let num = |name: &str| match params.get(name)? {
            ParamValue::Number(x) => Some(*x),
            _ => None,
        };
        let txt = |name: &str| match params.get(name)? {
            ParamValue::Text(t) => Some(t.clone()),
            _ => None,
        };
        // Over the shape `kind` is raised with, so a new shape does not build without a way
        // back from its parameters.
        let text = match AlarmText::example(kind) {
            AlarmText::Estop => AlarmText::Estop,
            AlarmText::WaterLow => AlarmText::WaterLow,
            AlarmText::DryRun { .. } => AlarmText::DryRun {
                no_flow_s: num("no_flow_s")?,
            },
            AlarmText::OverPressure { .. } => AlarmText::OverPressure {
                pressure_bar: num("pressure_bar")?,
            },
            AlarmText::UnderPressure { .. } => AlarmText::UnderPressure {
                pressure_bar: num("pressure_bar")?,
            },
            AlarmText::SensorStale { sensor, .. } => AlarmText::SensorStale {
                sensor,
                for_s: num("for_s")?,
                problem: txt("problem"),
            },
            AlarmText::SensorImplausible { sensor, .. } => AlarmText::SensorImplausible {
                sensor,
                reading: txt("reading"),
            },
            AlarmText::SensorStuck { sensor, .. } => AlarmText::SensorStuck {
                sensor,
                value: num("value")?,
                for_s: num("for_s")?,
            },
            AlarmText::HeatsinkOverTemp { .. } => AlarmText::HeatsinkOverTemp {
                heatsink_c: num("heatsink_c")?,
                limit_c: num("limit_c")?,
            },
            AlarmText::MaxSprayTime { .. } => AlarmText::MaxSprayTime {
                spray_s: num("spray_s")?,
            },
            AlarmText::SkinBelowFloor { .. } => AlarmText::SkinBelowFloor {
                skin_c: num("skin_c")?,
                floor_c: num("floor_c")?,
                reading_c: num("reading_c"),
            },
            AlarmText::FreezeCutout { .. } => AlarmText::FreezeCutout {
                cutout_c: num("cutout_c")?,
            },
            AlarmText::SelfTestFailed { .. } => AlarmText::SelfTestFailed {
                reason: txt("reason")?,
            },
            AlarmText::ControlStalled { .. } => AlarmText::ControlStalled {
                silent_s: num("silent_s")?,
            },
            AlarmText::LateStart { .. } => AlarmText::LateStart {
                session_id: match params.get("session_id")? {
                    ParamValue::Integer(n) => *n,
                    _ => return None,
                },
                delay_s: num("delay_s")?,
            },
            AlarmText::Reason { kind, .. } => AlarmText::reason(kind, txt("reason")?),
        };
        Some(text)
    }

    /// A text of each shape `kind` is raised with, with made-up values: the catalogue that
    /// docs/ALARMS.md must document. Exhaustive over [`AlarmKind`], so a new kind needs one.
    pub fn example(kind: AlarmKind) -> AlarmText {
        match kind {
            AlarmKind::Estop => AlarmText::Estop,
            AlarmKind::WaterLow => AlarmText::WaterLow,
            AlarmKind::DryRun => AlarmText::DryRun { no_flow_s: 2.0 },
            AlarmKind::OverPressure => AlarmText::OverPressure { pressure_bar: 4.2 },
            AlarmKind::UnderPressure => AlarmText::UnderPressure { pressure_bar: 0.1 },
            AlarmKind::SensorStale(sensor) => AlarmText::SensorStale {
                sensor,
                for_s: 2.5,
                problem: Some("timeout".into()),
            },
            AlarmKind::SensorImplausible(sensor) => AlarmText::SensorImplausible {
                sensor,
                reading: Some("-99.0".into()),
            },
            AlarmKind::SensorStuck(sensor) => AlarmText::SensorStuck {
                sensor,
                value: 21.5,
                for_s: 30.0,
            },
            AlarmKind::HeatsinkOverTemp => AlarmText::HeatsinkOverTemp {
                heatsink_c: 75.0,
                limit_c: 70.0,
            },
            AlarmKind::MaxSprayTime => AlarmText::MaxSprayTime { spray_s: 121.0 },
            AlarmKind::SkinBelowFloor => AlarmText::SkinBelowFloor {
                skin_c: 4.2,
                floor_c: 5.0,
                reading_c: Some(5.6),
            },
            AlarmKind::FreezeCutout => AlarmText::FreezeCutout { cutout_c: 1.0 },
            AlarmKind::SelfTestFailed => AlarmText::SelfTestFailed {
                reason: "pump: no flow".into(),
            },
            AlarmKind::ControlStalled => AlarmText::ControlStalled { silent_s: 1.2 },
            AlarmKind::LateStart => AlarmText::LateStart {
                session_id: 7,
                delay_s: 12.5,
            },
            AlarmKind::ChillerIneffective
            | AlarmKind::OutputFault
            | AlarmKind::StoreUnavailable
            | AlarmKind::LogDamaged
            | AlarmKind::SettingsLost
            | AlarmKind::SettingsNotSaved
            | AlarmKind::LogWriteFailed
            | AlarmKind::ServiceDue => AlarmText::reason(kind, "why"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented parameter names of every code in docs/ALARMS.md's message table: lines
    /// `` | `code` | `p1`, `p2` | ... ``.
    fn documented() -> BTreeMap<String, Vec<String>> {
        let doc = include_str!("../../../docs/ALARMS.md");
        let section = doc
            .split("## Message keys and parameters")
            .nth(1)
            .expect("docs/ALARMS.md has a message-key section");
        let ticked = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        };
        section
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let code = ticked(cells.get(1)?).into_iter().next()?;
                Some((code, ticked(cells.get(2)?)))
            })
            .collect()
    }

    #[test]
    fn every_key_and_parameter_is_documented() {
        let doc = documented();
        for kind in AlarmKind::every(&Sensor::ALL) {
            let text = AlarmText::example(kind);
            assert_eq!(text.kind(), kind);
            let names = doc
                .get(kind.code())
                .unwrap_or_else(|| panic!("{} has no row in docs/ALARMS.md", kind.code()));
            for p in text.params().keys() {
                assert!(
                    names.contains(p),
                    "parameter {p} of {} is not in docs/ALARMS.md",
                    kind.code()
                );
            }
        }
    }

    #[test]
    fn every_text_comes_back_from_its_parameters() {
        for kind in AlarmKind::every(&Sensor::ALL) {
            let text = AlarmText::example(kind);
            assert_eq!(AlarmText::from_params(kind, &text.params()), Some(text));
        }
        let missing = AlarmParams::new();
        assert_eq!(
            AlarmText::from_params(AlarmKind::OverPressure, &missing),
            None
        );
    }

    #[test]
    fn the_english_message_shows_the_parameters() {
        let t = AlarmText::HeatsinkOverTemp {
            heatsink_c: 75.04,
            limit_c: 70.0,
        };
        assert_eq!(t.english(), "heatsink 75.0 °C > 70.0 °C");
        assert_eq!(
            t.params().get("heatsink_c"),
            Some(&ParamValue::Number(75.04))
        );
        let s = AlarmText::SensorStale {
            sensor: Sensor::Skin,
            for_s: 2.0,
            problem: None,
        };
        assert_eq!(s.english(), "skin: no valid reading for 2.0 s (no data)");
        assert!(!s.params().contains_key("problem"));
        // The skin floor tells the reading only where the judged estimate differs from it.
        let floor = |reading_c| AlarmText::SkinBelowFloor {
            skin_c: 8.62,
            floor_c: 10.0,
            reading_c,
        };
        assert_eq!(
            floor(Some(10.41)).english(),
            "skin 8.6 °C < floor 10.0 °C (spot estimate; the sensor reads 10.4 °C)"
        );
        assert_eq!(floor(Some(8.62)).english(), "skin 8.6 °C < floor 10.0 °C");
        assert_eq!(floor(None).english(), "skin 8.6 °C < floor 10.0 °C");
        assert!(!floor(None).params().contains_key("reading_c"));
    }
}
