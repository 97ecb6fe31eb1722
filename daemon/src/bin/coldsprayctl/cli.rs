//! The command line: global options and every subcommand, as clap parses them, and the
//! `key=value` fields of `protocols create|update` turned into the dictionary the service
//! takes.

use crate::failure::{other, Failure, EXIT_USAGE};
use clap::{Args, Parser, Subcommand};
use coldsprayd::dbus::convert::{self, Dict};
use zbus::zvariant::{OwnedValue, Value};

#[derive(Parser)]
#[command(
    name = "coldsprayctl",
    version,
    about = "Control the ColdSpray cold-mist unit over D-Bus",
    after_help = "Exit codes: 0 ok, 1 refused by the daemon, 2 usage, 3 cannot reach the daemon, \
                  4 access denied, 5 other failure."
)]
pub struct Cli {
    /// Use the system bus (default).
    #[arg(long, global = true, conflicts_with_all = ["session", "address"])]
    pub system: bool,
    /// Use the session bus (the daemon on the simulated unit).
    #[arg(long, global = true, conflicts_with = "address")]
    pub session: bool,
    /// Use the bus at this address.
    #[arg(long, global = true, env = "COLDSPRAY_DBUS_ADDRESS")]
    pub address: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Seconds to wait for each reply.
    #[arg(long, global = true, default_value_t = 10.0)]
    pub timeout: f64,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Show the unit's state, temperatures, alarms and session.
    Status {
        /// Keep showing it, updated live.
        #[arg(long)]
        watch: bool,
    },
    /// Start spraying now with a protocol.
    Start {
        /// Protocol name.
        protocol: String,
        /// Spray time override, s (1-120).
        #[arg(long)]
        spray_s: Option<f64>,
        /// Skin target override, °C (12-36).
        #[arg(long)]
        skin_target_c: Option<f64>,
        /// Pump drive override, % (20-100).
        #[arg(long)]
        pump_percent: Option<u32>,
    },
    /// Stop the running session.
    Stop,
    /// Arm auto-start with a protocol.
    Arm {
        /// Protocol name.
        protocol: String,
    },
    /// Disarm auto-start.
    Disarm,
    /// Acknowledge one alarm by key, or all.
    Ack {
        /// Alarm key (as shown by status); `all`, or nothing, for every alarm.
        key: Option<String>,
    },
    /// Pause the alarm sound for 2 minutes.
    AudioPause,
    /// Set the reservoir setpoint, °C (2-15).
    Setpoint {
        /// Degrees C.
        #[arg(allow_negative_numbers = true)]
        celsius: f64,
    },
    /// Spray protocols.
    #[command(subcommand)]
    Protocols(ProtoCmd),
    /// The treatment log.
    #[command(subcommand)]
    Sessions(SessionCmd),
    /// Technician functions.
    #[command(subcommand, alias = "maint")]
    Maintenance(MaintCmd),
    /// Run the self-test.
    Selftest,
    /// Drive the simulated unit (only when the daemon runs on the sim).
    #[command(subcommand)]
    Sim(SimCmd),
}

#[derive(Subcommand)]
pub enum ProtoCmd {
    /// List protocols.
    List,
    /// Show one protocol.
    Show {
        /// Name.
        name: String,
    },
    /// Create a protocol from key=value fields (name, title, goal, spray_s required).
    Create {
        /// Fields, e.g. name=face title=Face goal=protect spray_s=60 pattern=pulsed on_ms=500
        /// off_ms=500.
        #[arg(required = true)]
        fields: Vec<String>,
    },
    /// Change fields of a protocol (skin_target_c=none removes the target).
    Update {
        /// Name.
        name: String,
        /// Fields to change, key=value.
        #[arg(required = true)]
        fields: Vec<String>,
    },
    /// Delete a protocol.
    Delete {
        /// Name.
        name: String,
    },
}

#[derive(Args)]
pub struct Filter {
    /// Sessions started at or after (ms since the Unix epoch).
    #[arg(long)]
    pub from_unix_ms: Option<i64>,
    /// Sessions started before (ms since the Unix epoch).
    #[arg(long)]
    pub to_unix_ms: Option<i64>,
    /// Only this protocol.
    #[arg(long)]
    pub protocol: Option<String>,
    /// Only this outcome.
    #[arg(long)]
    pub outcome: Option<String>,
    /// At most this many, newest first.
    #[arg(long)]
    pub limit: Option<u32>,
}

