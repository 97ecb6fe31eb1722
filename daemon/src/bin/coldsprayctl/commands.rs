//! Runs one parsed command against the daemon through the typed proxies and prints its
//! answer, as text or (`--json`) as JSON.

use crate::cli::{parse_fields, Cmd, MaintCmd, OnOff, ProtoCmd, SessionCmd, SimCmd};
use crate::failure::{classify, other, Failure, EXIT_UNREACHABLE};
use crate::json::{curve_json, dict_json, dicts_json};
use crate::render;
use coldsprayd::dbus::convert::Dict;
use coldsprayd::dbus::proxy::{
    uncached, MaintenanceProxy, ProtocolsProxy, SessionsProxy, SimulatorProxy, UnitProxy,
};
use coldsprayd::dbus::{INTERFACES, NAME, PATH};
use std::time::Duration;
use zbus::zvariant::OwnedValue;

/// The Unit interface, whose properties `status` shows.
const UNIT: &str = INTERFACES[0];
/// The Maintenance interface, whose properties `status` and `maintenance counters` show.
const MAINTENANCE: &str = INTERFACES[3];

/// The body of a reply as `T`; a body that does not read as `T` is an unexpected reply.
fn body<T>(m: &zbus::Message) -> Result<T, Failure>
where
    T: for<'d> zbus::zvariant::DynamicDeserialize<'d>,
{
    m.body().deserialize::<T>().map_err(other)
}

/// A connection to the daemon's bus and how to print.
pub struct Ctl {
    /// The bus connection.
    pub conn: zbus::Connection,
    /// Machine-readable JSON output.
    pub json: bool,
}

impl Ctl {
    /// Prints "ok"-like text (human) or `{"ok":true}` (JSON).
    fn done(&self, what: &str) {
        if self.json {
            println!("{}", serde_json::json!({ "ok": true }));
        } else {
            println!("{what}");
        }
    }

    /// Every property of one ColdSpray interface, read from the service (`GetAll`); the
    /// reply reads as the raw dictionary (`--json` prints every property there is) or as the
    /// interface's properties struct.
    async fn all(&self, iface: &str) -> Result<zbus::Message, Failure> {
        self.conn
            .call_method(
                Some(NAME),
                PATH,
                Some("org.freedesktop.DBus.Properties"),
                "GetAll",
                &(iface,),
            )
            .await
            .map_err(classify)
    }

    /// Runs one command.
    pub async fn run(&self, command: Cmd) -> Result<(), Failure> {
        match command {
            Cmd::Status { watch } => self.status(watch).await,
            Cmd::Protocols(p) => self.protocols(p).await,
            Cmd::Sessions(s) => self.sessions(s).await,
            Cmd::Maintenance(m) => self.maintenance(m).await,
            Cmd::Selftest => {
                let maint: MaintenanceProxy = uncached(&self.conn).await.map_err(classify)?;
                maint.self_test().await.map_err(classify)?;
                self.done("self-test started");
                Ok(())
            }
            Cmd::Sim(s) => self.sim(s).await,
            unit @ (Cmd::Start { .. }
            | Cmd::Stop
            | Cmd::Arm { .. }
            | Cmd::Disarm
            | Cmd::Ack { .. }
            | Cmd::AudioPause
            | Cmd::Setpoint { .. }) => self.unit(unit).await,
        }
    }

