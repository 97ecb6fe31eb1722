//! The unit's vocabulary, shared by the controller, the safety layer, the runtime, the
//! treatment log and the API: what an alarm is, what a session records, the unit's states and
//! a sensor sample. No behaviour lives here.

pub mod alarm;
pub mod alarm_text;
pub mod sensing;
pub mod session;
pub mod state;
