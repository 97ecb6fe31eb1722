//! The signals of the reference hardware (docs/REQUIREMENTS.md §3), by their fixed names.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::RangeInclusive;

/// A digital output. Every output's safe state is *off* (logical `false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// 12 V diaphragm pump (via MOSFET).
    Pump,
    /// Normally-closed solenoid valve to the nozzle.
    SprayValve,
    /// Thermo-electric cooler or compressor relay.
    Chiller,
    /// Hot-side heatsink fan.
    ChillerFan,
    /// Piezo sounder for alarm patterns.
    Buzzer,
    /// Green "ready" lamp.
    LampReady,
    /// Red/yellow fault lamp.
    LampFault,
}

impl Output {
    /// Every output, in a fixed order.
    pub const ALL: [Output; 7] = [
        Output::Pump,
        Output::SprayValve,
        Output::Chiller,
        Output::ChillerFan,
        Output::Buzzer,
        Output::LampReady,
        Output::LampFault,
    ];

    /// The fixed signal name (also the GPIO line name on the reference board).
    pub fn name(self) -> &'static str {
        match self {
            Output::Pump => "pump",
            Output::SprayValve => "spray_valve",
            Output::Chiller => "chiller",
            Output::ChillerFan => "chiller_fan",
            Output::Buzzer => "buzzer",
            Output::LampReady => "lamp_ready",
            Output::LampFault => "lamp_fault",
        }
    }

    /// Looks an output up by its signal name.
    pub fn from_name(name: &str) -> Option<Output> {
        Output::ALL.into_iter().find(|o| o.name() == name)
    }

    /// True for outputs that move water or heat (pump, valve, chiller, fan); false for the
    /// indicators (buzzer, lamps). Actuators are off in every safe state.
    pub fn is_actuator(self) -> bool {
        matches!(
            self,
            Output::Pump | Output::SprayValve | Output::Chiller | Output::ChillerFan
        )
    }

    /// Position of this output in [`Output::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The level of every output, indexed by [`Output`]: what a control step asks for, or what
/// was driven. Compares equal to the `[bool; 7]` in [`Output::ALL`] order it wraps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OutputLevels([bool; 7]);

impl OutputLevels {
    /// Every output off.
    pub const fn all_off() -> Self {
        Self([false; 7])
    }

    /// The levels in [`Output::index`] order.
    pub const fn to_array(self) -> [bool; 7] {
        self.0
    }

    /// The outputs that are on, in [`Output::ALL`] order.
    pub fn on(self) -> impl Iterator<Item = Output> {
        Output::ALL.into_iter().filter(move |o| self[*o])
    }
}

impl From<[bool; 7]> for OutputLevels {
    fn from(levels: [bool; 7]) -> Self {
        Self(levels)
    }
}

impl From<OutputLevels> for [bool; 7] {
    fn from(levels: OutputLevels) -> Self {
        levels.0
    }
}

impl std::ops::Index<Output> for OutputLevels {
    type Output = bool;
    fn index(&self, output: Output) -> &bool {
        &self.0[output.index()]
    }
}

impl std::ops::IndexMut<Output> for OutputLevels {
    fn index_mut(&mut self, output: Output) -> &mut bool {
        &mut self.0[output.index()]
    }
}

impl PartialEq<[bool; 7]> for OutputLevels {
    fn eq(&self, other: &[bool; 7]) -> bool {
        self.0 == *other
    }
}

impl PartialEq<OutputLevels> for [bool; 7] {
    fn eq(&self, other: &OutputLevels) -> bool {
        *self == other.0
    }
}

/// A digital input. Levels are *logical*: `true` means the condition named is present
/// (E-stop pressed, trigger pressed, laser emitting, water low, flow pulse high), whatever
/// the electrical polarity of the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// Mushroom E-stop (NC contact, active low): `true` = stop requested.
    Estop,
    /// Foot pedal / handpiece button: `true` = pressed.
    Trigger,
    /// The laser's emission output: `true` = emitting.
    LaserEmission,
    /// Reservoir float switch: `true` = water low.
    WaterLow,
    /// Hall flow meter, about 5880 pulses per litre.
    FlowPulse,
}

impl Input {
    /// Every input, in a fixed order.
    pub const ALL: [Input; 5] = [
        Input::Estop,
        Input::Trigger,
        Input::LaserEmission,
        Input::WaterLow,
        Input::FlowPulse,
    ];

    /// The fixed signal name (also the GPIO line name on the reference board).
    pub fn name(self) -> &'static str {
        match self {
            Input::Estop => "estop",
            Input::Trigger => "trigger",
            Input::LaserEmission => "laser_emission",
            Input::WaterLow => "water_low",
            Input::FlowPulse => "flow_pulse",
        }
    }

    /// Looks an input up by its signal name.
    pub fn from_name(name: &str) -> Option<Input> {
        Input::ALL.into_iter().find(|i| i.name() == name)
    }

    /// Position of this input in [`Input::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Pulses the reference flow meter gives per litre.