    /// The commands of the Unit interface.
    async fn unit(&self, command: Cmd) -> Result<(), Failure> {
        let unit: UnitProxy = uncached(&self.conn).await.map_err(classify)?;
        let said = match command {
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
                let id = unit.start(&protocol, o).await.map_err(classify)?;
                if self.json {
                    println!("{}", serde_json::json!({ "ok": true, "session_id": id }));
                } else {
                    println!("session {id} started with {protocol}");
                }
                return Ok(());
            }
            Cmd::Stop => unit.stop().await.map(|()| "stopped".to_string()),
            Cmd::Arm { protocol } => unit
                .arm(&protocol)
                .await
                .map(|()| format!("armed with {protocol}")),
            Cmd::Disarm => unit.disarm().await.map(|()| "disarmed".to_string()),
            Cmd::Ack { key } => {
                let k = crate::cli::acknowledge_key(key.as_deref()).to_string();
                unit.acknowledge(&k).await.map(|()| {
                    if k.is_empty() {
                        "all alarms acknowledged".to_string()
                    } else {
                        "acknowledged".to_string()
                    }
                })
            }
            Cmd::AudioPause => unit
                .audio_pause()
                .await
                .map(|()| "audio paused".to_string()),
            Cmd::Setpoint { celsius } => unit
                .set_setpoint(celsius)
                .await
                .map(|()| format!("setpoint {celsius:.1} °C")),
            _ => return Err(other("not a Unit command")),
        }
        .map_err(classify)?;
        self.done(&said);
        Ok(())
    }

    /// `protocols ...`.
    async fn protocols(&self, command: ProtoCmd) -> Result<(), Failure> {
        let p: ProtocolsProxy = uncached(&self.conn).await.map_err(classify)?;
        let said = match command {
            ProtoCmd::List if self.json => {
                let list = p.list_dicts().await.map_err(classify)?;
                println!("{}", dicts_json(&list));
                return Ok(());
            }
            ProtoCmd::List => {
                let list = p.list().await.map_err(classify)?;
                list.iter()
                    .for_each(|x| println!("{}", render::protocol_line(x)));
                return Ok(());
            }
            ProtoCmd::Show { name } if self.json => {
                println!("{}", dict_json(&p.get_dict(&name).await.map_err(classify)?));
                return Ok(());
            }
            ProtoCmd::Show { name } => {
                let info = p.get(&name).await.map_err(classify)?;
                println!("{}", render::protocol_line(&info));
                return Ok(());
            }
            ProtoCmd::Create { fields } => {
                p.create(parse_fields(&fields)?).await.map(|()| "created")
            }
            ProtoCmd::Update { name, fields } => p
                .update(&name, parse_fields(&fields)?)
                .await
                .map(|()| "updated"),
            ProtoCmd::Delete { name } => p.delete(&name).await.map(|()| "deleted"),
        }
        .map_err(classify)?;
        self.done(said);
        Ok(())
    }

    /// `sessions ...`.
    async fn sessions(&self, command: SessionCmd) -> Result<(), Failure> {
        let log: SessionsProxy = uncached(&self.conn).await.map_err(classify)?;
        match command {
            SessionCmd::List(filter) if self.json => {
                let list = log.list_dicts(filter.to_dict()).await.map_err(classify)?;
                println!("{}", dicts_json(&list));
            }
            SessionCmd::List(filter) => {
                let list = log.list(filter.to_dict()).await.map_err(classify)?;
                if list.is_empty() {
                    println!("no sessions");
                } else {
                    list.iter()
                        .for_each(|x| println!("{}", render::session_line(x)));
                }
            }
            SessionCmd::Show { id, curve } => {
                let (rec, points) = log.get_dict(id).await.map_err(classify)?;
                if self.json {
                    println!(
                        "{}",
                        serde_json::json!({ "session": dict_json(&rec), "curve": curve_json(&points) })
                    );
                } else {
                    print!("{}", render::session_detail(&rec, &points, curve));
                }
            }
            SessionCmd::Report { id, output, size } => {
                let written = crate::report::write(&self.conn, id, &output, size).await?;
                if self.json {
                    println!(
                        "{}",
                        serde_json::json!({ "ok": true, "file": output.display().to_string(), "bytes": written })
                    );
                } else {
                    println!("session {id}: report written to {}", output.display());
                }
            }
            SessionCmd::Export { format, filter } => {
                let text = log
                    .export(filter.to_dict(), &format)
                    .await
                    .map_err(classify)?;
                print!("{text}");
                if !text.ends_with('\n') {
                    println!();
                }
            }
            SessionCmd::Stats(filter) => {
                let d = log.stats_dict(filter.to_dict()).await.map_err(classify)?;
                if self.json {
                    println!("{}", dict_json(&d));
                } else {
                    print!("{}", render::fields(&d, 24));
                }
            }
        }
        Ok(())
    }

    /// `maintenance ...`.
    async fn maintenance(&self, command: MaintCmd) -> Result<(), Failure> {
        let m: MaintenanceProxy = uncached(&self.conn).await.map_err(classify)?;
        let said = match command {
            MaintCmd::Enter => m.enter().await.map(|()| "maintenance mode"),
            MaintCmd::Exit => m.exit().await.map(|()| "maintenance ended"),
            MaintCmd::Prime { seconds } => m.prime(seconds).await.map(|()| "priming"),
            MaintCmd::Drain { seconds } => m.drain(seconds).await.map(|()| "draining"),
            MaintCmd::TestOutput { output, seconds } => {
                m.test_output(&output, seconds).await.map(|()| "output on")
            }
            MaintCmd::Calibrate { sensor, offset } => m
                .set_calibration(&sensor, offset)
                .await
                .map(|()| "calibration set"),
            MaintCmd::ConfirmSettings => m
                .confirm_settings()
                .await
                .map(|()| "settings confirmed and saved"),
            MaintCmd::WaterChange => m
                .record_water_change()
                .await
                .map(|()| "water change recorded"),
            MaintCmd::Counters => {
                let m = self.all(MAINTENANCE).await?;
                if self.json {
                    println!("{}", dict_json(&body::<Dict>(&m)?));
                } else {
                    println!("{}", render::counters(&body(&m)?));
                }
                return Ok(());
            }
        }
        .map_err(classify)?;
        self.done(said);
        Ok(())
    }

    /// `sim ...`.
    async fn sim(&self, command: SimCmd) -> Result<(), Failure> {
        let sim: SimulatorProxy = uncached(&self.conn).await.map_err(classify)?;
        let on = |s: OnOff| matches!(s, OnOff::On);
        match command {
            SimCmd::Laser { seconds, fluence } => sim.laser_pass(seconds, fluence).await,
            SimCmd::Fault { kind, sensor } => {
                sim.inject_fault(&kind, &sensor.unwrap_or_default()).await
            }
            SimCmd::ClearFault { kind, sensor } => {
                sim.clear_fault(&kind, &sensor.unwrap_or_default()).await
            }
            SimCmd::ClearAll => sim.clear_all_faults().await,
            SimCmd::Estop { state } => sim.set_estop(on(state)).await,
            SimCmd::Trigger { state } => sim.set_trigger(on(state)).await,
            SimCmd::Ambient { celsius } => sim.set_ambient(celsius).await,
            SimCmd::Refill { litres, celsius } => sim.refill(litres, celsius).await,
        }
        .map_err(classify)?;
        self.done("ok");
        Ok(())
    }

    /// `status [--watch]`: the properties of Unit and Maintenance, once or on every change.
    async fn status(&self, watch: bool) -> Result<(), Failure> {
        use futures_util::StreamExt;
        let show = |unit: &zbus::Message, maint: &zbus::Message, clear: bool| {
            if self.json {
                println!(
                    "{}",
                    serde_json::json!({ "unit": dict_json(&body::<Dict>(unit)?), "maintenance": dict_json(&body::<Dict>(maint)?) })
                );
            } else {
                if clear {
                    print!("\x1b[2J\x1b[H");
                }
                print!("{}", render::status(&body(unit)?, &body(maint)?));
            }
            Ok::<_, Failure>(())
        };
        let both = || async {
            let unit = self.all(UNIT).await?;
            let maint = self.all(MAINTENANCE).await?;
            Ok::<_, Failure>((unit, maint))
        };
        if !watch {
            let (unit, maint) = both().await?;
            return show(&unit, &maint, false);
        }
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender(NAME)
            .map_err(other)?
            .path(PATH)
            .map_err(other)?
            .build();
        let mut stream = zbus::MessageStream::for_match_rule(rule, &self.conn, Some(256))
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
        let mut owner = zbus::MessageStream::for_match_rule(owner_rule, &self.conn, Some(16))
            .await
            .map_err(classify)?;
        loop {
            let (unit, maint) = both().await?;
            show(&unit, &maint, true)?;
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
}
