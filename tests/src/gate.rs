//! Who may run beside whom in the one end-to-end test binary (`tests/tests/e2e.rs`).
//!
//! Every end-to-end test runs in one process, as many at a time as `cargo test` has threads.
//! Most of them share the machine happily. A few were written to have it to themselves, as
//! they did when each file was its own binary: they measure time against deadlines, hog
//! every core on purpose (`rel_starve`), drive 1,000 D-Bus calls a second (`rel_load`), watch
//! a daemon's memory and descriptors stay flat (`rel_soak`) or SIGKILL processes at random
//! points (`rel_kill`, `store_crash`).
//!
//! So every test first takes a ticket and holds it to its end: [`shared`] for a test that may
//! run beside other shared tests, [`alone`] for one that must run with no other test at all.
//! A test that panics holding a ticket blocks nobody: the next test still gets its own.
//! Take exactly one ticket per test (a second one on the same thread can deadlock), and keep
//! it in a named binding: `let _ticket = gate::shared();` (`let _ = ...` drops it at once).
//! An async test holds its ticket across `.await` on purpose: the gate guards no data, only
//! who runs, and each test has its own thread and runtime, so nothing else waits on it.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Shared tests hold it for reading, a test that runs alone holds it for writing.
static GATE: RwLock<()> = RwLock::new(());

/// The ticket of a test that may run beside other shared tests; the gate is held until it
/// is dropped.
#[must_use = "the ticket holds the gate only while it lives: `let _ticket = gate::shared();`"]
pub struct Shared {
    _held: RwLockReadGuard<'static, ()>,
}

/// The ticket of a test that runs with no other test beside it; the gate is held until it
/// is dropped.
#[must_use = "the ticket holds the gate only while it lives: `let _ticket = gate::alone();`"]
pub struct Alone {
    _held: RwLockWriteGuard<'static, ()>,
}

/// Waits until no test that runs alone holds the gate, then lets this test run beside the
/// other shared ones.
pub fn shared() -> Shared {
    Shared {
        _held: GATE.read().unwrap_or_else(|poisoned| poisoned.into_inner()),
    }
}

/// Waits until no other test holds the gate, then keeps every other test out until the
/// ticket is dropped.
pub fn alone() -> Alone {
    Alone {
        _held: GATE
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    }
}
