//! What `coldsprayd --safe-off` (the unit's `ExecStopPost=` helper) reads of the
//! configuration file: only `[unit] backend` and the output lines of `[hardware]`, leniently.
//!
//! The helper runs after any exit of the daemon, including a crash after the file was edited
//! with a mistake. It must still drive every output line off, so nothing here fails:
//!
//! * a file that parses is read as is; one that does not is read table by table (`[unit]`,
//!   `[hardware]`, `[hardware.lines.pump]`, …), keeping every table that parses on its own;
//! * in `[hardware]` each field is read on its own; a field of the wrong type, an unknown
//!   key in an output's entry or a lost table makes that output (or, for `[hardware] chip` or
//!   a lost `[hardware]`, every output) also try the reference wiring: a line named after the
//!   signal, then the rev A offset on the Raspberry Pi header chip;
//! * an unreadable file gives the reference wiring for every output and an unknown backend;
//! * every problem is a note naming the file and the key, for the journal.
//!
//! Keys outside `[unit] backend` and `[hardware]`'s output lines are not looked at: a mistake
//! in `[metrics]` cannot keep the pump from being switched off.

use crate::config::read_config_file;
use coldspray_hal::linux::config::{LineBias, LineConfig, PumpPwmConfig};
use coldspray_hal::linux::safe_off::{OutputPlan, SafeOffPlan};
use coldspray_hal::Output;
use std::path::Path;
use toml::{Table, Value};

/// The backend the file names, as far as it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendGuess {
    /// `"linux"`, or no `backend` key in a file that parsed (the default).
    Linux,
    /// `"sim"`: no output lines exist.
    Sim,
    /// Unreadable: the caller tries the Linux lines if any GPIO chip exists.
    Unknown,
}

/// The lenient reading of a configuration file for safe-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeOffConfig {
    /// The backend.
    pub backend: BackendGuess,
    /// Where to look for each output.
    pub plan: SafeOffPlan,
    /// Every problem found, each naming the file and the key (empty for a good file).
    pub notes: Vec<String>,
}

/// Reads `path` leniently (see the module documentation). Never fails.
pub fn read(path: &Path) -> SafeOffConfig {
    match read_config_file(path) {
        Ok(text) => parse(&text, &path.display().to_string()),
        Err(e) => SafeOffConfig {
            backend: BackendGuess::Unknown,
            plan: SafeOffPlan::reference("configuration file unreadable"),
            notes: vec![format!(
                "{e}; backend unknown, using the reference wiring for every output"
            )],
        },
    }
}

/// Parses TOML text leniently; `file` names it in the notes.
pub fn parse(text: &str, file: &str) -> SafeOffConfig {
    let mut notes = Vec::new();
    let (table, lost) = match toml::from_str::<Table>(text) {
        Ok(t) => (t, Vec::new()),
        Err(e) => {
            notes.push(format!(
                "{file}: not valid TOML ({}); reading it table by table",
                e.message().trim()
            ));
            table_by_table(text, file, &mut notes)
        }
    };
    let lost_any = |prefix: &str| {
        lost.iter()
            .any(|h: &String| h.is_empty() || h == prefix || h.starts_with(&format!("{prefix}.")))
    };
    let backend = match table.get("unit").and_then(|u| u.get("backend")) {
        Some(Value::String(s)) if s == "linux" => BackendGuess::Linux,
        Some(Value::String(s)) if s == "sim" => BackendGuess::Sim,
        None if !lost_any("unit") => BackendGuess::Linux,
        None => BackendGuess::Unknown,
        Some(other) => {
            notes.push(format!(
                "{file}: key `unit.backend`: `{other}` is neither \"linux\" nor \"sim\"; backend unknown"
            ));
            BackendGuess::Unknown
        }
    };
    let plan = hardware_plan(&table, file, &lost, &mut notes);
    SafeOffConfig {
        backend,
        plan,
        notes,
    }
}

