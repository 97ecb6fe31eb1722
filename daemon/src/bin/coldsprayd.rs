//! `coldsprayd`: the ColdSpray control daemon.
#![forbid(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use coldspray_hal::sim::SimUnit;
use coldsprayd::config::{Backend, Config, ConfigError, ConfigWarning, DEFAULT_CONFIG_PATH};
use coldsprayd::runtime::{self, notify::Notifier, Parts};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Exit status for a bad configuration (sysexits EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

#[derive(Debug, Parser)]
#[command(version, about = "ColdSpray cold-mist unit control daemon")]
struct Cli {
    /// Configuration file.
    #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// Run on the simulated unit (overrides `[unit] backend`).
    #[arg(long)]
    sim: bool,
    /// Play the scripted clinic sequence on the simulated unit (implies --sim).
    #[arg(long)]
    demo: bool,
    /// Show a live view of the unit on the terminal.
    #[arg(long)]
    view: bool,
    /// Simulation speed factor (overrides `[sim] speed`).
    #[arg(long)]
    speed: Option<f64>,
    /// Check the configuration and exit.
    #[arg(long)]
    check_config: bool,
    /// Drive every output line to its safe (off) state and exit: the systemd `ExecStopPost=`
    /// helper. Reads only `[unit] backend` and the output lines of `[hardware]`, leniently:
    /// a mistake anywhere else in the file, or an unreadable file, never stops it. No D-Bus,
    /// no treatment log, no daemon state. Exits non-zero if any line could not be driven.
    #[arg(long)]
    safe_off: bool,
}

fn load_config(cli: &Cli) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let explicit = cli.config.as_os_str() != DEFAULT_CONFIG_PATH;
    let (mut config, warnings) = if explicit || cli.config.exists() {
        Config::load_checked(&cli.config)?
    } else {
        (Config::default(), Vec::new())
    };
    if cli.sim || cli.demo {
        config.unit.backend = Backend::Sim;
    }
    if let Some(speed) = cli.speed {
        let text = format!("[sim]\nspeed = {speed}\n");
        Config::parse(&text, "--speed")?;
        config.sim.speed = speed;
    }
    Ok((config, warnings))
}

