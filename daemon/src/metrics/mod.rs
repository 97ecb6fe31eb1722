//! Prometheus metrics for Clinic IT (issue 5): an HTTP endpoint serving `/metrics` in the
//! Prometheus text format and a small landing page at `/`.
//!
//! Two sources feed it:
//! - **scrape time**: the latest [`crate::api::Snapshot`] (an `Arc` the control loop already
//!   published: temperatures, state, outputs, alarms, counters), the static unit facts, the
//!   shared [`crate::telemetry::Telemetry`] counters and the log store's size;
//! - **events**: a background task subscribed to [`ControlHandle::events`] counts sessions,
//!   interlock trips and alarms and fills the delay/duration histograms.
//!
//! Neither can slow the control loop: the loop never waits for this module (snapshots are
//! published through a watch channel, events through a broadcast channel that drops events for
//! a lagging reader); the server, the event task and rendering run on a thread of their own
//! with its own single-threaded runtime at a lowered priority (nice 10), so they never occupy
//! the control loop's executor nor take CPU it needs; a scrape reads a cloned `Arc<Snapshot>`;
//! each HTTP connection has a header-read timeout and a lifetime limit; a new connection is
//! always accepted at once, and beyond 64 open ones the oldest is closed, so idle or hung
//! clients can neither hold a socket forever nor make a new scrape wait.
//!
//! **Port**: the default listen address is `127.0.0.1:12653`. The Prometheus project's
//! default-port-allocations list gives exporters 9100–9999, and that range has been fully
//! allocated since 2023, so every port in it belongs to some other exporter. 12653 lies outside
//! it, below the Linux ephemeral range (32768–60999, where a listener can collide with outgoing
//! connections) and is not in Debian's `/etc/services`; it spells "1-COLD" on a phone keypad.
//! Listening on loopback by default keeps an unauthenticated endpoint off the clinic network
//! until IT chooses an address (`listen = "0.0.0.0:12653"` or the unit's LAN address).
//!
//! **Format**: the `prometheus` crate (0.14) writes only the classic text format
//! (`text/plain; version=0.0.4`); a scraper asking for OpenMetrics in `Accept` gets that
//! format, which every Prometheus server accepts as a fallback.

mod events;
mod family;
mod http;
mod identity;
#[cfg(target_os = "linux")]
mod process;
mod snapshot;
#[cfg(test)]
mod tests;

pub use http::MetricsServer;
pub use identity::{check_identity_value, UnitIdentity, MAX_IDENTITY_CHARS};

use crate::handle::ControlHandle;
use prometheus::{Encoder, TextEncoder};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

/// The default TCP port of the metrics endpoint (see the module documentation for the choice).
pub const DEFAULT_PORT: u16 = 12653;

// Outside the exporters' 9100-9999 range and below the Linux ephemeral range.
const _: () = assert!((DEFAULT_PORT < 9100 || DEFAULT_PORT > 9999) && DEFAULT_PORT < 32768);

/// Content type of `/metrics` answers.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `[metrics]` section of the daemon configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve the metrics endpoint at all. Default `true`.
    pub enabled: bool,
    /// Address and port to listen on. Default `127.0.0.1:12653` (loopback only; set the unit's
    /// LAN address or `0.0.0.0:12653` for a Prometheus server elsewhere on the network).
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listen: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
        }
    }
}

/// Why the metrics endpoint could not be started or a scrape could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The listen address could not be bound (in use, not permitted, no such address).
    #[error("cannot listen for metrics on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The `[metrics]` section says `enabled = false`.
    #[error("the metrics endpoint is disabled in the configuration")]
    Disabled,
    /// A metric could not be registered or encoded (a programming error in this module).
    #[error("metrics registry: {0}")]
    Registry(#[from] prometheus::Error),
}

/// Everything a scrape renders: the handle (snapshot, telemetry, store) and the event-fed
/// metrics. Shared by the HTTP server and its event task.
pub struct Exporter {
    handle: ControlHandle,
    identity: UnitIdentity,
    events: Arc<events::EventMetrics>,
    #[cfg(target_os = "linux")]
    process: process::ProcessMetrics,
}

impl Exporter {
    /// Builds an exporter for `handle`, with every event-fed series at zero. Call
    /// [`Exporter::observe`] for each event (the server's task does so).
    pub fn new(handle: ControlHandle) -> Result<Exporter, MetricsError> {
        Exporter::for_unit(handle, UnitIdentity::default())
    }

    /// Like [`Exporter::new`], for a unit with this identity (`coldspray_unit_info`).
    pub fn for_unit(
        handle: ControlHandle,
        identity: UnitIdentity,
    ) -> Result<Exporter, MetricsError> {
        Ok(Exporter {
            handle,
            identity,
            events: Arc::new(events::EventMetrics::new()?),
            #[cfg(target_os = "linux")]
            process: process::ProcessMetrics::for_self(),
        })
    }

    /// Updates the event-fed metrics for one event.
    pub fn observe(&self, event: &crate::api::Event) {
        self.events.observe(event);
    }

    /// Renders every metric in the Prometheus text format. May do blocking I/O (process
    /// statistics, log store size): keep it off the control loop's executor.
    pub fn render(&self) -> Result<String, MetricsError> {
        let mut families = self.events.registry.gather();
        self.events.collect(&mut families);
        identity::collect(&self.identity, &self.handle.info.version, &mut families);
        snapshot::collect(&self.handle, &mut families);
        #[cfg(target_os = "linux")]
        self.process.collect(&mut families);
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut buf = Vec::with_capacity(16 * 1024);
        TextEncoder::new().encode(&families, &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// Renders `handle`'s scrape-time metrics plus every event-fed series at zero: what a freshly
/// started daemon serves. Used by tests and tools that need the exported metric names.
pub fn render(handle: &ControlHandle) -> Result<String, MetricsError> {
    Exporter::new(handle.clone())?.render()
}

/// Binds `config.listen`, then serves `/metrics` and `/` and feeds the event metrics in
/// background tasks until [`MetricsServer::shutdown`]. Returns once the socket is bound.
pub async fn start(
    handle: ControlHandle,
    config: &MetricsConfig,
) -> Result<MetricsServer, MetricsError> {
    start_for_unit(handle, config, UnitIdentity::default()).await
}

/// Like [`start`], for a unit with this identity (from `[unit]`: `UnitIdentity::from(&config.unit)`).
pub async fn start_for_unit(
    handle: ControlHandle,
    config: &MetricsConfig,
    identity: UnitIdentity,
) -> Result<MetricsServer, MetricsError> {
    if !config.enabled {
        return Err(MetricsError::Disabled);
    }
    let telemetry = handle.telemetry.clone();
    let exporter = Arc::new(Exporter::for_unit(handle, identity)?);
    let server = http::serve(exporter, config.listen).await?;
    telemetry
        .metrics_serving
        .store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(server)
}

#[cfg(test)]
mod config_tests {
    use super::*;

    #[test]
    fn config_defaults_and_parses_from_toml() {
        let empty: MetricsConfig = toml::from_str("").unwrap();
        assert_eq!(empty, MetricsConfig::default());
        assert!(empty.enabled);
        assert_eq!(empty.listen.to_string(), "127.0.0.1:12653");
        let set: MetricsConfig =
            toml::from_str("enabled = false\nlisten = \"[::1]:9999\"").unwrap();
        assert!(!set.enabled);
        assert_eq!(set.listen.port(), 9999);
        assert!(toml::from_str::<MetricsConfig>("port = 1").is_err());
        assert!(toml::from_str::<MetricsConfig>("listen = \"nowhere\"").is_err());
    }
}