#[derive(Subcommand)]
pub enum SessionCmd {
    /// List sessions.
    List(Filter),
    /// Show one session (with --curve, its 10 Hz curve).
    Show {
        /// Session id.
        id: u64,
        /// Print the curve too.
        #[arg(long)]
        curve: bool,
    },
    /// Draw one session as a treatment report (SVG or PNG, by the file name): skin and
    /// mist temperature over time, target and floor, laser stop and spray marked, outcome
    /// and quality indicators. Needs DejaVu Sans (Debian package fonts-dejavu-core).
    Report {
        /// Session id.
        id: u64,
        /// Output file, ending in .svg or .png.
        #[arg(short = 'o', long)]
        output: std::path::PathBuf,
        /// Picture size in pixels, WIDTHxHEIGHT.
        #[arg(long, default_value = "1280x800", value_parser = parse_size)]
        size: (u32, u32),
    },
    /// Export sessions as CSV or JSON to stdout.
    Export {
        /// csv or json.
        #[arg(long, default_value = "csv")]
        format: String,
        #[command(flatten)]
        filter: Filter,
    },
    /// Figures over sessions.
    Stats(Filter),
}

#[derive(Subcommand)]
pub enum MaintCmd {
    /// Enter maintenance mode.
    Enter,
    /// Leave maintenance mode.
    Exit,
    /// Prime the line for SECONDS (1-60).
    Prime {
        /// Seconds.
        seconds: f64,
    },
    /// Drain the reservoir for SECONDS (1-300).
    Drain {
        /// Seconds.
        seconds: f64,
    },
    /// Switch one output on for SECONDS (0.1-30).
    TestOutput {
        /// Output: pump, spray_valve, chiller, chiller_fan, buzzer, lamp_ready, lamp_fault.
        output: String,
        /// Seconds.
        seconds: f64,
    },
    /// Set a sensor calibration offset (-5..5, °C or bar).
    Calibrate {
        /// Sensor: reservoir, mist, heatsink, skin, pressure.
        sensor: String,
        /// Offset.
        #[arg(allow_negative_numbers = true)]
        offset: f64,
    },
    /// After a settings_lost alarm: confirm that the setpoint and calibration offsets in
    /// force (see `status` and the alarm's message; correct them first with `setpoint` and
    /// `maintenance calibrate`) are right. Allows treatment again and saves them.
    ConfirmSettings,
    /// Record a water change.
    WaterChange,
    /// Show the service counters.
    Counters,
}

