//! Pump strength through a sysfs hardware PWM channel (`/sys/class/pwm/pwmchipN/pwmM`).

use super::config::PumpPwmConfig;
use super::LinuxError;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The sysfs root of PWM chips.
pub const SYSFS_PWM: &str = "/sys/class/pwm";

/// An exported, enabled PWM channel.
#[derive(Debug)]
pub struct PumpPwm {
    dir: PathBuf,
    period_ns: u32,
}

fn write(path: &Path, value: impl std::fmt::Display) -> Result<(), LinuxError> {
    std::fs::write(path, value.to_string()).map_err(|e| LinuxError::Pwm {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

impl PumpPwm {
    /// Exports (if needed) and enables the channel under `root` at duty 0.
    pub fn open(root: &Path, config: &PumpPwmConfig) -> Result<Self, LinuxError> {
        let chip = root.join(format!("pwmchip{}", config.chip));
        if !chip.is_dir() {
            return Err(LinuxError::Pwm {
                path: chip.display().to_string(),
                detail: "no such PWM chip (enable the PWM overlay, e.g. dtoverlay=pwm)".to_owned(),
            });
        }
        let dir = chip.join(format!("pwm{}", config.channel));
        if !dir.is_dir() {
            write(&chip.join("export"), config.channel)?;
            // udev creates the channel directory and fixes its permissions asynchronously.
            for _ in 0..50 {
                if dir.join("enable").exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let pwm = Self {
            dir,
            period_ns: config.period_ns,
        };
        // duty must never exceed period: zero it first.
        write(&pwm.dir.join("duty_cycle"), 0)?;
        write(&pwm.dir.join("period"), pwm.period_ns)?;
        write(&pwm.dir.join("enable"), 1)?;
        Ok(pwm)
    }

    /// Sets the duty cycle in percent (clamped to 0–100).
    pub fn set_percent(&mut self, percent: u8) -> Result<(), LinuxError> {
        let duty = u64::from(self.period_ns) * u64::from(percent.min(100)) / 100;
        write(&self.dir.join("duty_cycle"), duty)
    }

    /// Duty 0 and disabled: the pump MOSFET gate is held off.
    pub fn force_off(root: &Path, config: &PumpPwmConfig) -> Result<(), LinuxError> {
        let dir = root
            .join(format!("pwmchip{}", config.chip))
            .join(format!("pwm{}", config.channel));
        if !dir.is_dir() {
            // Never exported: the pin is not driven by the PWM, so it is off.
            return Ok(());
        }
        write(&dir.join("duty_cycle"), 0)?;
        write(&dir.join("enable"), 0)
    }
}