fn init_logging() {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("COLDSPRAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let journald = std::env::var_os("JOURNAL_STREAM")
        .is_some()
        .then(|| tracing_journald::layer().ok())
        .flatten();
    match journald {
        Some(layer) => tracing_subscriber::registry()
            .with(filter)
            .with(layer)
            .init(),
        None => tracing_subscriber::registry()
            .with(filter)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .init(),
    }
}

fn open_board(config: &Config) -> anyhow::Result<(coldspray_hal::Board, Option<SimUnit>)> {
    match config.unit.backend {
        Backend::Sim => {
            let sim = SimUnit::new(config.sim.clone());
            Ok((sim.board(), Some(sim)))
        }
        Backend::Linux => {
            let board = coldspray_hal::linux::open(&config.hardware)
                .context("opening the GPIO lines and I2C bus of [hardware]")?;
            Ok((board, None))
        }
    }
}

async fn serve(config: Config, cli: Cli) -> anyhow::Result<()> {
    let (board, sim) = open_board(&config)?;
    let state_dir = config.state_dir();
    let (store, store_error) = match coldsprayd::store::open(&config.store, &state_dir) {
        Ok(s) => (Some(Arc::new(s)), None),
        Err(e) => {
            // Degraded mode: the unit stays safe and serves status, with an alarm.
            tracing::error!("{e}; running WITHOUT a treatment log");
            (None, Some(e.to_string()))
        }
    };
    let retention = store.as_ref().and_then(|s| {
        s.spawn_retention(Arc::new(runtime::unix_ms_now))
            .map_err(|e| tracing::error!("treatment-log retention not started: {e}"))
            .ok()
    });
    let parts = Parts {
        board: Some(board),
        sim,
        store: store.map(|s| s as Arc<dyn coldsprayd::store::LogStore>),
        store_error,
    };
    let daemon = runtime::start(&config, parts).context("starting the control loop")?;
    let handle = daemon.handle.clone();
    // --check-config can only warn (saved protocols live in the treatment log); here they
    // are known: say it loudly if the pedal and arm_at_start have nothing to start.
    let default = &config.unit.default_protocol;
    if !handle.protocols().iter().any(|p| &p.name == default) {
        tracing::error!(
            "[unit] default_protocol `{default}` is neither a factory nor a saved protocol: the \
             pedal{} will start nothing until it is saved or the configuration names another",
            if config.unit.arm_at_start {
                " and arm_at_start"
            } else {
                ""
            }
        );
    }
    let on_sim = config.unit.backend == Backend::Sim;
    // Metrics first: Unit.Features lists `metrics` once /metrics serves, and is constant
    // from the moment the bus name is taken.
    let metrics = if config.metrics.enabled {
        let identity = coldsprayd::metrics::UnitIdentity::from(&config.unit);
        match coldsprayd::metrics::start_for_unit(handle.clone(), &config.metrics, identity).await {
            Ok(server) => {
                tracing::info!("metrics on http://{}/metrics", server.local_addr());
                Some(server)
            }
            // A second simulated unit on a laptop finds the port taken: run without metrics.
            Err(e) if on_sim => {
                tracing::warn!("no metrics endpoint ({e}); running without it");
                None
            }
            Err(e) => {
                let _ = daemon.stop().await;
                return Err(e).context("starting the metrics endpoint");
            }
        }
    } else {
        None
    };
    let dbus = match coldsprayd::dbus::start(handle.clone(), &config.dbus, on_sim).await {
        Ok(server) => server,
        // On a developer laptop without a session bus the simulated unit still runs (live
        // view, demo, metrics); a configured bus, or the real unit, must have its API.
        Err(e)
            if on_sim
                && config.dbus.bus == coldsprayd::dbus::BusChoice::Auto
                && config.dbus.address.is_none() =>
        {
            tracing::warn!("no D-Bus API on this machine ({e}); running without it");
            None
        }
        Err(e) => {
            let _ = daemon.stop().await;
            return Err(e).context("starting the D-Bus API");
        }
    };
    Notifier::from_env().ready(&runtime::status_line(&handle.snapshot()));
    tracing::info!(
        "coldsprayd {} running on the {} backend",
        env!("CARGO_PKG_VERSION"),
        handle.info.backend
    );

    if cli.demo {
        use coldsprayd::demo::{self, SimPace, Speeds};
        let h = handle.clone();
        let speeds = Speeds::for_configured(config.sim.speed);
        match (handle.sim.as_ref(), daemon.sim_speed.clone()) {
            (Some(sim), Some(speed)) => {
                let pace = SimPace {
                    clock: sim.clock(),
                    speed,
                };
                tokio::spawn(async move {
                    if let Err(e) = demo::run(h, &pace, speeds).await {
                        tracing::error!(target: "coldspray::demo", "demo stopped: {e}");
                    }
                });
            }
            _ => {
                tracing::error!(target: "coldspray::demo", "demo not started: {}", demo::DemoError::NotSimulated)
            }
        }
    }
    if cli.view {
        let h = handle.clone();
        tokio::spawn(async move {
            let tty = std::io::stdout().is_terminal();
            loop {
                let text = coldsprayd::view::render(&h.snapshot());
                if tty {
                    print!("\x1b[2J\x1b[H{text}");
                } else {
                    println!("{text}");
                }
                tokio::time::sleep(Duration::from_millis(if tty { 250 } else { 1000 })).await;
            }
        });
    }

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // The snapshot channel closes when the control loop ends on its own (a panic).
    let mut snapshots = handle.watch();
    let loop_ended = async move { while snapshots.changed().await.is_ok() {} };
    let reason = tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted (SIGINT)",
        _ = term.recv() => "SIGTERM (systemctl stop/restart or package upgrade)",
        _ = loop_ended => {
            tracing::error!("the control loop ended: stopping");
            "the control loop ended"
        }
    };
    tracing::info!("stopping: {reason}");
    // The control loop first: it closes a running session as `shutdown`, drives every output
    // off and flushes the record to the treatment log; the journal thread then broadcasts
    // SessionEnded and the change to `stopping`. Only after that does the D-Bus service drain
    // those signals and leave the bus, so the kiosk hears how the session ended.
    let stopped = daemon.stop_because(reason).await;
    if let Some(server) = dbus {
        server.shutdown().await;
    }
    if let Some(server) = metrics {
        server.shutdown().await;
    }
    stopped.context("control loop")?;
    if let Some(r) = retention {
        r.stop();
    }
    tracing::info!("stopped; every output off");
    Ok(())
}

