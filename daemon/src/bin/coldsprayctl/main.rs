//! `coldsprayctl`: the operator and technician command line of the ColdSpray unit, over
//! D-Bus (`org.coldspray.ColdSpray1`).
//!
//! Exit codes: 0 done; 1 refused by the daemon (the D-Bus error's short name and message are
//! printed, e.g. `NotReady: not ready: the unit is precooling`); 2 usage error; 3 cannot
//! reach the daemon (no bus, service not running, no reply); 4 access denied (bus policy or
//! the daemon); 5 any other failure (unexpected reply).
//!
//! Modules: [`cli`] parses the command line, [`commands`] runs a command through the typed
//! proxies of `coldsprayd::dbus::proxy`, [`render`] writes the text and [`json`] the JSON
//! output, [`report`] draws a session to a file, [`failure`] turns errors into exit codes.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod failure;
mod json;
mod render;
mod report;

use clap::Parser;
use cli::Cli;
use commands::Ctl;
use failure::{classify, Failure, EXIT_OTHER, EXIT_UNREACHABLE};
use std::process::ExitCode;
use std::time::Duration;

/// Connects to the bus the options name, waiting at most the reply timeout.
async fn connect(cli: &Cli) -> Result<zbus::Connection, Failure> {
    let timeout = Duration::from_secs_f64(cli.timeout.clamp(0.1, 3600.0));
    let builder = match (&cli.address, cli.session) {
        (Some(a), _) => zbus::connection::Builder::address(a.as_str()),
        (None, true) => zbus::connection::Builder::session(),
        (None, false) => zbus::connection::Builder::system(),
    }
    .map_err(classify)?;
    match tokio::time::timeout(timeout, builder.method_timeout(timeout).build()).await {
        Ok(r) => r.map_err(|e| Failure {
            code: EXIT_UNREACHABLE,
            message: format!("cannot connect to the bus: {e}"),
        }),
        Err(_) => Err(Failure {
            code: EXIT_UNREACHABLE,
            message: "timed out connecting to the bus".into(),
        }),
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let ctl = Ctl {
        conn: connect(&cli).await?,
        json: cli.json,
    };
    ctl.run(cli.command).await
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
