//! The packaging check end to end (tests/pkg/check-pkg.sh): builds the amd64 and arm64
//! `.deb`s, runs lintian on both, piuparts install/purge, and boots a Debian bookworm system
//! under QEMU with the package installed and systemd as PID 1 (tests/pkg/vm-test.sh).
//!
//! It takes minutes (release builds of two architectures, a VM under TCG), so it runs only
//! when `COLDSPRAY_PKG_TESTS=1`; otherwise it prints why it did nothing.

use std::path::Path;
use std::process::Command;

#[test]
fn package_builds_lints_installs_and_boots() {
    let _ticket = coldspray_e2e::gate::alone();
    if std::env::var("COLDSPRAY_PKG_TESTS").as_deref() != Ok("1") {
        println!("SKIP: set COLDSPRAY_PKG_TESTS=1 to build, lint, piuparts and boot the .deb");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("pkg/check-pkg.sh");
    let status = Command::new("bash")
        .arg(&script)
        .status()
        .expect("run tests/pkg/check-pkg.sh");
    assert!(status.success(), "{} failed: {status}", script.display());
}