/// Parses every table of a file that is not valid TOML on its own and merges those that
/// parse. Returns the merged tables and the headers of the lost ones (`""` = the top).
fn table_by_table(text: &str, file: &str, notes: &mut Vec<String>) -> (Table, Vec<String>) {
    let mut blocks: Vec<(String, usize, String)> = vec![(String::new(), 1, String::new())];
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.starts_with('[') {
            let header = l
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            blocks.push((header, i + 1, String::new()));
        }
        if let Some((_, _, body)) = blocks.last_mut() {
            body.push_str(raw);
            body.push('\n');
        }
    }
    let mut merged = Table::new();
    let mut lost = Vec::new();
    for (header, line, body) in blocks {
        match toml::from_str::<Table>(&body) {
            Ok(t) => merge(&mut merged, t),
            Err(e) => {
                let name = if header.is_empty() {
                    "the top of the file".to_string()
                } else {
                    format!("[{header}]")
                };
                notes.push(format!(
                    "{file}:{line}: {name} unreadable ({}); ignored",
                    e.message().trim()
                ));
                lost.push(header);
            }
        }
    }
    (merged, lost)
}

fn merge(into: &mut Table, from: Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Table(a)), Value::Table(b)) => merge(a, b),
            (Some(_), _) => {}
            (None, v) => {
                into.insert(k, v);
            }
        }
    }
}

fn hardware_plan(
    table: &Table,
    file: &str,
    lost: &[String],
    notes: &mut Vec<String>,
) -> SafeOffPlan {
    let lost_exactly = |h: &str| lost.iter().any(|l| l.is_empty() || l == h);
    let mut plan = SafeOffPlan::reference("");
    for o in &mut plan.outputs {
        o.reference_fallback = false;
    }
    plan.pump_pwm = Ok(None);
    let hw = match table.get("hardware") {
        None => None,
        Some(Value::Table(t)) => Some(t),
        Some(_) => {
            notes.push(format!("{file}: key `hardware` is not a table"));
            None
        }
    };
    let mut all_fallback =
        lost_exactly("hardware") || table.get("hardware").is_some_and(|h| !h.is_table());
    let mut chip = String::new();
    if let Some(hw) = hw {
        match hw.get("chip") {
            None => {}
            Some(Value::String(s)) => chip = s.clone(),
            Some(other) => {
                notes.push(format!(
                    "{file}: key `hardware.chip`: `{other}` is not a string; searching every chip"
                ));
                all_fallback = true;
            }
        }
        match hw.get("consumer") {
            None => {}
            Some(Value::String(s)) => plan.consumer = s.clone(),
            Some(other) => notes.push(format!(
                "{file}: key `hardware.consumer`: `{other}` is not a string; using `{}`",
                plan.consumer
            )),
        }
        plan.pump_pwm = match hw.get("pump_pwm") {
            None if lost_exactly("hardware.pump_pwm") => {
                Err("its table could not be read".to_string())
            }
            None => Ok(None),
            Some(v) => v
                .clone()
                .try_into::<PumpPwmConfig>()
                .map(Some)
                .map_err(|e| {
                    let why = e.message().trim().to_string();
                    notes.push(format!("{file}: key `hardware.pump_pwm`: {why}"));
                    why
                }),
        };
    }
    if lost_exactly("hardware") && plan.pump_pwm == Ok(None) {
        plan.pump_pwm = Err("[hardware] could not be read".to_string());
    }
    let lines = hw.and_then(|hw| hw.get("lines"));
    let lines = match lines {
        None => None,
        Some(Value::Table(t)) => Some(t),
        Some(_) => {
            notes.push(format!("{file}: key `hardware.lines` is not a table"));
            all_fallback = true;
            None
        }
    };
    if lost_exactly("hardware.lines") {
        all_fallback = true;
    }
    for o in &mut plan.outputs {
        let name = o.output.name();
        let key = format!("hardware.lines.{name}");
        let (entry, entry_ok) = match lines.and_then(|l| l.get(name)) {
            None => (LineConfig::default(), !lost_exactly(&key)),
            Some(Value::Table(t)) => lenient_line(t, file, &key, notes),
            Some(other) => {
                notes.push(format!("{file}: key `{key}`: `{other}` is not a table"));
                (LineConfig::default(), false)
            }
        };
        *o = OutputPlan {
            output: o.output,
            line: entry.resolved(name, &chip),
            reference_fallback: all_fallback || !entry_ok,
        };
        if o.reference_fallback {
            let why = if all_fallback {
                "[hardware] not fully readable".to_string()
            } else {
                format!("[{key}] not fully readable")
            };
            notes.push(format!(
                "{file}: {why}: {name} also tries the reference wiring"
            ));
        }
    }
    debug_assert_eq!(plan.outputs.len(), Output::ALL.len());
    plan
}

