//! An [`embedded_hal::i2c::I2c`] adapter over Linux SMBus ioctls (`/dev/i2c-N`).
//!
//! Plain I2C combined transfers (`I2C_RDWR`) are not used: `i2c-stub` and some SMBus-only
//! controllers reject them with `EOPNOTSUPP`. Instead each transfer shape the drivers use
//! maps to one SMBus call:
//!
//! | transaction | SMBus call |
//! |---|---|
//! | write `[reg]`, read 2 bytes | read word data (the word's low byte is the first on the wire) |
//! | write `[reg]`, read 1 byte | read byte data |
//! | write `[reg]`, read 3–32 bytes | I2C block read (no count byte; used for MLX90614 + PEC) |
//! | write `[reg, b0, b1]` | write word data (`b0` first on the wire) |
//! | write `[reg, b0]` | write byte data |
//! | write `[reg]` | write byte (sets the pointer) |
//!
//! Anything else fails with [`ErrorKind::Other`] and says so, rather than being split into
//! transfers with a different meaning on the wire.

use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};
use i2cdev::core::I2CDevice;
use i2cdev::linux::{LinuxI2CDevice, LinuxI2CError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A failed SMBus transfer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct SmbusError {
    /// The embedded-hal classification (NACK, arbitration loss, other).
    pub kind: ErrorKind,
    /// What happened, with device, address and OS error.
    pub detail: String,
}

impl embedded_hal::i2c::Error for SmbusError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// Classifies an errno from an i2c-dev ioctl. `ENXIO`, `EREMOTEIO` (controllers' NACK) and
/// `ENODEV` (i2c-stub: no chip at that address) are a NACK; `EAGAIN` is arbitration loss.
pub fn errno_kind(errno: i32) -> ErrorKind {
    match errno {
        libc::ENXIO | libc::EREMOTEIO | libc::ENODEV => {
            ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)
        }
        libc::EAGAIN => ErrorKind::ArbitrationLoss,
        _ => ErrorKind::Other,
    }
}

fn errno_of(e: &LinuxI2CError) -> Option<i32> {
    match e {
        LinuxI2CError::Errno(n) => Some(*n),
        LinuxI2CError::Io(io) => io.raw_os_error(),
    }
}

/// The bus: one `/dev/i2c-N` file per device address, opened on first use.
#[derive(Debug)]
pub struct SmbusI2c {
    path: PathBuf,
    devices: HashMap<u8, LinuxI2CDevice>,
}

impl SmbusI2c {
    /// A bus on `path` (e.g. `/dev/i2c-1`). Nothing is opened until the first transfer.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            devices: HashMap::new(),
        }
    }

    /// The bus device path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fail(&self, addr: u8, what: &str, e: &LinuxI2CError) -> SmbusError {
        let errno = errno_of(e);
        let kind = errno.map(errno_kind).unwrap_or(ErrorKind::Other);
        let hint = match errno {
            Some(libc::EACCES) | Some(libc::EPERM) => {
                " (permission denied: the service user needs group `i2c`)"
            }
            Some(libc::EBUSY) => " (address claimed by a kernel driver: unbind it)",
            Some(libc::ENOENT) => " (no such bus: enable I2C and load i2c-dev)",
            _ => "",
        };
        SmbusError {
            kind,
            detail: format!(
                "{} addr {addr:#04x}: {what}: {e}{hint}",
                self.path.display()
            ),
        }
    }

    fn device(&mut self, addr: u8) -> Result<&mut LinuxI2CDevice, SmbusError> {
        if !self.devices.contains_key(&addr) {
            let dev = LinuxI2CDevice::new(&self.path, u16::from(addr))
                .map_err(|e| self.fail(addr, "open", &e))?;
            self.devices.insert(addr, dev);
        }
        self.devices.get_mut(&addr).ok_or_else(|| SmbusError {
            kind: ErrorKind::Other,
            detail: "device table".to_owned(),
        })
    }

    fn run(&mut self, addr: u8, ops: &mut [Operation<'_>]) -> Result<(), SmbusError> {
        let path = self.path.clone();
        let unsupported = |shape: String| SmbusError {
            kind: ErrorKind::Other,
            detail: format!(
                "{} addr {addr:#04x}: transfer {shape} has no SMBus equivalent",
                path.display()
            ),
        };
        let result = match ops {
            [Operation::Write(w), Operation::Read(r)] if w.len() == 1 => {
                let reg = w[0];
                let n = r.len();
                if !(1..=32).contains(&n) {
                    return Err(unsupported(format!("write 1 + read {n}")));
                }
                let dev = self.device(addr)?;
                match n {
                    1 => dev.smbus_read_byte_data(reg).map(|b| r[0] = b),
                    2 => dev
                        .smbus_read_word_data(reg)
                        .map(|w| r.copy_from_slice(&w.to_le_bytes())),
                    3..=32 => dev
                        .smbus_read_i2c_block_data(reg, n as u8)
                        .and_then(|data| {
                            if data.len() == n {
                                r.copy_from_slice(&data);
                                Ok(())
                            } else {
                                Err(LinuxI2CError::Errno(libc::EIO))
                            }
                        }),
                    _ => return Err(unsupported(format!("write 1 + read {n}"))),
                }
            }
            [Operation::Write(w)] => {
                let w: &[u8] = w;
                if w.is_empty() || w.len() > 3 {
                    return Err(unsupported(format!("write {}", w.len())));
                }
                let dev = self.device(addr)?;
                match *w {
                    [reg] => dev.smbus_write_byte(reg),
                    [reg, b0] => dev.smbus_write_byte_data(reg, b0),
                    [reg, b0, b1] => dev.smbus_write_word_data(reg, u16::from_le_bytes([b0, b1])),
                    _ => return Err(unsupported(format!("write {}", w.len()))),
                }
            }
            other => {
                let shape: Vec<String> = other
                    .iter()
                    .map(|op| match op {
                        Operation::Write(w) => format!("W{}", w.len()),
                        Operation::Read(r) => format!("R{}", r.len()),
                    })
                    .collect();
                return Err(unsupported(shape.join("+")));
            }
        };
        result.map_err(|e| {
            // A failed device may have been unplugged: reopen next time.
            self.devices.remove(&addr);
            self.fail(addr, "transfer", &e)
        })
    }
}

impl ErrorType for SmbusI2c {
    type Error = SmbusError;
}

impl I2c for SmbusI2c {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), Self::Error> {
        self.run(address, operations)
    }
}
