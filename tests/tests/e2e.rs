//! The end-to-end tests, one test binary (`cargo test -p coldspray-e2e --test e2e`): each file
//! of this folder is one module, so zbus, tokio and hyper are linked once, not once per file.
//! Run one file's tests by its module name: `cargo test -p coldspray-e2e --test e2e rel_load::`.
//!
//! Every test takes a ticket from [`coldspray_e2e::gate`] first: the tests that measure time,
//! hog the CPU or kill processes run alone, the others side by side. `suite` checks that
//! every file here is a module below and that every test takes its ticket.

mod dbus_api;
mod dbus_changes;
mod dbus_e2e;
mod dbus_gaps;
mod dbus_policy;
mod metrics_fleet;
mod metrics_grafana;
mod metrics_load;
mod metrics_prometheus;
mod metrics_rules;
mod metrics_scrape;
mod pkg_udev;
mod pkg_unit;
mod pkg_vm;
mod rel_faults;
mod rel_fuzz;
mod rel_fuzz_store;
mod rel_kill;
mod rel_load;
mod rel_soak;
mod rel_starve;
mod service_stop;
mod settings_file;
mod store_crash;
mod store_damage;
mod store_full;
mod suite;
