//! The `[hardware]` section of the daemon's configuration: how the signals and sensors of
//! docs/REQUIREMENTS.md §3 are wired on this unit.
//!
//! Every field has a default, and the defaults describe the reference board: each GPIO line
//! carries the signal's own name (`pump`, `estop`, …), the sensors sit on `/dev/i2c-1` at their
//! reference addresses. A unit whose device tree names its lines only needs
//! `[hardware] chip = "…"`; one without names adds an `offset` per line.
//!
//! ```toml
//! [hardware]
//! chip = "pinctrl-rp1"            # Raspberry Pi 5 header (Pi 4: "pinctrl-bcm2711")
//! i2c_bus = "/dev/i2c-1"
//!
//! [hardware.lines.pump]
//! offset = 17                     # used only if no line is named "pump" on that chip
//!
//! [hardware.lines.estop]
//! offset = 4
//! active_low = true
//! bias = "pull_down"
//! debounce_ms = 0
//!
//! [hardware.sensors.skin]
//! fitted = false
//!
//! [hardware.pressure]
//! full_scale_bar = 10.0
//! ```

use crate::drivers::PressureScale;
use crate::signal::{Input, Output, Sensor};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The `[hardware]` section: GPIO lines, I2C bus, sensors, transducer scaling, pump PWM.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HardwareConfig {
    /// GPIO chip searched for every line that does not name its own `chip`: a chip label
    /// (`"pinctrl-rp1"` on a Pi 5, `"pinctrl-bcm2711"` on a Pi 4), a chip name
    /// (`"gpiochip0"`) or a device path (`"/dev/gpiochip4"`). Empty (the default) searches
    /// every chip for the line names, which is what a device tree with named lines wants.
    pub chip: String,
    /// Consumer label the daemon's line requests carry (shown by `gpioinfo`).
    /// Default `"coldsprayd"`.
    pub consumer: String,
    /// The I2C bus device the sensors are on. Default `"/dev/i2c-1"` (the Pi header's
    /// SDA1/SCL1 pins).
    pub i2c_bus: PathBuf,
    /// One entry per signal of docs/REQUIREMENTS.md §3 (`[hardware.lines.<signal>]`).
    pub lines: Lines,
    /// One entry per sensor (`[hardware.sensors.<sensor>]`).
    pub sensors: Sensors,
    /// Scaling of the line-pressure transducer read through the ADS1115.
    pub pressure: PressureScale,
    /// Optional hardware PWM for pump strength (`[hardware.pump_pwm]`). Without it the
    /// `pump` line is a plain on/off switch and any duty means full drive (rev A).
    pub pump_pwm: Option<PumpPwmConfig>,
    /// `SCHED_FIFO` priority (1–49) of the threads that react to inputs: the GPIO edge
    /// threads and the daemon's control loop, so a busy log, bus or scraper cannot delay the
    /// E-stop. 0 leaves them at normal scheduling. Default 10. Needs `CAP_SYS_NICE` or
    /// `LimitRTPRIO=` (the shipped unit sets it); without either the threads run at normal
    /// priority and the daemon says so once in its log.
    pub realtime_priority: u8,
}

impl Default for HardwareConfig {
    fn default() -> Self {
        Self {
            chip: String::new(),
            consumer: "coldsprayd".to_owned(),
            i2c_bus: PathBuf::from("/dev/i2c-1"),
            lines: Lines::default(),
            sensors: Sensors::default(),
            pressure: PressureScale::default(),
            pump_pwm: None,
            realtime_priority: DEFAULT_REALTIME_PRIORITY,
        }
    }
}

/// Default [`HardwareConfig::realtime_priority`]: above every normally scheduled thread and
/// below the kernel's threaded interrupt handlers (50), which deliver the edges.
pub const DEFAULT_REALTIME_PRIORITY: u8 = 10;

/// Electrical bias applied to a line by the GPIO controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineBias {
    /// Internal pull-up resistor.
    PullUp,
    /// Internal pull-down resistor.
    PullDown,
    /// No internal pull (external resistors on the board).
    Disabled,
}

