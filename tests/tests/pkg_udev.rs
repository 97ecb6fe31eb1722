//! The udev rules the package ships: the broad rule (every GPIO chip to `gpio`, every I2C
//! adapter to `i2c`) and the narrower example (only the unit's own controller to
//! `coldspray-hw`, shipped under the documentation, not enabled). A syntax check of every
//! rule line (keys, operators, quoting, modes), the narrowing the example promises, and
//! `udevadm verify` on both files where the installed udev has it (systemd ≥ 255).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

const BROAD: &str = "packaging/debian/coldspray.udev";
const NARROW: &str = "packaging/debian/coldspray-narrow.udev.example";

/// One `KEY{attr}OP"value"` of a rule.
#[derive(Debug)]
struct Token {
    key: String,
    attr: Option<String>,
    op: String,
    value: String,
}

const MATCH_KEYS: [&str; 9] = [
    "ACTION",
    "SUBSYSTEM",
    "SUBSYSTEMS",
    "KERNEL",
    "KERNELS",
    "DRIVER",
    "DRIVERS",
    "ATTR",
    "ATTRS",
];
const ASSIGN_KEYS: [&str; 3] = ["GROUP", "MODE", "OWNER"];

/// Parses one rule line strictly; `Err` says what is wrong.
fn parse_rule(line: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let key_end = rest
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .ok_or("a key without operator")?;
        let key = rest[..key_end].to_string();
        rest = &rest[key_end..];
        let mut attr = None;
        if let Some(r) = rest.strip_prefix('{') {
            let close = r.find('}').ok_or("unclosed {")?;
            attr = Some(r[..close].to_string());
            rest = &r[close + 1..];
        }
        let op = ["==", "!=", ":=", "+=", "-=", "="]
            .into_iter()
            .find(|op| rest.starts_with(op))
            .ok_or_else(|| format!("no operator after {key}"))?;
        rest = rest[op.len()..]
            .strip_prefix('"')
            .ok_or_else(|| format!("{key}: value not quoted"))?;
        let close = rest
            .find('"')
            .ok_or_else(|| format!("{key}: unclosed quote"))?;
        let value = rest[..close].to_string();
        rest = rest[close + 1..].trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
            if rest.is_empty() {
                return Err("trailing comma".into());
            }
        } else if !rest.is_empty() {
            return Err(format!("junk after {key}: {rest}"));
        }
        let is_match = MATCH_KEYS.contains(&key.as_str());
        let is_assign = ASSIGN_KEYS.contains(&key.as_str());
        if !is_match && !is_assign {
            return Err(format!("unexpected key {key}"));
        }
        if is_match != (op == "==" || op == "!=") {
            return Err(format!(
                "{key}{op}: wrong operator for a {}",
                if is_match { "match" } else { "assignment" }
            ));
        }
        if (attr.is_some()) != (key == "ATTR" || key == "ATTRS") {
            return Err(format!("{key}: attribute braces misplaced"));
        }
        if key == "MODE" && !(value.len() == 4 && value.chars().all(|c| ('0'..='7').contains(&c))) {
            return Err(format!("MODE {value:?} is not a 4-digit octal mode"));
        }
        tokens.push(Token {
            key,
            attr,
            op: op.to_string(),
            value,
        });
    }
    if !tokens.iter().any(|t| t.op == "==")
        || !tokens
            .iter()
            .any(|t| t.op.ends_with('=') && t.op != "==" && t.op != "!=")
    {
        return Err("a rule needs a match and an assignment".into());
    }
    Ok(tokens)
}

fn rules(file: &str) -> Vec<(usize, Vec<Token>)> {
    let text = std::fs::read_to_string(repo().join(file)).expect("read the rules");
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            let tokens = parse_rule(l).unwrap_or_else(|e| panic!("{file}:{}: {e}\n{l}", i + 1));
            (i + 1, tokens)
        })
        .collect()
}

fn get<'a>(tokens: &'a [Token], key: &str) -> Option<&'a Token> {
    tokens.iter().find(|t| t.key == key)
}

