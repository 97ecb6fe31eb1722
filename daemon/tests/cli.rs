//! The `coldsprayd` binary's one-shot modes as systemd runs them: `--safe-off`
//! (`ExecStopPost=`) with a broken configuration, and `--check-config` (`ExecStartPre=`) on
//! things that are not a configuration file.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const OUTPUTS: [&str; 7] = [
    "pump",
    "spray_valve",
    "chiller",
    "chiller_fan",
    "buzzer",
    "lamp_ready",
    "lamp_fault",
];

/// Runs `coldsprayd ARGS --config FILE` and waits for it, but never forever: a bound that
/// only a hang reaches (the run itself takes milliseconds), after which it is killed and the
/// test fails with what it printed.
fn run(args: &[&str], config: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coldsprayd"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("COLDSPRAY_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn coldsprayd");
    let bound = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > bound {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "coldsprayd {args:?} --config {} did not return (hung):\n{}",
                config.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn any_gpio_chip() -> bool {
    std::fs::read_dir("/dev")
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("gpiochip"))
        })
        .unwrap_or(false)
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().expect("utf-8 path")).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

#[test]
fn safe_off_with_a_broken_config_tries_every_line_and_never_exits_78() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("coldspray.toml");
    // The case of the issue: the Linux unit, plus an unknown key in an unrelated section.
    std::fs::write(
        &config,
        "[unit]\nbackend = \"linux\"\n[metrics]\nlisten_adress = \"127.0.0.1:1\"\n",
    )
    .expect("write");
    let out = run(&["--safe-off"], &config);
    let all = text(&out);
    assert_ne!(
        out.status.code(),
        Some(78),
        "safe-off refused the file:\n{all}"
    );
    if !any_gpio_chip() {
        // No GPIO chip here: every line was tried, and each one it could not drive is named.
        assert_eq!(out.status.code(), Some(1), "{all}");
        for output in OUTPUTS {
            assert!(
                all.contains(&format!("safe-off FAILED: {output} NOT driven off")),
                "{output} not named:\n{all}"
            );
        }
        assert!(all.contains("no GPIO chips found"), "{all}");
    }
}

#[test]
fn safe_off_on_a_broken_sim_config_says_what_it_did() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("sim.toml");
    std::fs::write(
        &config,
        "[unit]\nbackend = \"sim\"\n[thermostat]\nsetpiont_c = 5\n[store]\nbroken = [\n",
    )
    .expect("write");
    let out = run(&["--safe-off"], &config);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("simulated unit, no output lines to drive"),
        "{all}"
    );
    assert!(
        all.contains("[store] unreadable"),
        "the problem is reported:\n{all}"
    );
}

#[test]
fn safe_off_with_an_unreadable_config_still_looks_for_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("fifo.toml");
    mkfifo(&fifo);
    for config in [fifo.as_path(), Path::new("/nonexistent/coldspray.toml")] {
        let out = run(&["--safe-off"], config);
        let all = text(&out);
        assert_ne!(out.status.code(), Some(78), "{all}");
        assert!(all.contains("backend unknown"), "{all}");
        if !any_gpio_chip() {
            // Backend unknown and no chip: no line can be on; said, and not a failure.
            assert_eq!(out.status.code(), Some(0), "{all}");
            assert!(all.contains("no output line to drive"), "{all}");
        }
    }
}

#[test]
fn check_config_on_a_fifo_returns_at_once_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("coldspray.toml");
    mkfifo(&fifo);
    let out = run(&["--check-config"], &fifo);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(78), "{all}");
    assert!(
        all.contains(&format!(
            "{}: refused: a FIFO (named pipe), not a regular file",
            fifo.display()
        )),
        "{all}"
    );
    let out = run(&["--check-config"], Path::new("/dev/zero"));
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(text(&out).contains("a character device"), "{}", text(&out));
}

#[test]
fn check_config_prints_warnings_and_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("coldspray.toml");
    std::fs::write(
        &config,
        "[unit]\nbackend = \"sim\"\ndefault_protocol = \"my_own\"\narm_at_start = true\n\
         [metrics]\nlisten = \"0.0.0.0:12653\"\n",
    )
    .expect("write");
    let out = run(&["--check-config"], &config);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    let file = config.display();
    assert!(
        stdout.contains(&format!("warning: {file}:3:1: key `unit.default_protocol`")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("warning: {file}:6:1: key `metrics.listen`")),
        "{stdout}"
    );
    assert!(stdout.contains("configuration OK"), "{stdout}");
}

#[test]
fn a_default_protocol_that_exists_nowhere_is_logged_at_start() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("coldspray.toml");
    std::fs::write(
        &config,
        format!(
            "[unit]\nbackend = \"sim\"\nstate_dir = \"{}\"\ndefault_protocol = \"my_own\"\n\
             arm_at_start = true\n[dbus]\nbus = \"none\"\n[metrics]\nenabled = false\n",
            dir.path().join("state").display()
        ),
    )
    .expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_coldsprayd"))
        .arg("--config")
        .arg(&config)
        .env("COLDSPRAY_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn coldsprayd");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    // Read until the daemon says it runs (the check comes before that line) or exits.
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("read stderr");
        let running = line.contains("running on the");
        seen.push(line);
        if running {
            break;
        }
    }
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let all = seen.join("\n");
    assert!(
        all.contains("default_protocol `my_own` is neither a factory nor a saved protocol")
            && all.contains("arm_at_start will start nothing"),
        "{all}"
    );
}