#[derive(Subcommand)]
pub enum SimCmd {
    /// A laser pass of SECONDS.
    Laser {
        /// Seconds (0.1-60).
        seconds: f64,
        /// Relative fluence (0-5; 1 = a fractional CO2 pass).
        #[arg(long, default_value_t = 1.0)]
        fluence: f64,
    },
    /// Inject a fault (sensor faults need a sensor).
    Fault {
        /// Kind: sensor_silent, sensor_stuck, sensor_out_of_range, sensor_wrong_chip,
        /// chiller_dead, pump_dead, nozzle_blocked, leak, water_low, estop, fan_dead,
        /// outputs_lost.
        kind: String,
        /// Sensor, for sensor faults.
        sensor: Option<String>,
    },
    /// Clear one fault.
    ClearFault {
        /// Kind.
        kind: String,
        /// Sensor.
        sensor: Option<String>,
    },
    /// Clear every fault.
    ClearAll,
    /// Press (on) or release (off) the E-stop.
    Estop {
        /// on or off.
        state: OnOff,
    },
    /// Press (on) or release (off) the foot pedal.
    Trigger {
        /// on or off.
        state: OnOff,
    },
    /// Set the room temperature, °C.
    Ambient {
        /// Degrees C.
        #[arg(allow_negative_numbers = true)]
        celsius: f64,
    },
    /// Refill the reservoir.
    Refill {
        /// Litres (0.1-5).
        #[arg(default_value_t = 1.5)]
        litres: f64,
        /// Water temperature, °C.
        #[arg(default_value_t = 20.0)]
        celsius: f64,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

impl Filter {
    /// The filter as the service's filter dictionary (`Sessions.List`, `Export`, `Stats`): an
    /// option left out is a key left out.
    pub fn to_dict(&self) -> Dict {
        let mut d = Dict::new();
        let mut put = |key: &str, value: Option<Value<'_>>| {
            if let Some(value) = value {
                convert::put(&mut d, key, value);
            }
        };
        put("from_unix_ms", self.from_unix_ms.map(Value::from));
        put("to_unix_ms", self.to_unix_ms.map(Value::from));
        put("protocol", self.protocol.as_deref().map(Value::from));
        put("outcome", self.outcome.as_deref().map(Value::from));
        put("limit", self.limit.map(Value::from));
        d
    }
}

/// Turns `key=value` fields into a protocol dictionary (numbers typed as the service wants).
pub fn parse_fields(fields: &[String]) -> Result<Dict, Failure> {
    let usage = |m: String| Failure {
        code: EXIT_USAGE,
        message: m,
    };
    let mut d = Dict::new();
    for field in fields {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| usage(format!("`{field}` is not key=value")))?;
        let value: Value<'static> = match k {
            "on_ms" | "off_ms" | "pump_percent" => Value::U32(
                v.parse()
                    .map_err(|_| usage(format!("{k} must be a whole number")))?,
            ),
            "spray_s" | "skin_floor_c" | "band_c" | "hold_s" => Value::F64(
                v.parse()
                    .map_err(|_| usage(format!("{k} must be a number")))?,
            ),
            "skin_target_c" if v == "none" => Value::from(v.to_string()),
            "skin_target_c" => Value::F64(
                v.parse()
                    .map_err(|_| usage(format!("{k} must be a number")))?,
            ),
            _ => Value::from(v.to_string()),
        };
        d.insert(k.to_string(), OwnedValue::try_from(value).map_err(other)?);
    }
    Ok(d)
}

/// The key `Unit.Acknowledge` takes for `ack [KEY]`: `""` (every alarm) for no key or `all`.
pub fn acknowledge_key(key: Option<&str>) -> &str {
    match key {
        None | Some("all") => "",
        Some(k) => k,
    }
}

/// Parses `WIDTHxHEIGHT` (each 320 to 8000 pixels).
fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("`{text}`: give WIDTHxHEIGHT, e.g. 1280x800"))?;
    let px = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (320..=8000).contains(n))
            .ok_or_else(|| format!("`{v}`: a whole number of pixels from 320 to 8000"))
    };
    Ok((px(w)?, px(h)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_all_and_ack_without_a_key_acknowledge_every_alarm() {
        assert_eq!(acknowledge_key(None), "");
        assert_eq!(acknowledge_key(Some("all")), "");
        assert_eq!(acknowledge_key(Some("estop")), "estop");
        assert_eq!(
            acknowledge_key(Some("sensor_stale:skin")),
            "sensor_stale:skin"
        );
    }

    #[test]
    fn ack_all_parses() {
        let cli = Cli::try_parse_from(["coldsprayctl", "ack", "all"]).expect("parses");
        match cli.command {
            Cmd::Ack { key } => assert_eq!(acknowledge_key(key.as_deref()), ""),
            _ => panic!("`ack all` parsed as another command"),
        }
    }

    #[test]
    fn a_report_needs_an_output_file_and_a_sane_size() {
        let cli = Cli::try_parse_from(["coldsprayctl", "sessions", "report", "3", "-o", "r.png"])
            .expect("parses");
        match cli.command {
            Cmd::Sessions(SessionCmd::Report { id, output, size }) => {
                assert_eq!((id, output.to_str(), size), (3, Some("r.png"), (1280, 800)));
            }
            _ => panic!("`sessions report` parsed as another command"),
        }
        assert!(Cli::try_parse_from(["coldsprayctl", "sessions", "report", "3"]).is_err());
        assert_eq!(parse_size("1920x1080"), Ok((1920, 1080)));
        assert!(parse_size("100x100").is_err());
        assert!(parse_size("wide").is_err());
    }
}
