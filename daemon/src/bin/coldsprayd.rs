//! `coldsprayd`: the ColdSpray control daemon.

use anyhow::Context;
use clap::Parser;
use coldspray_hal::sim::SimUnit;
use coldsprayd::config::{Backend, Config, DEFAULT_CONFIG_PATH};
use coldsprayd::runtime::{self, notify::Notifier, Parts};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
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
}

fn load_config(cli: &Cli) -> Result<Config, coldsprayd::config::ConfigError> {
    let explicit = cli.config.as_os_str() != DEFAULT_CONFIG_PATH;
    let mut config = if explicit || cli.config.exists() {
        Config::load(&cli.config)?
    } else {
        Config::default()
    };
    if cli.sim || cli.demo {
        config.unit.backend = Backend::Sim;
    }
    if let Some(speed) = cli.speed {
        let text = format!("[sim]\nspeed = {speed}\n");
        Config::parse(&text, "--speed")?;
        config.sim.speed = speed;
    }
    Ok(config)
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
            let sim = SimUnit::new(config.sim.twin());
            Ok((sim.board(), Some(sim)))
        }
        Backend::Linux => anyhow::bail!("the Linux backend is not built into this binary yet"),
    }
}

async fn serve(config: Config, cli: Cli) -> anyhow::Result<()> {
    let (board, sim) = open_board(&config)?;
    let parts = Parts {
        board: Some(board),
        sim,
        store: None,
        store_error: Some("no treatment log in this build".into()),
    };
    let daemon = runtime::start(&config, parts).context("starting the control loop")?;
    let handle = daemon.handle.clone();
    Notifier::from_env().ready(&runtime::status_line(&handle.snapshot()));
    tracing::info!(
        "coldsprayd {} running on the {} backend",
        env!("CARGO_PKG_VERSION"),
        handle.info.backend
    );

    if cli.demo {
        let h = handle.clone();
        let speed = config.sim.speed;
        tokio::spawn(async move {
            if let Err(e) = coldsprayd::demo::run(h, speed).await {
                tracing::error!(target: "coldspray::demo", "demo stopped: {e}");
            }
        });
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
    let mut stopped = daemon.shutdown_signal();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: stopping"),
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = stopped.changed() => {}
    }
    daemon.stop().await.context("control loop")?;
    tracing::info!("stopped; every output off");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("coldsprayd: configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if cli.check_config {
        println!("{}: configuration OK", cli.config.display());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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