/// The `ExecStopPost=` helper: every output line off, whatever state the daemon left and
/// whatever the configuration file holds. Says what it did, line by line, and exits
/// non-zero naming each line it could not drive; never exits 78.
fn safe_off(cli: &Cli) -> ExitCode {
    use coldsprayd::safe_off::{read, BackendGuess};
    let found = read(&cli.config);
    for note in &found.notes {
        tracing::warn!("safe-off: configuration: {note}");
    }
    let backend = if cli.sim || cli.demo {
        BackendGuess::Sim
    } else {
        found.backend
    };
    if backend == BackendGuess::Sim {
        tracing::info!("safe-off: simulated unit, no output lines to drive");
        println!("coldsprayd --safe-off: simulated unit, no output lines to drive");
        return ExitCode::SUCCESS;
    }
    let report = coldspray_hal::linux::safe_off::force_safe_plan(&found.plan);
    for line in report.successes() {
        tracing::info!("safe-off: {line}");
    }
    let no_chip = report.chips_found == 0
        && report
            .outputs
            .iter()
            .all(|o| matches!(o.result, Err(coldspray_hal::linux::LinuxError::NoGpioChips)));
    if backend == BackendGuess::Unknown && no_chip {
        tracing::warn!(
            "safe-off: backend unknown (configuration unreadable) and no GPIO chip on this \
             machine: no output line exists to drive"
        );
        println!("coldsprayd --safe-off: no GPIO chip on this machine, no output line to drive");
        return ExitCode::SUCCESS;
    }
    let failures = report.failures();
    if failures.is_empty() {
        tracing::info!("safe-off: every output line driven off");
        println!("coldsprayd --safe-off: every output line driven off");
        return ExitCode::SUCCESS;
    }
    for f in &failures {
        tracing::error!("safe-off FAILED: {f}");
    }
    let not_driven: Vec<String> = report
        .outputs
        .iter()
        .filter(|o| o.result.is_err())
        .map(|o| o.output.to_string())
        .collect();
    eprintln!(
        "coldsprayd --safe-off: {} of {} output lines driven off; NOT driven off: [{}]; {} problem(s) logged",
        report.outputs.len() - not_driven.len(),
        report.outputs.len(),
        not_driven.join(", "),
        failures.len()
    );
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    // Before the configuration is checked: safe-off must work whatever the file holds.
    if cli.safe_off {
        return safe_off(&cli);
    }
    let config = match load_config(&cli) {
        Ok((config, warnings)) => {
            for w in &warnings {
                if cli.check_config {
                    println!("warning: {w}");
                } else {
                    tracing::warn!("configuration: {w}");
                }
            }
            config
        }
        Err(e) => {
            // One line for the journal (stderr goes there under systemd), saying what it means.
            eprintln!(
                "coldsprayd: configuration error: {e} (not starting, exit {EXIT_CONFIG}: \
                 fix the file, then `systemctl reset-failed coldsprayd` and start it; the \
                 outputs stay off)"
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if cli.check_config {
        println!("{}: configuration OK", cli.config.display());
        return ExitCode::SUCCESS;
    }
    // The D-Bus service runs on the main thread alone: the control loop, the sensors, the
    // journal, the watchdog and /metrics have threads of their own, so no worker threads are
    // needed (ARCHITECTURE.md, "Threads"); a treatment-log query runs on a blocking thread
    // that exists only while it runs.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("coldsprayd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("coldsprayd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
