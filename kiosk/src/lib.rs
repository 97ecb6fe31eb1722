//! The ColdSpray kiosk: the unit's touchscreen face, a client of `coldsprayd` over D-Bus only.
//!
//! * [`client`]: the D-Bus adapter (typed proxies of `coldsprayd::dbus::proxy`);
//! * [`model`]: pure functions from the D-Bus data to what the screens show;
//! * [`app`]: the kiosk's state and messages (`update` is pure and asks for requests);
//! * [`view`]: the screens;
//! * [`alarm_text`]: what to do for each alarm, from `docs/ALARMS.md`;
//! * [`role`]: what the caller may do, so forbidden actions are shown disabled with a reason.

pub mod alarm_text;
pub mod app;
pub mod client;
pub mod model;
pub mod role;
pub mod view;
