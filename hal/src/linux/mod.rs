//! The Linux backend: GPIO through the GPIO character device (uAPI v2, `gpiocdev`), sensors
//! over `/dev/i2c-N` with SMBus transfers, optional pump PWM through sysfs.
//!
//! * [`open`] builds a [`Board`] from the `[hardware]` section ([`HardwareConfig`]):
//!   outputs are requested at their safe (inactive) value from the first request; inputs get
//!   kernel edge detection, debounce and `CLOCK_MONOTONIC` timestamps (the time line of
//!   [`MonotonicClock`]), delivered by a thread blocking in `poll(2)`.
//! * [`force_safe`] / [`safe_off::force_safe_plan`] drive every output to its safe value and
//!   release it, with no daemon state: the `ExecStopPost=` safe-off helper.
//! * [`probe_sensors`] identifies every fitted sensor, naming a missing one by address.
//!
//! Line lookup is by name (chip label + line name) with a chip + offset fallback, so the
//! same configuration serves a Raspberry Pi 4 (`pinctrl-bcm2711`) and 5 (`pinctrl-rp1`).
//!
//! After a crash the kernel releases the lines and they "may revert to their default
//! state" (docs/REQUIREMENTS.md §8): hardware pull resistors must make a released output off, and
//! `ExecStopPost=` runs [`force_safe`]. Nothing here relies on `Drop` for safety.

pub mod config;
pub mod gpio;
pub mod i2c;
pub mod pwm;
pub mod safe_off;
pub mod sched;

pub use config::{HardwareConfig, LineBias, LineConfig, PumpPwmConfig, SensorConfig};
pub use gpio::{LinuxInputs, LinuxOutputs};
pub use i2c::SmbusI2c;
pub use sched::{set_current_thread_nice, set_current_thread_realtime};

use crate::clock::MonotonicClock;
use crate::drivers::{SensorBank, SensorLayout, StdDelay};
use crate::error_source::ErrorSource;
use crate::port::{Board, HalError, SensorPort};
use crate::reading::{ChipIdentity, SensorError};
use crate::signal::Sensor;
use std::path::Path;
use std::sync::Arc;

/// Why the Linux backend could not start or act.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LinuxError {
    /// The `[hardware]` section is inconsistent.
    #[error("invalid [hardware] configuration: {0}")]
    Config(String),
    /// The kernel shows no GPIO chip at all.
    #[error("no GPIO chips found under /dev (is this a board with GPIO, and is /dev mounted?)")]
    NoGpioChips,
    /// No chip matches the configured label, name or path.
    #[error("{signal}: GPIO chip `{chip}` not found (present: {present})")]
    ChipNotFound {
        /// The signal whose line was looked for.
        signal: String,
        /// The configured chip.
        chip: String,
        /// The chips present, with labels.
        present: String,
    },
    /// No line carries the name and no usable offset is configured.
    #[error("{signal}: line not found: {detail}")]
    LineNotFound {
        /// The signal.
        signal: String,
        /// Where it was looked for.
        detail: String,
    },
    /// Several lines carry the name: refuse to guess.
    #[error("{signal}: line name `{line}` is not unique ({at}); set `chip`")]
    AmbiguousLine {
        /// The signal.
        signal: String,
        /// The line name.
        line: String,
        /// `chip:offset` of each match.
        at: String,
    },
    /// The process may not open a device.
    #[error("permission denied on {device}: run as a member of group `{group}` (or as root)")]
    PermissionDenied {
        /// The device path.
        device: String,
        /// The group owning such devices (`gpio`, `i2c`).
        group: &'static str,
    },
    /// The I2C bus device does not exist.
    #[error("I2C bus {device} not found: enable I2C (dtparam=i2c_arm=on) and load i2c-dev")]
    I2cBusMissing {
        /// The configured bus path.
        device: String,
    },
    /// A fitted sensor does not answer at its address.
    #[error("no {part} ({sensor}) answers at {address:#04x} on {bus}: check wiring and address, or set [hardware.sensors.{sensor}] fitted = false")]
    SensorMissing {
        /// The sensor.
        sensor: Sensor,
        /// Its part.
        part: &'static str,
        /// The address probed.
        address: u8,
        /// The bus.
        bus: String,
    },
    /// A sensor answered but identification failed otherwise.
    #[error("{sensor} at {address:#04x}: {error}")]
    Sensor {
        /// The sensor.
        sensor: Sensor,
        /// Its address.
        address: u8,
        /// What went wrong.
        error: SensorError,
    },
    /// A line request, read or write failed.
    #[error("{signal}: {detail}")]
    Gpio {
        /// The signal (or chip) concerned.
        signal: String,
        /// The OS or driver message.
        detail: String,
    },
    /// The pump PWM channel could not be set up or written.
    #[error("PWM {path}: {detail}")]
    Pwm {
        /// The sysfs path.
        path: String,
        /// The OS message.
        detail: String,
    },
}

impl From<LinuxError> for HalError {
    fn from(e: LinuxError) -> Self {
        match e {
            LinuxError::ChipNotFound { ref signal, .. }
            | LinuxError::LineNotFound { ref signal, .. }
            | LinuxError::AmbiguousLine { ref signal, .. } => HalError::LineNotFound {
                signal: signal.clone(),
                source: ErrorSource::new(e),
            },
            LinuxError::PermissionDenied { ref device, group } => HalError::PermissionDenied {
                device: device.clone(),
                hint: format!("join group `{group}`"),
            },
            LinuxError::Gpio { signal, detail } => HalError::Io { signal, detail },
            other => HalError::backend("hardware", other),
        }
    }
}