/// Reads an output's line entry field by field: `(what could be read, all of it was good)`.
fn lenient_line(t: &Table, file: &str, key: &str, notes: &mut Vec<String>) -> (LineConfig, bool) {
    let before = notes.len();
    let bad = |field: &str, v: &Value, want: &str| {
        format!("{file}: key `{key}.{field}`: `{v}` is not {want}")
    };
    let mut line = LineConfig::default();
    for (field, v) in t {
        match field.as_str() {
            "line" => match v.as_str() {
                Some(s) => line.line = Some(s.to_owned()),
                None => notes.push(bad(field, v, "a string")),
            },
            "chip" => match v.as_str() {
                Some(s) => line.chip = Some(s.to_owned()),
                None => notes.push(bad(field, v, "a string")),
            },
            "offset" => match v.as_integer().and_then(|i| u32::try_from(i).ok()) {
                Some(n) => line.offset = Some(n),
                None => notes.push(bad(field, v, "a line offset")),
            },
            "active_low" => match v.as_bool() {
                Some(b) => line.active_low = Some(b),
                None => notes.push(bad(field, v, "true or false")),
            },
            "bias" => match v.clone().try_into::<LineBias>() {
                Ok(b) => line.bias = Some(b),
                Err(_) => notes.push(bad(field, v, "\"pull_up\", \"pull_down\" or \"disabled\"")),
            },
            // Inputs only; on an output it is a configuration error, but harmless here.
            "debounce_ms" => {}
            _ => notes.push(format!("{file}: unknown key `{key}.{field}`")),
        }
    }
    let ok = notes.len() == before;
    (line, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(c: &SafeOffConfig, output: Output) -> &OutputPlan {
        c.plan
            .outputs
            .iter()
            .find(|o| o.output == output)
            .expect("every output is planned")
    }

    const REV_A_PUMP: &str = "[unit]\nbackend = \"linux\"\n[hardware]\nchip = \"pinctrl-rp1\"\n\
        [hardware.lines.pump]\noffset = 17\n[hardware.lines.lamp_fault]\noffset = 5\nactive_low = true\n";

    #[test]
    fn a_good_file_is_read_as_configured_without_fallback() {
        let c = parse(REV_A_PUMP, "c.toml");
        assert_eq!(c.backend, BackendGuess::Linux);
        assert!(c.notes.is_empty(), "{:?}", c.notes);
        let pump = plan_of(&c, Output::Pump);
        assert_eq!(pump.line.chip, "pinctrl-rp1");
        assert_eq!(pump.line.offset, Some(17));
        assert!(!pump.reference_fallback);
        assert!(plan_of(&c, Output::LampFault).line.active_low);
        assert_eq!(c.plan.pump_pwm, Ok(None));
    }

    #[test]
    fn an_unknown_key_elsewhere_changes_nothing() {
        // The case of the issue: the strict parser refuses this file (exit 78) and the
        // outputs were never driven off.
        let text = format!("{REV_A_PUMP}[metrics]\nlisten_adress = \"127.0.0.1:1\"\n");
        assert!(crate::config::Config::parse(&text, "c.toml").is_err());
        let c = parse(&text, "c.toml");
        assert_eq!(c, parse(REV_A_PUMP, "c.toml"));
    }

    #[test]
    fn a_syntax_error_elsewhere_loses_only_its_table() {
        let text = format!("[metrics]\nlisten = 127.0.0.1:1\n{REV_A_PUMP}");
        let c = parse(&text, "c.toml");
        assert_eq!(c.backend, BackendGuess::Linux);
        assert_eq!(c.plan, parse(REV_A_PUMP, "c.toml").plan);
        assert!(
            c.notes
                .iter()
                .any(|n| n.starts_with("c.toml:1: [metrics] unreadable")),
            "{:?}",
            c.notes
        );
    }

    #[test]
    fn a_broken_line_entry_keeps_what_it_can_and_falls_back() {
        let text = "[hardware]\nchip = \"pinctrl-rp1\"\n[hardware.lines.pump]\noffset = \"17\"\n\
            active_low = true\n[hardware.lines.spray_valve]\noffest = 27\n";
        let c = parse(text, "c.toml");
        let pump = plan_of(&c, Output::Pump);
        assert!(pump.reference_fallback);
        assert_eq!(pump.line.offset, None);
        assert!(pump.line.active_low, "a readable polarity is kept");
        let valve = plan_of(&c, Output::SprayValve);
        assert!(valve.reference_fallback);
        assert!(c
            .notes
            .iter()
            .any(|n| n.contains("unknown key `hardware.lines.spray_valve.offest`")));
        // The other outputs are as configured (name lookup on the configured chip).
        let chiller = plan_of(&c, Output::Chiller);
        assert!(!chiller.reference_fallback);
        assert_eq!(chiller.line.chip, "pinctrl-rp1");
    }

    #[test]
    fn a_broken_chip_or_hardware_table_falls_back_for_every_output() {
        for text in [
            "[hardware]\nchip = 4\n",
            "[hardware]\nchip = \"pinctrl-rp1\n",
            "hardware = 3\n",
            "[hardware]\nlines = \"pump\"\n",
        ] {
            let c = parse(text, "c.toml");
            assert!(
                c.plan.outputs.iter().all(|o| o.reference_fallback),
                "{text:?}: {:?}",
                c.plan
            );
            assert_eq!(c.plan.outputs.len(), Output::ALL.len());
            assert!(!c.notes.is_empty(), "{text:?}");
        }
    }

    #[test]
    fn a_broken_pump_pwm_is_reported_not_ignored() {
        let c = parse(
            "[hardware.pump_pwm]\nchip = \"zero\"\nchannel = 2\n",
            "c.toml",
        );
        assert!(c.plan.pump_pwm.is_err());
        let c = parse("[hardware.pump_pwm]\nchip = 0\nchannel = 2\n", "c.toml");
        assert!(matches!(&c.plan.pump_pwm, Ok(Some(p)) if p.channel == 2));
    }

    #[test]
    fn the_backend_is_guessed_safely() {
        let guess = |text: &str| parse(text, "c").backend;
        assert_eq!(guess(""), BackendGuess::Linux);
        assert_eq!(guess("[unit]\nbackend = \"sim\"\n"), BackendGuess::Sim);
        assert_eq!(guess("[unit]\nbackend = \"gpio\"\n"), BackendGuess::Unknown);
        assert_eq!(guess("[unit]\nbackend = sim\n"), BackendGuess::Unknown);
        // A sim unit with a typo elsewhere is still a sim unit.
        assert_eq!(
            guess("[unit]\nbackend = \"sim\"\n[metrics]\nx = 1\n"),
            BackendGuess::Sim
        );
    }

    #[test]
    fn an_unreadable_file_gives_the_reference_wiring() {
        let c = read(Path::new("/nonexistent/coldspray.toml"));
        assert_eq!(c.backend, BackendGuess::Unknown);
        assert!(c.plan.outputs.iter().all(|o| o.reference_fallback));
        assert!(c.plan.pump_pwm.is_err());
        assert!(
            c.notes[0].contains("/nonexistent/coldspray.toml"),
            "{:?}",
            c.notes
        );
    }
}