/// How one signal is wired: which GPIO line, polarity, bias and (inputs) debounce.
///
/// Fields left out take the reference board's value for that signal (see
/// [`LineConfig::resolved`]), so a partial table never silently loses, say, the E-stop's
/// polarity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LineConfig {
    /// Line name to look for. Default: the signal name (`"pump"`, `"estop"`, …).
    pub line: Option<String>,
    /// Chip to look on (label, `gpiochipN` or `/dev/gpiochipN`). Default: `[hardware] chip`.
    pub chip: Option<String>,
    /// Line offset on the chip, used only when no line carries the name. Needs a chip.
    pub offset: Option<u32>,
    /// True when the signal is asserted at the low electrical level. Default: `true` for
    /// `estop` (NC contact: open contact or broken wire reads low = stop) and `trigger`
    /// (switch to ground with pull-up), `false` for everything else.
    pub active_low: Option<bool>,
    /// Bias to request. Default: `pull_down` for `estop`, `pull_up` for `trigger`, otherwise
    /// left as the firmware set it.
    pub bias: Option<LineBias>,
    /// Kernel (uAPI v2) debounce period in milliseconds, inputs only. Default: `trigger` 20,
    /// `water_low` 50, `estop`, `laser_emission` and `flow_pulse` 0 (off). The E-stop is not
    /// debounced: its first edge makes the unit safe and the stop latches until acknowledged,
    /// so a bounce cannot do harm, while a debounce period would delay going safe (and the
    /// kernel rounds it up to whole jiffies: 5 ms became 8-12 ms at HZ=250).
    pub debounce_ms: Option<u32>,
}

/// A [`LineConfig`] with every default filled in for its signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedLine {
    /// The signal name.
    pub signal: &'static str,
    /// Line name to look for.
    pub line: String,
    /// Chip to look on; empty = every chip.
    pub chip: String,
    /// Offset fallback.
    pub offset: Option<u32>,
    /// Active-low polarity.
    pub active_low: bool,
    /// Bias, `None` = as is.
    pub bias: Option<LineBias>,
    /// Debounce period (zero = none).
    pub debounce: Duration,
}

impl LineConfig {
    /// Fills the defaults of signal `signal` (and the section-wide `default_chip`).
    pub fn resolved(&self, signal: &'static str, default_chip: &str) -> ResolvedLine {
        let (active_low, bias, debounce_ms) = match signal {
            "estop" => (true, Some(LineBias::PullDown), 0),
            "trigger" => (true, Some(LineBias::PullUp), 20),
            "water_low" => (false, None, 50),
            _ => (false, None, 0),
        };
        ResolvedLine {
            signal,
            line: self.line.clone().unwrap_or_else(|| signal.to_owned()),
            chip: self.chip.clone().unwrap_or_else(|| default_chip.to_owned()),
            offset: self.offset,
            active_low: self.active_low.unwrap_or(active_low),
            bias: self.bias.or(bias),
            debounce: Duration::from_millis(u64::from(self.debounce_ms.unwrap_or(debounce_ms))),
        }
    }
}

/// The GPIO lines, one field per signal of docs/REQUIREMENTS.md §3 (unknown signal names are rejected).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lines {
    /// Output: 12 V diaphragm pump MOSFET (or its enable when `pump_pwm` is set).
    pub pump: LineConfig,
    /// Output: normally-closed spray solenoid valve.
    pub spray_valve: LineConfig,
    /// Output: TEC or compressor relay.
    pub chiller: LineConfig,
    /// Output: hot-side heatsink fan.
    pub chiller_fan: LineConfig,
    /// Output: piezo sounder.
    pub buzzer: LineConfig,
    /// Output: "ready" lamp.
    pub lamp_ready: LineConfig,
    /// Output: fault lamp.
    pub lamp_fault: LineConfig,
    /// Input: mushroom E-stop, NC contact (both edges).
    pub estop: LineConfig,
    /// Input: foot pedal / handpiece button (both edges, debounced).
    pub trigger: LineConfig,
    /// Input: the laser's emission output (both edges).
    pub laser_emission: LineConfig,
    /// Input: reservoir float switch (both edges).
    pub water_low: LineConfig,
    /// Input: hall flow meter (rising edges).
    pub flow_pulse: LineConfig,
}

impl Lines {
    /// The configuration of an output's line.
    pub fn output(&self, output: Output) -> &LineConfig {
        match output {
            Output::Pump => &self.pump,
            Output::SprayValve => &self.spray_valve,
            Output::Chiller => &self.chiller,
            Output::ChillerFan => &self.chiller_fan,
            Output::Buzzer => &self.buzzer,
            Output::LampReady => &self.lamp_ready,
            Output::LampFault => &self.lamp_fault,
        }
    }

    /// The configuration of an input's line.
    pub fn input(&self, input: Input) -> &LineConfig {
        match input {
            Input::Estop => &self.estop,
            Input::Trigger => &self.trigger,
            Input::LaserEmission => &self.laser_emission,
            Input::WaterLow => &self.water_low,
            Input::FlowPulse => &self.flow_pulse,
        }
    }
}

