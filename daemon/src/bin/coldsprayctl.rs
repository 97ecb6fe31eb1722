//! `coldsprayctl`: the operator and technician command line of the ColdSpray unit, over
//! D-Bus (`org.coldspray.ColdSpray1`).
//!
//! Exit codes: 0 done; 1 refused by the daemon (the D-Bus error's short name and message are
//! printed, e.g. `NotReady: not ready: the unit is precooling`); 2 usage error; 3 cannot
//! reach the daemon (no bus, service not running, no reply); 4 access denied (bus policy or
//! the daemon); 5 any other failure (unexpected reply).
#![forbid(unsafe_code)]

use clap::{Args, Parser, Subcommand};
use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::time::Duration;
use zbus::zvariant::{OwnedValue, Value};

const NAME: &str = "org.coldspray.ColdSpray1";
const PATH: &str = "/org/coldspray/ColdSpray1";
const UNIT: &str = "org.coldspray.ColdSpray1.Unit";
const PROTOCOLS: &str = "org.coldspray.ColdSpray1.Protocols";
const SESSIONS: &str = "org.coldspray.ColdSpray1.Sessions";
const MAINT: &str = "org.coldspray.ColdSpray1.Maintenance";
const SIM: &str = "org.coldspray.ColdSpray1.Simulator";

/// Exit code: refused by the daemon.
const EXIT_REFUSED: u8 = 1;
/// Exit code: cannot reach the daemon.
const EXIT_UNREACHABLE: u8 = 3;
/// Exit code: access denied.
const EXIT_DENIED: u8 = 4;
/// Exit code: anything else.
const EXIT_OTHER: u8 = 5;

#[derive(Parser)]
#[command(
    name = "coldsprayctl",
    version,
    about = "Control the ColdSpray cold-mist unit over D-Bus",
    after_help = "Exit codes: 0 ok, 1 refused by the daemon, 2 usage, 3 cannot reach the daemon, \
                  4 access denied, 5 other failure."
)]
struct Cli {
    /// Use the system bus (default).
    #[arg(long, global = true, conflicts_with_all = ["session", "address"])]
    system: bool,
    /// Use the session bus (the daemon on the simulated unit).
    #[arg(long, global = true, conflicts_with = "address")]
    session: bool,
    /// Use the bus at this address.
    #[arg(long, global = true, env = "COLDSPRAY_DBUS_ADDRESS")]
    address: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    /// Seconds to wait for each reply.
    #[arg(long, global = true, default_value_t = 10.0)]
    timeout: f64,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
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
        /// Alarm key (as shown by status); omit for all.
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
enum ProtoCmd {
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
struct Filter {
    /// Sessions started at or after (ms since the Unix epoch).
    #[arg(long)]
    from_unix_ms: Option<i64>,
    /// Sessions started before (ms since the Unix epoch).
    #[arg(long)]
    to_unix_ms: Option<i64>,
    /// Only this protocol.
    #[arg(long)]
    protocol: Option<String>,
    /// Only this outcome.
    #[arg(long)]
    outcome: Option<String>,
    /// At most this many, newest first.
    #[arg(long)]
    limit: Option<u32>,
}

#[derive(Subcommand)]
enum SessionCmd {
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
enum MaintCmd {
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
enum SimCmd {
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
enum OnOff {
    On,
    Off,
}

/// Why a command failed, with its exit code.
struct Failure {
    code: u8,
    message: String,
}

fn classify(e: zbus::Error) -> Failure {
    match e {
        zbus::Error::MethodError(name, msg, _) => {
            let name = name.as_str().to_string();
            let short = name.rsplit('.').next().unwrap_or(&name).to_string();
            let msg = msg.unwrap_or_default();
            let code = if name.starts_with("org.coldspray.ColdSpray1.Error.") {
                if short == "PermissionDenied" {
                    EXIT_DENIED
                } else {
                    EXIT_REFUSED
                }
            } else {
                match short.as_str() {
                    "AccessDenied" | "AuthFailed" => EXIT_DENIED,
                    "ServiceUnknown" | "NameHasNoOwner" | "NoReply" | "Timeout"
                    | "Disconnected" | "NoServer" => EXIT_UNREACHABLE,
                    "UnknownMethod" | "UnknownInterface" | "UnknownObject" => EXIT_REFUSED,
                    _ => EXIT_OTHER,
                }
            };
            Failure {
                code,
                message: format!("{short}: {msg}"),
            }
        }
        zbus::Error::InputOutput(e) => Failure {
            code: EXIT_UNREACHABLE,
            message: format!("cannot reach the daemon: {e}"),
        },
        e @ (zbus::Error::Address(_) | zbus::Error::Handshake(_)) => Failure {
            code: EXIT_UNREACHABLE,
            message: format!("cannot reach the bus: {e}"),
        },
        zbus::Error::FDO(e) => {
            let s = e.to_string();
            let code = if s.contains("AccessDenied") {
                EXIT_DENIED
            } else {
                EXIT_UNREACHABLE
            };
            Failure { code, message: s }
        }
        other => Failure {
            code: EXIT_OTHER,
            message: other.to_string(),
        },
    }
}

fn other<E: std::fmt::Display>(e: E) -> Failure {
    Failure {
        code: EXIT_OTHER,
        message: e.to_string(),
    }
}

type Dict = HashMap<String, OwnedValue>;

struct Client {
    conn: zbus::Connection,
    json: bool,
}

impl Client {
    async fn call<B>(&self, iface: &str, method: &str, body: &B) -> Result<zbus::Message, Failure>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        self.conn
            .call_method(Some(NAME), PATH, Some(iface), method, body)
            .await
            .map_err(classify)
    }