/// The part each sensor is on the reference board.
pub fn part(sensor: Sensor) -> &'static str {
    match sensor {
        Sensor::Reservoir | Sensor::Mist => crate::drivers::tmp117::PART,
        Sensor::Heatsink => crate::drivers::mcp9808::PART,
        Sensor::Skin => crate::drivers::mlx90614::PART,
        Sensor::Pressure => crate::drivers::ads1115::PART,
    }
}

/// The sensor layout of a configuration.
pub fn sensor_layout(config: &HardwareConfig) -> SensorLayout {
    SensorLayout {
        fitted: config.sensors.fitted(),
        pressure: config.pressure,
    }
}

fn check_i2c_bus(path: &Path) -> Result<(), LinuxError> {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(LinuxError::PermissionDenied {
                device: path.display().to_string(),
                group: "i2c",
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(LinuxError::I2cBusMissing {
            device: path.display().to_string(),
        }),
        Err(e) => Err(LinuxError::Gpio {
            signal: "i2c".to_owned(),
            detail: format!("{}: {e}", path.display()),
        }),
    }
}

/// Opens the unit: outputs first (at their safe values), then inputs, the I2C bus and the
/// pump PWM. Sensors are not probed here (a missing sensor must not keep the outputs from
/// being held safe); see [`probe_sensors`] and the daemon's self-test.
pub fn open(config: &HardwareConfig) -> Result<Board, LinuxError> {
    config.validate().map_err(LinuxError::Config)?;
    let chips = gpio::scan_chips()?;
    let pwm = match &config.pump_pwm {
        Some(p) => Some(pwm::PumpPwm::open(Path::new(pwm::SYSFS_PWM), p)?),
        None => None,
    };
    let outputs = LinuxOutputs::open(config, &chips, pwm)?;
    let inputs = LinuxInputs::open(config, &chips)?;
    if !config.sensors.fitted().is_empty() {
        check_i2c_bus(&config.i2c_bus)?;
    }
    let sensors: Box<dyn SensorPort> = Box::new(SensorBank::new(
        SmbusI2c::new(&config.i2c_bus),
        StdDelay,
        sensor_layout(config),
    ));
    Ok(Board {
        backend: "linux",
        outputs: Box::new(outputs),
        inputs: Box::new(inputs),
        sensors,
        clock: Arc::new(MonotonicClock),
    })
}

/// Drives every output line to its safe (inactive) value and releases it; zeroes and
/// disables the pump PWM. Needs no daemon state. Tries every output on every readable chip,
/// even if some fail or the section does not validate, and returns the first error; see
/// [`safe_off::force_safe_plan`] for the full report the `ExecStopPost=` helper prints.
///
/// A line held by a still-running daemon is busy; the helper then fails for that line
/// (systemd runs it only after the daemon's process is gone).
pub fn force_safe(config: &HardwareConfig) -> Result<(), LinuxError> {
    match safe_off::force_safe_plan(&safe_off::SafeOffPlan::from_config(config)).first_error() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Identifies every fitted sensor; a chip that does not answer is
/// [`LinuxError::SensorMissing`] with its address and bus.
pub fn probe_sensors(config: &HardwareConfig) -> Vec<(Sensor, Result<ChipIdentity, LinuxError>)> {
    let bus_path = config.i2c_bus.display().to_string();
    if let Err(e) = check_i2c_bus(&config.i2c_bus) {
        return config
            .sensors
            .fitted()
            .into_iter()
            .map(|(s, _)| (s, Err(e.clone())))
            .collect();
    }
    let mut bank = SensorBank::new(
        SmbusI2c::new(&config.i2c_bus),
        StdDelay,
        sensor_layout(config),
    );
    config
        .sensors
        .fitted()
        .into_iter()
        .map(|(sensor, address)| {
            let r = bank.identify(sensor).map_err(|error| match error {
                SensorError::NoResponse => LinuxError::SensorMissing {
                    sensor,
                    part: part(sensor),
                    address,
                    bus: bus_path.clone(),
                },
                error => LinuxError::Sensor {
                    sensor,
                    address,
                    error,
                },
            });
            (sensor, r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn a_hal_error_keeps_the_linux_error_it_wraps() {
        let lookup = LinuxError::LineNotFound {
            signal: "pump".to_owned(),
            detail: "no line named `pump` on /dev/gpiochip4 [pinctrl-rp1]".to_owned(),
        };
        let bus = LinuxError::I2cBusMissing {
            device: "/dev/i2c-1".to_owned(),
        };
        for (wrapped, says) in [
            (lookup.clone(), format!("line `pump` not found: {lookup}")),
            (bus.clone(), format!("hardware: {bus}")),
        ] {
            let hal = HalError::from(wrapped.clone());
            assert_eq!(hal.to_string(), says);
            let source = hal.source().and_then(|s| s.downcast_ref::<ErrorSource>());
            let kept = source.and_then(|s| s.get_ref().downcast_ref::<LinuxError>());
            assert_eq!(kept, Some(&wrapped));
        }
    }
}