#[test]
fn the_syntax_check_catches_broken_rules() {
    let _ticket = coldspray_e2e::gate::shared();
    for bad in [
        "SUBSYSTEM==\"gpio\" GROUP=\"gpio\"",
        "SUBSYSTEM=\"gpio\", GROUP=\"gpio\"",
        "SUBSYSTEM==\"gpio\", GROUP==\"gpio\"",
        "SUBSYSTEM==\"gpio\", MODE=\"660\"",
        "SUBSYSTEM==\"gpio\", GROUP=\"gpio",
        "SUBSYSTEM==gpio, GROUP=\"gpio\"",
        "SUBSYSTEM==\"gpio\", GRUOP=\"gpio\"",
        "SUBSYSTEM==\"gpio\",",
        "GROUP=\"gpio\"",
    ] {
        assert!(parse_rule(bad).is_err(), "accepted: {bad}");
    }
    assert!(parse_rule(
        "SUBSYSTEM==\"i2c-dev\", ATTR{name}==\"x (y)\", GROUP:=\"g\", MODE:=\"0660\""
    )
    .is_ok());
}

#[test]
fn the_broad_rule_gives_every_chip_and_adapter_to_the_shared_groups() {
    let _ticket = coldspray_e2e::gate::shared();
    let rules = rules(BROAD);
    for (subsystem, group) in [("gpio", "gpio"), ("i2c-dev", "i2c")] {
        let (_, r) = rules
            .iter()
            .find(|(_, r)| get(r, "SUBSYSTEM").is_some_and(|t| t.value == subsystem))
            .unwrap_or_else(|| panic!("no {subsystem} rule"));
        assert_eq!(get(r, "GROUP").map(|t| t.value.as_str()), Some(group));
        assert_eq!(get(r, "MODE").map(|t| t.value.as_str()), Some("0660"));
    }
}

#[test]
fn the_narrow_example_gives_only_the_units_controllers_to_its_own_group() {
    let _ticket = coldspray_e2e::gate::shared();
    let rules = rules(NARROW);
    let mut granted = [0, 0];
    for (line, r) in &rules {
        let subsystem = get(r, "SUBSYSTEM").map(|t| t.value.as_str());
        let group = get(r, "GROUP").expect("every rule sets a group");
        assert!(
            group.value == "root" || group.value == "coldspray-hw",
            "line {line}: group {} (the shared gpio/i2c groups are what this example avoids)",
            group.value
        );
        if group.value == "root" {
            assert_eq!(
                get(r, "MODE").map(|t| t.value.as_str()),
                Some("0600"),
                "line {line}"
            );
            continue;
        }
        // A grant names the one controller, and is final (`:=`) so no later rule widens it.
        assert!(
            r.iter().any(
                |t| matches!(t.key.as_str(), "DRIVERS" | "KERNELS" | "ATTR" | "ATTRS")
                    && t.op == "=="
            ),
            "line {line}: a grant without a controller match"
        );
        assert_eq!(group.op, ":=", "line {line}");
        assert_eq!(
            get(r, "MODE").map(|t| (t.op.as_str(), t.value.as_str())),
            Some((":=", "0660"))
        );
        match subsystem {
            Some("gpio") => granted[0] += 1,
            Some("i2c-dev") => granted[1] += 1,
            other => panic!("line {line}: subsystem {other:?}"),
        }
        if let Some(t) = get(r, "ATTR") {
            // i2c-dev devices carry the adapter's name; nothing else is matched by attribute.
            assert_eq!(t.attr.as_deref(), Some("name"), "line {line}");
        }
    }
    assert!(
        granted[0] > 0 && granted[1] > 0,
        "grants gpio/i2c: {granted:?}"
    );
    // Shipped as documentation, never as an active rule.
    let cargo = std::fs::read_to_string(repo().join("daemon/Cargo.toml")).expect("Cargo.toml");
    let asset = cargo
        .lines()
        .find(|l| l.contains("coldspray-narrow.udev.example"))
        .expect("the example is packaged");
    assert!(
        asset.contains("\"usr/share/doc/coldspray/examples/"),
        "{asset}"
    );
}

#[test]
fn udevadm_verify_accepts_both_files() {
    let _ticket = coldspray_e2e::gate::shared();
    let verify = Command::new("udevadm").args(["verify", "--help"]).output();
    if !verify.is_ok_and(|o| o.status.success()) {
        eprintln!("no `udevadm verify` here (systemd < 255 or no udev): syntax checked above only");
        return;
    }
    for file in [BROAD, NARROW] {
        let out = Command::new("udevadm")
            .args(["verify", "--no-style"])
            .arg(repo().join(file))
            .output()
            .expect("run udevadm");
        assert!(
            out.status.success(),
            "{file}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