pub const FLOW_PULSES_PER_LITRE: f64 = 5880.0;

/// A measured quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensor {
    /// Reservoir water temperature (TMP117 at 0x48), °C.
    Reservoir,
    /// Mist temperature at the nozzle (TMP117 at 0x49), °C.
    Mist,
    /// Chiller hot-side heatsink temperature (MCP9808 at 0x18), °C.
    Heatsink,
    /// Skin surface temperature by infrared (MLX90614 at 0x5A), °C. Optional on a unit.
    Skin,
    /// Line pressure (ADS1115 at 0x4A with a 0.5–4.5 V transducer), bar (gauge).
    Pressure,
}

impl Sensor {
    /// Every sensor, in a fixed order.
    pub const ALL: [Sensor; 5] = [
        Sensor::Reservoir,
        Sensor::Mist,
        Sensor::Heatsink,
        Sensor::Skin,
        Sensor::Pressure,
    ];

    /// The fixed sensor name (used in config, D-Bus and metric labels).
    pub fn name(self) -> &'static str {
        match self {
            Sensor::Reservoir => "reservoir",
            Sensor::Mist => "mist",
            Sensor::Heatsink => "heatsink",
            Sensor::Skin => "skin",
            Sensor::Pressure => "pressure",
        }
    }

    /// Looks a sensor up by its name.
    pub fn from_name(name: &str) -> Option<Sensor> {
        Sensor::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Position of this sensor in [`Sensor::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// True for temperature sensors (readings in °C); false for pressure (bar).
    pub fn is_temperature(self) -> bool {
        !matches!(self, Sensor::Pressure)
    }

    /// The unit of this sensor's readings.
    pub fn unit(self) -> &'static str {
        if self.is_temperature() {
            "°C"
        } else {
            "bar"
        }
    }

    /// The range a healthy sensor can physically report on this unit. A reading outside it is
    /// implausible (wiring fault, failed chip) and counts as no valid reading.
    pub fn plausible_range(self) -> RangeInclusive<f64> {
        match self {
            // Water in the reservoir is liquid; anything far outside means a broken sensor.
            Sensor::Reservoir | Sensor::Mist => -5.0..=60.0,
            Sensor::Heatsink => -10.0..=110.0,
            // Right after an ablative pass (CO2, Er:YAG) the surface the IR sensor sees can be
            // well above 80 °C for a moment, and that is when cooling matters most; above
            // 120 °C (water boils off at 100) the reading is not of skin. The MLX90614's
            // object range is far wider.
            Sensor::Skin => -5.0..=120.0,
            // 0.5–4.5 V transducer, 0–10 bar gauge; slightly below 0 is offset noise.
            Sensor::Pressure => -0.5..=10.0,
        }
    }

    /// The I2C address of this sensor on the reference board.
    pub fn reference_address(self) -> u8 {
        match self {
            Sensor::Reservoir => 0x48,
            Sensor::Mist => 0x49,
            Sensor::Heatsink => 0x18,
            Sensor::Skin => 0x5A,
            Sensor::Pressure => 0x4A,
        }
    }
}

impl fmt::Display for Sensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_levels_index_by_output_and_compare_with_arrays() {
        let mut levels = OutputLevels::all_off();
        assert_eq!(levels, [false; 7]);
        levels[Output::Pump] = true;
        assert!(levels[Output::Pump] && !levels[Output::SprayValve]);
        assert!(levels.to_array()[Output::Pump.index()]);
        assert_eq!(levels.on().collect::<Vec<_>>(), vec![Output::Pump]);
        assert_eq!(OutputLevels::from(levels.to_array()), levels);
    }

    #[test]
    fn names_round_trip() {
        for o in Output::ALL {
            assert_eq!(Output::from_name(o.name()), Some(o));
            assert_eq!(Output::ALL[o.index()], o);
        }
        for i in Input::ALL {
            assert_eq!(Input::from_name(i.name()), Some(i));
            assert_eq!(Input::ALL[i.index()], i);
        }
        for s in Sensor::ALL {
            assert_eq!(Sensor::from_name(s.name()), Some(s));
            assert_eq!(Sensor::ALL[s.index()], s);
        }
        assert_eq!(Output::from_name("laser"), None);
    }

    #[test]
    fn indicators_are_not_actuators() {
        let actuators: Vec<_> = Output::ALL
            .into_iter()
            .filter(|o| o.is_actuator())
            .collect();
        assert_eq!(
            actuators,
            vec![
                Output::Pump,
                Output::SprayValve,
                Output::Chiller,
                Output::ChillerFan
            ]
        );
    }
}
