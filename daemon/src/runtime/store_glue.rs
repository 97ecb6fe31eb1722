//! How the runtime uses the sled treatment log: [`StateStore`] and [`Persistence`] for
//! [`SledStore`].

use super::journal::Persistence;
use super::{LogSettings, StateStore};
use crate::api::{Counters, Event};
use crate::protocol::Protocol;
use crate::store::{LogStore, Settings, SledStore};
use coldspray_hal::Sensor;
use std::sync::Arc;

impl Persistence for SledStore {
    fn record(&self, event: &Event) -> Result<(), String> {
        LogStore::record(self, event).map_err(|e| e.to_string())
    }

    fn save_counters(&self, counters: &Counters) -> Result<(), String> {
        SledStore::save_counters(self, counters).map_err(|e| e.to_string())
    }

    fn save_protocols(&self, protocols: &[Protocol]) -> Result<(), String> {
        SledStore::save_protocols(self, protocols).map_err(|e| e.to_string())
    }

    fn save_settings(&self, setpoint_c: f64, calibration: [f64; 5]) -> Result<(), String> {
        // Only the settings job writes this copy, after the settings file: from now on a
        // missing file is a loss (see `runtime::settings`).
        let mut settings = Settings {
            setpoint_c,
            in_file: true,
            ..Settings::default()
        };
        for s in Sensor::ALL {
            settings.set_offset(s, calibration[s.index()]);
        }
        SledStore::save_settings(self, &settings).map_err(|e| e.to_string())
    }

    fn flush(&self) -> Result<(), String> {
        SledStore::flush(self).map_err(|e| e.to_string())
    }

    fn recover(&self) -> Result<(), String> {
        self.reopen().map_err(|e| e.to_string())?;
        self.prove_writable().map_err(|e| e.to_string())
    }
}

/// A saved value that cannot be read falls back to its default, loudly.
fn or_warn<T>(what: &str, r: Result<Option<T>, crate::store::StoreError>) -> Option<T> {
    r.unwrap_or_else(|e| {
        tracing::warn!("treatment log: saved {what} unreadable, using defaults: {e}");
        None
    })
}

impl StateStore for SledStore {
    fn close_open_sessions(&self, now_unix_ms: i64) -> Result<Vec<u64>, String> {
        SledStore::close_open_sessions(self, now_unix_ms).map_err(|e| e.to_string())
    }

    fn load_counters(&self) -> Option<Counters> {
        or_warn("counters", SledStore::load_counters(self))
    }

    fn load_protocols(&self) -> Option<Vec<Protocol>> {
        or_warn("protocols", SledStore::load_protocols(self))
    }

    fn load_settings(&self) -> Option<LogSettings> {
        or_warn("settings", SledStore::load_settings(self)).map(|s| {
            let mut calibration = [0.0; 5];
            for sensor in Sensor::ALL {
                calibration[sensor.index()] = s.offset(sensor);
            }
            LogSettings {
                setpoint_c: s.setpoint_c,
                calibration,
                in_file: s.in_file,
            }
        })
    }

    fn next_session_id(&self) -> u64 {
        SledStore::next_session_id(self).unwrap_or_else(|e| {
            tracing::warn!("treatment log: next session id unreadable: {e}");
            1
        })
    }

    fn lost_at_open(&self) -> Option<String> {
        SledStore::missing_at_open(self).map(str::to_owned)
    }

    fn as_log_store(self: Arc<Self>) -> Arc<dyn LogStore> {
        self
    }
}