    async fn all(&self, iface: &str) -> Result<Dict, Failure> {
        let m = self
            .call("org.freedesktop.DBus.Properties", "GetAll", &(iface,))
            .await?;
        m.body().deserialize::<Dict>().map_err(other)
    }

    /// Prints "ok" (human) or `{"ok":true}` plus extra fields (JSON).
    fn done(&self, what: &str) {
        if self.json {
            println!("{}", serde_json::json!({ "ok": true }));
        } else {
            println!("{what}");
        }
    }
}

/// Converts any D-Bus value into JSON (NaN becomes null).
fn to_json(v: &Value<'_>) -> serde_json::Value {
    use serde_json::Value as J;
    let num = |x: f64| {
        serde_json::Number::from_f64(x)
            .map(J::Number)
            .unwrap_or(J::Null)
    };
    match v {
        Value::U8(x) => J::from(*x),
        Value::Bool(x) => J::from(*x),
        Value::I16(x) => J::from(*x),
        Value::U16(x) => J::from(*x),
        Value::I32(x) => J::from(*x),
        Value::U32(x) => J::from(*x),
        Value::I64(x) => J::from(*x),
        Value::U64(x) => J::from(*x),
        Value::F64(x) => num(*x),
        Value::Str(s) => J::from(s.as_str()),
        Value::Signature(s) => J::from(s.to_string()),
        Value::ObjectPath(p) => J::from(p.as_str()),
        Value::Value(inner) => to_json(inner),
        Value::Array(a) => J::Array(a.iter().map(to_json).collect()),
        Value::Dict(d) => {
            let mut m = serde_json::Map::new();
            for (k, v) in d.iter() {
                let key = match to_json(k) {
                    J::String(s) => s,
                    other => other.to_string(),
                };
                m.insert(key, to_json(v));
            }
            J::Object(m)
        }
        Value::Structure(s) => J::Array(s.fields().iter().map(to_json).collect()),
        #[allow(unreachable_patterns)]
        _ => J::Null,
    }
}

fn dict_json(d: &Dict) -> serde_json::Value {
    let sorted: BTreeMap<_, _> = d.iter().map(|(k, v)| (k.clone(), to_json(v))).collect();
    serde_json::to_value(sorted).unwrap_or_default()
}

fn f(d: &Dict, k: &str) -> Option<f64> {
    d.get(k).and_then(|v| f64::try_from(v).ok())
}

fn s(d: &Dict, k: &str) -> String {
    d.get(k)
        .and_then(|v| v.try_clone().ok())
        .and_then(|v| String::try_from(v).ok())
        .unwrap_or_default()
}

fn b(d: &Dict, k: &str) -> bool {
    d.get(k)
        .and_then(|v| bool::try_from(v).ok())
        .unwrap_or(false)
}

fn u(d: &Dict, k: &str) -> Option<u64> {
    d.get(k).and_then(|v| u64::try_from(v).ok())
}

fn opt_c(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.1} °C"))
        .unwrap_or_else(|| "--".into())
}

fn render_status(unit: &Dict, maint: &Dict) -> String {
    let mut out = String::new();
    let state = s(unit, "State");
    let ready = b(unit, "Ready");
    out.push_str(&format!(
        "State       {state}{}\n",
        if ready { " (ready to spray)" } else { "" }
    ));
    let temps: HashMap<String, f64> = unit
        .get("Temperatures")
        .and_then(|v| v.try_clone().ok())
        .and_then(|v| v.try_into().ok())
        .unwrap_or_default();
    out.push_str(&format!(
        "Setpoint    {}\nTemps       reservoir {}  mist {}  heatsink {}  skin {}\n",
        opt_c(f(unit, "Setpoint")),
        opt_c(temps.get("reservoir").copied()),
        opt_c(temps.get("mist").copied()),
        opt_c(temps.get("heatsink").copied()),
        opt_c(temps.get("skin").copied()),
    ));
    let p = f(unit, "Pressure").filter(|x| x.is_finite());
    out.push_str(&format!(
        "Line        {}  flow {:.2} L/min{}\n",
        p.map(|x| format!("{x:.2} bar"))
            .unwrap_or_else(|| "-- bar".into()),
        f(unit, "FlowRate").unwrap_or(0.0),
        if b(unit, "LaserOn") { "  LASER ON" } else { "" }
    ));
    let armed = s(unit, "Armed");
    out.push_str(&format!(
        "Auto-start  {}\n",
        if armed.is_empty() {
            "disarmed".to_string()
        } else {
            format!("armed with {armed}")
        }
    ));
    let sess: Dict = unit
        .get("CurrentSession")
        .and_then(|v| v.try_clone().ok())
        .and_then(|v| v.try_into().ok())
        .unwrap_or_default();
    if sess.is_empty() {
        out.push_str("Session     none\n");
    } else {
        out.push_str(&format!(
            "Session     #{} {} ({}), {:.1} s elapsed, {:.1} s left{}{}\n",
            u(&sess, "id").unwrap_or(0),
            s(&sess, "protocol"),
            s(&sess, "goal"),
            f(&sess, "elapsed_s").unwrap_or(0.0),
            f(&sess, "remaining_s").unwrap_or(0.0),
            if b(&sess, "late") { ", LATE" } else { "" },
            if b(&sess, "in_band") { ", in band" } else { "" },
        ));
    }
    let alarms: Vec<(String, String, String, i64, bool, bool)> = unit
        .get("ActiveAlarms")
        .and_then(|v| v.try_clone().ok())
        .and_then(|v| v.try_into().ok())
        .unwrap_or_default();
    if alarms.is_empty() {
        out.push_str("Alarms      none\n");
    } else {
        out.push_str("Alarms\n");
        for (key, prio, msg, _, present, acked) in alarms {
            out.push_str(&format!(
                "  {:<6} {:<24} {}{}{}\n",
                prio.to_uppercase(),
                key,
                msg,
                if present { "" } else { " (latched)" },
                if acked { " [acknowledged]" } else { "" }
            ));
        }
    }
    if b(unit, "AudioPaused") {
        out.push_str("Audio       paused\n");
    }
    let activity = s(maint, "Activity");
    if b(maint, "Active") {
        out.push_str(&format!(
            "Maintenance {}\n",
            if activity.is_empty() {
                "idle"
            } else {
                &activity
            }
        ));
    }
    out.push_str(&format!(
        "Self-test   {}\nDaemon      {} ({})\n",
        s(maint, "LastSelfTest"),
        s(unit, "Version"),
        s(unit, "Backend")
    ));
    out
}

async fn status(c: &Client, watch: bool) -> Result<(), Failure> {
    use futures_util::StreamExt;
    let show = |unit: &Dict, maint: &Dict, clear: bool| {
        if c.json {
            println!(
                "{}",
                serde_json::json!({ "unit": dict_json(unit), "maintenance": dict_json(maint) })
            );
        } else {
            if clear {
                print!("\x1b[2J\x1b[H");
            }
            print!("{}", render_status(unit, maint));
        }
    };
    if !watch {
        let (unit, maint) = (c.all(UNIT).await?, c.all(MAINT).await?);
        show(&unit, &maint, false);
        return Ok(());
    }
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(NAME)
        .map_err(other)?
        .path(PATH)
        .map_err(other)?
        .build();
    let mut stream = zbus::MessageStream::for_match_rule(rule, &c.conn, Some(256))
        .await
        .map_err(classify)?;
    let owner_rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender("org.freedesktop.DBus")
        .map_err(other)?
        .member("NameOwnerChanged")
        .map_err(other)?
        .arg(0, NAME)
        .map_err(other)?
        .build();
    let mut owner = zbus::MessageStream::for_match_rule(owner_rule, &c.conn, Some(16))
        .await
        .map_err(classify)?;
    loop {
        let (unit, maint) = (c.all(UNIT).await?, c.all(MAINT).await?);
        show(&unit, &maint, true);
        tokio::select! {
            m = stream.next() => if m.is_none() { break },
            _ = owner.next() => {
                return Err(Failure { code: EXIT_UNREACHABLE, message: "the daemon left the bus".into() });
            }
            _ = tokio::signal::ctrl_c() => break,
        }
        // Coalesce bursts: at most 10 redraws per second.
        tokio::time::sleep(Duration::from_millis(100)).await;
        while let Some(Some(_)) = futures_util::FutureExt::now_or_never(stream.next()) {}
    }
    Ok(())
}

fn parse_fields(fields: &[String]) -> Result<Dict, Failure> {
    let usage = |m: String| Failure {
        code: 2,
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

fn filter_dict(f: &Filter) -> Dict {
    let mut d = Dict::new();
    let mut put = |k: &str, v: Value<'static>| {
        if let Ok(o) = OwnedValue::try_from(v) {
            d.insert(k.to_string(), o);
        }
    };
    if let Some(x) = f.from_unix_ms {
        put("from_unix_ms", Value::I64(x));
    }
    if let Some(x) = f.to_unix_ms {
        put("to_unix_ms", Value::I64(x));
    }
    if let Some(x) = &f.protocol {
        put("protocol", Value::from(x.clone()));
    }
    if let Some(x) = &f.outcome {
        put("outcome", Value::from(x.clone()));
    }
    if let Some(x) = f.limit {
        put("limit", Value::U32(x));
    }
    d
}

fn print_protocol(p: &Dict) {
    let pattern = match s(p, "pattern").as_str() {
        "pulsed" => format!(
            "pulsed {}/{} ms",
            p.get("on_ms")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0),
            p.get("off_ms")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0)
        ),
        other => other.to_string(),
    };
    println!(
        "{:<18} {:<18} {:<8} {:>5.0} s  {:<18} pump {:>3}%  target {}  floor {}",
        s(p, "name"),
        s(p, "title"),
        s(p, "goal"),
        f(p, "spray_s").unwrap_or(0.0),
        pattern,
        p.get("pump_percent")
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0),
        opt_c(f(p, "skin_target_c")),
        opt_c(f(p, "skin_floor_c")),
    );
}

fn print_session(d: &Dict) {
    println!(
        "#{:<5} {:<18} {:<11} {:<19} {:>7.1} s  laser->spray {}{}",
        u(d, "id").unwrap_or(0),
        s(d, "protocol"),
        s(d, "cause"),
        s(d, "outcome"),
        f(d, "duration_s").unwrap_or(0.0),
        f(d, "laser_to_spray_ms")
            .map(|x| format!("{x:.0} ms"))
            .unwrap_or_else(|| "--".into()),
        if b(d, "late") { " LATE" } else { "" },
    );
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let timeout = Duration::from_secs_f64(cli.timeout.clamp(0.1, 3600.0));
    let builder = match (&cli.address, cli.session) {
        (Some(a), _) => zbus::connection::Builder::address(a.as_str()),
        (None, true) => zbus::connection::Builder::session(),
        (None, false) => zbus::connection::Builder::system(),
    }
    .map_err(classify)?;
    let conn = match tokio::time::timeout(timeout, builder.method_timeout(timeout).build()).await {
        Ok(r) => r.map_err(|e| Failure {
            code: EXIT_UNREACHABLE,
            message: format!("cannot connect to the bus: {e}"),
        })?,
        Err(_) => {
            return Err(Failure {
                code: EXIT_UNREACHABLE,
                message: "timed out connecting to the bus".into(),
            })
        }
    };
    let c = Client {
        conn,
        json: cli.json,
    };
    let json = cli.json;
    match cli.command {
        Cmd::Status { watch } => status(&c, watch).await?,
        Cmd::Start {
            protocol,
            spray_s,
            skin_target_c,
            pump_percent,
        } => {
            let mut o = Dict::new();
            if let Some(x) = spray_s {
                o.insert("spray_s".into(), OwnedValue::from(x));
            }
            if let Some(x) = skin_target_c {
                o.insert("skin_target_c".into(), OwnedValue::from(x));
            }
            if let Some(x) = pump_percent {
                o.insert("pump_percent".into(), OwnedValue::from(x));
            }
            let m = c.call(UNIT, "Start", &(protocol.as_str(), o)).await?;
            let id: u64 = m.body().deserialize().map_err(other)?;
            if json {
                println!("{}", serde_json::json!({ "ok": true, "session_id": id }));
            } else {
                println!("session {id} started with {protocol}");
            }
        }
        Cmd::Stop => {
            c.call(UNIT, "Stop", &()).await?;
            c.done("stopped");
        }
        Cmd::Arm { protocol } => {
            c.call(UNIT, "Arm", &(protocol.as_str(),)).await?;
            c.done(&format!("armed with {protocol}"));
        }
        Cmd::Disarm => {
            c.call(UNIT, "Disarm", &()).await?;
            c.done("disarmed");
        }
        Cmd::Ack { key } => {
            let k = key.unwrap_or_default();
            c.call(UNIT, "Acknowledge", &(k.as_str(),)).await?;
            c.done(if k.is_empty() {
                "all alarms acknowledged"
            } else {
                "acknowledged"
            });
        }
        Cmd::AudioPause => {
            c.call(UNIT, "AudioPause", &()).await?;
            c.done("audio paused");
        }
        Cmd::Setpoint { celsius } => {
            c.call(UNIT, "SetSetpoint", &(celsius,)).await?;
            c.done(&format!("setpoint {celsius:.1} °C"));
        }
        Cmd::Protocols(p) => match p {
            ProtoCmd::List => {
                let m = c.call(PROTOCOLS, "List", &()).await?;
                let list: Vec<Dict> = m.body().deserialize().map_err(other)?;
                if json {
                    let v: Vec<_> = list.iter().map(dict_json).collect();
                    println!("{}", serde_json::Value::Array(v));
                } else {
                    list.iter().for_each(print_protocol);
                }
            }
            ProtoCmd::Show { name } => {
                let m = c.call(PROTOCOLS, "Get", &(name.as_str(),)).await?;
                let p: Dict = m.body().deserialize().map_err(other)?;
                if json {
                    println!("{}", dict_json(&p));
                } else {
                    print_protocol(&p);
                }
            }
            ProtoCmd::Create { fields } => {
                c.call(PROTOCOLS, "Create", &(parse_fields(&fields)?,))
                    .await?;
                c.done("created");
            }
            ProtoCmd::Update { name, fields } => {
                c.call(
                    PROTOCOLS,
                    "Update",
                    &(name.as_str(), parse_fields(&fields)?),
                )
                .await?;
                c.done("updated");
            }
            ProtoCmd::Delete { name } => {
                c.call(PROTOCOLS, "Delete", &(name.as_str(),)).await?;
                c.done("deleted");
            }
        },
        Cmd::Sessions(sc) => match sc {
            SessionCmd::List(filter) => {
                let m = c.call(SESSIONS, "List", &(filter_dict(&filter),)).await?;
                let list: Vec<Dict> = m.body().deserialize().map_err(other)?;
                if json {
                    let v: Vec<_> = list.iter().map(dict_json).collect();
                    println!("{}", serde_json::Value::Array(v));
                } else if list.is_empty() {
                    println!("no sessions");
                } else {
                    list.iter().for_each(print_session);
                }
            }
            SessionCmd::Show { id, curve } => {
                let m = c.call(SESSIONS, "Get", &(id,)).await?;
                type Point = (u32, f64, f64, f64, f64, bool, bool);
                let (rec, points): (Dict, Vec<Point>) = m.body().deserialize().map_err(other)?;
                if json {
                    let pts: Vec<_> = points
                        .iter()
                        .map(|p| {
                            let n = |x: f64| serde_json::Number::from_f64(x).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null);
                            serde_json::json!({"t_ms": p.0, "mist_c": n(p.1), "skin_c": n(p.2),
                                "reservoir_c": n(p.3), "pressure_bar": n(p.4), "pump": p.5, "valve": p.6})
                        })
                        .collect();
                    println!(
                        "{}",
                        serde_json::json!({ "session": dict_json(&rec), "curve": pts })
                    );
                } else {
                    let sorted: BTreeMap<_, _> = rec.iter().collect();
                    for (k, v) in sorted {
                        println!("{k:<18} {}", to_json(v));
                    }
                    println!("{:<18} {} points", "curve", points.len());
                    if curve {
                        println!("t_ms\tmist_c\tskin_c\treservoir_c\tpressure_bar\tpump\tvalve");
                        for p in points {
                            println!(
                                "{}\t{:.2}\t{:.2}\t{:.2}\t{:.2}\t{}\t{}",
                                p.0, p.1, p.2, p.3, p.4, p.5, p.6
                            );
                        }
                    }
                }
            }
            SessionCmd::Export { format, filter } => {
                let m = c
                    .call(SESSIONS, "Export", &(filter_dict(&filter), format.as_str()))
                    .await?;
                let text: String = m.body().deserialize().map_err(other)?;
                print!("{text}");
                if !text.ends_with('\n') {
                    println!();
                }
            }
            SessionCmd::Stats(filter) => {
                let m = c.call(SESSIONS, "Stats", &(filter_dict(&filter),)).await?;
                let d: Dict = m.body().deserialize().map_err(other)?;
                if json {
                    println!("{}", dict_json(&d));
                } else {
                    let sorted: BTreeMap<_, _> = d.iter().collect();
                    for (k, v) in sorted {
                        println!("{k:<24} {}", to_json(v));
                    }
                }
            }
        },
        Cmd::Maintenance(mc) => {
            let msg = match mc {
                MaintCmd::Enter => c
                    .call(MAINT, "Enter", &())
                    .await
                    .map(|_| "maintenance mode"),
                MaintCmd::Exit => c
                    .call(MAINT, "Exit", &())
                    .await
                    .map(|_| "maintenance ended"),
                MaintCmd::Prime { seconds } => {
                    c.call(MAINT, "Prime", &(seconds,)).await.map(|_| "priming")
                }
                MaintCmd::Drain { seconds } => c
                    .call(MAINT, "Drain", &(seconds,))
                    .await
                    .map(|_| "draining"),
                MaintCmd::TestOutput { output, seconds } => c
                    .call(MAINT, "TestOutput", &(output.as_str(), seconds))
                    .await
                    .map(|_| "output on"),
                MaintCmd::Calibrate { sensor, offset } => c
                    .call(MAINT, "SetCalibration", &(sensor.as_str(), offset))
                    .await
                    .map(|_| "calibration set"),
                MaintCmd::ConfirmSettings => c
                    .call(MAINT, "ConfirmSettings", &())
                    .await
                    .map(|_| "settings confirmed and saved"),
                MaintCmd::WaterChange => c
                    .call(MAINT, "RecordWaterChange", &())
                    .await
                    .map(|_| "water change recorded"),
                MaintCmd::Counters => {
                    let d = c.all(MAINT).await?;
                    if json {
                        println!("{}", dict_json(&d));
                    } else {
                        println!(
                            "pump hours      {:.2}\nchiller hours   {:.2}\nsessions        {}\nlate sessions   {}\nwater changes   {}\nchiller duty    {:.0} %\nlast self-test  {}",
                            f(&d, "PumpHours").unwrap_or(0.0),
                            f(&d, "ChillerHours").unwrap_or(0.0),
                            u(&d, "SessionCount").unwrap_or(0),
                            u(&d, "LateSessionCount").unwrap_or(0),
                            u(&d, "WaterChanges").unwrap_or(0),
                            f(&d, "ChillerDuty").unwrap_or(0.0) * 100.0,
                            s(&d, "LastSelfTest"),
                        );
                    }
                    return Ok(());
                }
            }?;
            c.done(msg);
        }
        Cmd::Selftest => {
            c.call(MAINT, "SelfTest", &()).await?;
            c.done("self-test started");
        }
        Cmd::Sim(sc) => {
            let on = |s: OnOff| matches!(s, OnOff::On);
            match sc {
                SimCmd::Laser { seconds, fluence } => {
                    c.call(SIM, "LaserPass", &(seconds, fluence)).await?
                }
                SimCmd::Fault { kind, sensor } => {
                    let s = sensor.unwrap_or_default();
                    c.call(SIM, "InjectFault", &(kind.as_str(), s.as_str()))
                        .await?
                }
                SimCmd::ClearFault { kind, sensor } => {
                    let s = sensor.unwrap_or_default();
                    c.call(SIM, "ClearFault", &(kind.as_str(), s.as_str()))
                        .await?
                }
                SimCmd::ClearAll => c.call(SIM, "ClearAllFaults", &()).await?,
                SimCmd::Estop { state } => c.call(SIM, "SetEstop", &(on(state),)).await?,
                SimCmd::Trigger { state } => c.call(SIM, "SetTrigger", &(on(state),)).await?,
                SimCmd::Ambient { celsius } => c.call(SIM, "SetAmbient", &(celsius,)).await?,
                SimCmd::Refill { litres, celsius } => {
                    c.call(SIM, "Refill", &(litres, celsius)).await?
                }
            };
            c.done("ok");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("coldsprayctl: {e}");
            return ExitCode::from(EXIT_OTHER);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(fail) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "ok": false, "error": fail.message, "exit_code": fail.code })
                );
            }
            eprintln!("coldsprayctl: {}", fail.message);
            ExitCode::from(fail.code)
        }
    }
}
