//! The rules of this test binary, checked: every file of `tests/tests/` is a module of it
//! (cargo builds no other end-to-end binary, so a file left out would silently never run),
//! every test takes a ticket from [`coldspray_e2e::gate`], and the gate keeps the tests that
//! run alone apart from the others.

use coldspray_e2e::gate;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn test_dir() -> PathBuf {
    coldspray_e2e::repo_root().join("tests/tests")
}

/// The module files of the binary: every `.rs` of `tests/tests/` but its root, `e2e.rs`.
fn module_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(test_dir())
        .expect("read tests/tests")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .filter_map(|path| {
            let stem = path.file_stem()?.to_string_lossy().into_owned();
            (stem != "e2e").then(|| {
                let text = std::fs::read_to_string(&path).expect("read a test file");
                (stem, text)
            })
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_test_file_is_a_module_of_the_binary() {
    let _ticket = gate::shared();
    let root = std::fs::read_to_string(test_dir().join("e2e.rs")).expect("read e2e.rs");
    let declared: Vec<&str> = root
        .lines()
        .filter_map(|l| l.strip_prefix("mod ")?.strip_suffix(';'))
        .collect();
    let files = module_files();
    assert!(files.len() >= 20, "only {} test files found", files.len());
    for (name, _) in &files {
        assert!(
            declared.contains(&name.as_str()),
            "tests/tests/{name}.rs is not a module of tests/tests/e2e.rs: add `mod {name};` \
             there, or it never runs"
        );
    }
}

#[test]
fn every_test_takes_a_ticket() {
    let _ticket = gate::shared();
    let mut missing = Vec::new();
    for (name, text) in module_files() {
        let lines: Vec<&str> = text.lines().collect();
        let is_test = |l: &str| {
            let l = l.trim_start();
            l.starts_with("#[test]") || l.starts_with("#[tokio::test")
        };
        let starts: Vec<usize> = (0..lines.len()).filter(|&i| is_test(lines[i])).collect();
        for (k, &start) in starts.iter().enumerate() {
            let end = starts.get(k + 1).copied().unwrap_or(lines.len());
            let body = lines[start..end].join("\n");
            if !body.contains("gate::shared()") && !body.contains("gate::alone()") {
                let f = lines[start..end]
                    .iter()
                    .find(|l| l.contains("fn "))
                    .map_or("?", |l| l.trim());
                missing.push(format!("{name}: {f}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "tests without a ticket (`let _ticket = coldspray_e2e::gate::shared();` or \
         `alone()` first): {missing:#?}"
    );
}

#[test]
fn a_test_that_runs_alone_waits_for_the_shared_ones_and_keeps_them_out() {
    let ticket = gate::shared();
    let inside = Arc::new(AtomicBool::new(false));
    let lone = {
        let inside = Arc::clone(&inside);
        std::thread::spawn(move || {
            let _ticket = gate::alone();
            inside.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(100));
            inside.store(false, Ordering::SeqCst);
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        !inside.load(Ordering::SeqCst),
        "ran alone beside a shared test"
    );
    drop(ticket);
    while !inside.load(Ordering::SeqCst) && !lone.is_finished() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ticket = gate::shared();
    assert!(
        !inside.load(Ordering::SeqCst),
        "a shared test got in while another test ran alone"
    );
    lone.join().expect("the test that ran alone");
}

#[test]
fn a_test_that_panics_holding_a_ticket_blocks_nobody() {
    let crashed = std::thread::spawn(|| {
        let _ticket = gate::alone();
        panic!("a failing test, on purpose");
    });
    assert!(crashed.join().is_err());
    let _ticket = gate::alone();
}