/// One I2C sensor: where it answers and whether this unit has it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SensorConfig {
    /// 7-bit I2C address. Default: the reference address of the sensor (docs/REQUIREMENTS.md §3).
    pub address: Option<u8>,
    /// Whether the chip is fitted on this unit. Default `true`; set `false` on a unit
    /// without the optional skin (IR) sensor.
    pub fitted: bool,
}

impl Default for SensorConfig {
    fn default() -> Self {
        Self {
            address: None,
            fitted: true,
        }
    }
}

/// The sensors, one field per [`Sensor`] (unknown names are rejected).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sensors {
    /// Reservoir TMP117 (reference 0x48).
    pub reservoir: SensorConfig,
    /// Nozzle/mist TMP117 (reference 0x49).
    pub mist: SensorConfig,
    /// Heatsink MCP9808 (reference 0x18).
    pub heatsink: SensorConfig,
    /// Skin MLX90614 (reference 0x5A).
    pub skin: SensorConfig,
    /// Pressure ADS1115 (reference 0x4A).
    pub pressure: SensorConfig,
}

impl Sensors {
    /// The configuration of one sensor.
    pub fn get(&self, sensor: Sensor) -> &SensorConfig {
        match sensor {
            Sensor::Reservoir => &self.reservoir,
            Sensor::Mist => &self.mist,
            Sensor::Heatsink => &self.heatsink,
            Sensor::Skin => &self.skin,
            Sensor::Pressure => &self.pressure,
        }
    }

    /// The address of one sensor, with the reference default filled in.
    pub fn address(&self, sensor: Sensor) -> u8 {
        self.get(sensor)
            .address
            .unwrap_or_else(|| sensor.reference_address())
    }

    /// The fitted sensors with their addresses, in [`Sensor::ALL`] order.
    pub fn fitted(&self) -> Vec<(Sensor, u8)> {
        Sensor::ALL
            .into_iter()
            .filter(|s| self.get(*s).fitted)
            .map(|s| (s, self.address(s)))
            .collect()
    }
}

/// A sysfs hardware PWM channel driving the pump (`/sys/class/pwm/pwmchip<chip>/pwm<channel>`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PumpPwmConfig {
    /// The `N` of `/sys/class/pwm/pwmchipN`.
    pub chip: u32,
    /// The channel on that chip (exported through `export` if not yet).
    pub channel: u32,
    /// PWM period in nanoseconds. Default 50 000 (20 kHz, above hearing).
    #[serde(default = "default_pwm_period")]
    pub period_ns: u32,
}

fn default_pwm_period() -> u32 {
    50_000
}

impl HardwareConfig {
    /// Checks what serde cannot: debounce only on inputs, offsets only with a chip, distinct
    /// sensor addresses, a sane transducer range and PWM period.
    pub fn validate(&self) -> Result<(), String> {
        for output in Output::ALL {
            let line = self.lines.output(output);
            if line.debounce_ms.is_some() {
                return Err(format!(
                    "[hardware.lines.{output}] debounce_ms applies to inputs only"
                ));
            }
        }
        for (name, line) in Output::ALL
            .iter()
            .map(|o| (o.name(), self.lines.output(*o)))
            .chain(Input::ALL.iter().map(|i| (i.name(), self.lines.input(*i))))
        {
            let resolved = line.resolved(name, &self.chip);
            if resolved.offset.is_some() && resolved.chip.is_empty() {
                return Err(format!(
                    "[hardware.lines.{name}] offset needs a chip (set `chip` here or in [hardware])"
                ));
            }
            if resolved.line.is_empty() && resolved.offset.is_none() {
                return Err(format!(
                    "[hardware.lines.{name}] needs a line name or an offset"
                ));
            }
        }
        let fitted = self.sensors.fitted();
        for (i, (a, addr_a)) in fitted.iter().enumerate() {
            if !(0x03..=0x77).contains(addr_a) {
                return Err(format!(
                    "[hardware.sensors.{a}] address {addr_a:#04x} is not a 7-bit device address"
                ));
            }
            if let Some((b, _)) = fitted[i + 1..].iter().find(|(_, addr_b)| addr_b == addr_a) {
                return Err(format!(
                    "sensors {a} and {b} share I2C address {addr_a:#04x}"
                ));
            }
        }
        self.pressure.validate()?;
        if self.realtime_priority > 49 {
            return Err(format!(
                "[hardware] realtime_priority {} is out of range 0-49 (0 = normal scheduling)",
                self.realtime_priority
            ));
        }
        if let Some(pwm) = &self.pump_pwm {
            if pwm.period_ns == 0 {
                return Err("[hardware.pump_pwm] period_ns must be > 0".to_owned());
            }
        }
        Ok(())
    }
}
