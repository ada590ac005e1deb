//! QEMU's own schema examples, decoded strictly with the shipped
//! bindings (`qapi_tests::examples` says how each message is judged).
//!
//! - The schema the bindings come from (`schema/qemu`, QMP and guest
//!   agent): every request decodes into its typed command and encodes
//!   back to the same JSON, every reply into its command's return type,
//!   every event into its event type.
//! - QEMU 6.2.0, 8.2.0 and 9.2.0 (release extracts, see
//!   `qapi_tests::extracts`): every reply and event of each release's
//!   own examples decodes with the same bindings.
//!
//! Nothing may fail.  What QEMU's documentation gets wrong against its
//! own schema, and what an older release sends that the bindings cannot
//! read yet, is pinned per release in `tests/schema-examples/RELEASE.txt`:
//! a change to either list fails with the difference.  After checking
//! the difference, `UPDATE_PINS=1 cargo test -p qapi-tests --test
//! schema_examples` rewrites the files (also after `schema/qemu` moves
//! to another release: its file is named by the MANIFEST's version, and
//! a file for a release no longer checked is reported stale).  `cargo xtask examples` runs this
//! test and shows its summary lines.

use std::path::{Path, PathBuf};

use qapi_parser::{Options, Rules, Schema};
use qapi_tests::examples::{check, Bindings, Mode, Report};
use qapi_tests::qemu_src::workspace_root;
use qapi_types::ServerMessage;
use serde_json::Value;

/// At least this many messages of the bindings' own schema decode (the
/// issue's goal; QEMU 10.0.2 has about 500 that are JSON).
const MIN_DECODED: usize = 420;
/// At most this many examples may be wrong in QEMU's own documentation.
const MAX_WRONG: usize = 20;

struct Qmp;
struct Qga;

fn envelope(message: &Value) -> Result<&'static str, String> {
    let bytes = serde_json::to_vec(message).map_err(|e| e.to_string())?;
    match ServerMessage::parse(&bytes) {
        Ok(ServerMessage::Return { .. }) => Ok("return"),
        Ok(ServerMessage::Error { .. }) => Ok("error"),
        Ok(ServerMessage::Event { .. }) => Ok("event"),
        Ok(ServerMessage::Greeting(_)) => Ok("greeting"),
        Err(e) => Err(e.to_string()),
    }
}

macro_rules! bindings {
    ($t:ty, $m:ident) => {
        impl Bindings for $t {
            fn arguments(&self, command: &str, arguments: Value) -> Option<Result<Value, String>> {
                qapi_types::$m::commands::check_arguments(command, arguments)
                    .map(|r| r.map_err(|e| e.to_string()))
            }
            fn returns(&self, command: &str, value: Value) -> Option<Result<(), String>> {
                qapi_types::$m::commands::check_return(command, value)
                    .map(|r| r.map_err(|e| e.to_string()))
            }
            fn event(&self, event: &str, data: Value) -> Option<Result<(), String>> {
                let decoded = match qapi_types::$m::events::Event::decode(event, data) {
                    Ok(decoded) => decoded,
                    Err(e) => return Some(Err(e.to_string())),
                };
                Some(
                    if matches!(decoded, qapi_types::$m::events::Event::Other { .. }) {
                        Err("Event::decode took it for an event it does not know".into())
                    } else if decoded.name() != event {
                        Err(format!("decoded as {}", decoded.name()))
                    } else {
                        Ok(())
                    },
                )
            }
            fn envelope(&self, message: &Value) -> Result<&'static str, String> {
                envelope(message)
            }
        }
    };
}

bindings!(Qmp, qmp);
bindings!(Qga, qga);

/// Read a schema of any release: the lenient documentation rules read
/// every release's text, and the same definitions as the strict ones.
fn read(path: &Path) -> Schema {
    let rules = Rules::Lenient;
    Schema::from_file(path, Options { rules })
        .unwrap_or_else(|f| panic!("{}: {}", path.display(), f.render()))
}

/// The release `schema/qemu` was vendored from (its MANIFEST).
fn vendored_release() -> String {
    let manifest = std::fs::read_to_string(workspace_root().join("schema/qemu/MANIFEST")).unwrap();
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("qemu-version:"))
        .map(|v| v.trim().to_string())
        .expect("schema/qemu/MANIFEST has a qemu-version line")
}

/// Both schemas of a release checked and merged into one report.
fn check_release(tree: &Path, newest: Option<(&Schema, &Schema)>) -> Report {
    let qmp = read(&tree.join("qapi/qapi-schema.json"));
    let qga = read(&tree.join("qga/qapi-schema.json"));
    let (mq, mg) = match newest {
        Some((nq, ng)) => (Mode::Older { newest: nq }, Mode::Older { newest: ng }),
        None => (Mode::Own, Mode::Own),
    };
    let mut report = check(&qmp, mq, &Qmp);
    let g = check(&qga, mg, &Qga);
    report.decoded += g.decoded;
    report.skipped.extend(g.skipped);
    report.wrong.extend(g.wrong);
    report.folding.extend(g.folding);
    report.failed.extend(g.failed);
    report
}

fn pins_file(release: &str) -> PathBuf {
    workspace_root().join(format!("tests/schema-examples/{release}.txt"))
}

/// The pinned lists as the file holds them: `wrong: …` and `folding: …`
/// lines, sorted.
fn pins_text(release: &str, report: &Report) -> String {
    let mut lines: Vec<String> = report
        .wrong
        .iter()
        .map(|w| format!("wrong: {w}"))
        .chain(report.folding.iter().map(|f| format!("folding: {f}")))
        .collect();
    lines.sort();
    let mut text = format!(
        "# QEMU {release}'s schema examples: what its documentation gets wrong against its own\n\
         # schema (wrong:), and what the release sends that the bindings cannot read yet\n\
         # (folding:).  Checked by tests/tests/schema_examples.rs; do not edit by hand.\n"
    );
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    text
}

/// Compare with the pinned file; the difference as text.
fn compare_pins(release: &str, report: &Report) -> Option<String> {
    let path = pins_file(release);
    let now = pins_text(release, report);
    if std::env::var_os("UPDATE_PINS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &now).unwrap();
        return None;
    }
    let pinned = std::fs::read_to_string(&path).unwrap_or_default();
    if pinned == now {
        return None;
    }
    let old: Vec<&str> = pinned.lines().filter(|l| !l.starts_with('#')).collect();
    let new: Vec<&str> = now.lines().filter(|l| !l.starts_with('#')).collect();
    let mut diff = format!("{} differs from what the examples give:\n", path.display());
    for l in &new {
        if !old.contains(l) {
            diff.push_str(&format!("  + {l}\n"));
        }
    }
    for l in &old {
        if !new.contains(l) {
            diff.push_str(&format!("  - {l}\n"));
        }
    }
    Some(diff)
}

fn summary(label: &str, report: &Report) -> String {
    let reasons: Vec<String> = report
        .skip_reasons()
        .iter()
        .map(|(r, n)| format!("{n} {r}"))
        .collect();
    let mut s = format!(
        "{label}: {} (skipped: {})",
        report.line(),
        reasons.join(", ")
    );
    // `QAPI_EXAMPLES_VERBOSE=1`: where each skipped message is.
    if std::env::var_os("QAPI_EXAMPLES_VERBOSE").is_some() {
        for (place, reason) in &report.skipped {
            s.push_str(&format!("\n  skipped {place}: {reason}"));
        }
    }
    s
}

#[test]
fn schema_examples_decode_with_the_bindings() {
    qapi_types::set_strict(true);
    let root = workspace_root();
    let own_release = vendored_release();
    let own = check_release(&root.join("schema/qemu"), None);
    let mut problems = Vec::new();
    println!(
        "{}",
        summary(&format!("QEMU {own_release} (the bindings' schema)"), &own)
    );
    for f in &own.failed {
        problems.push(format!("QEMU {own_release}: {f}"));
    }
    if own.decoded < MIN_DECODED {
        problems.push(format!(
            "only {} decoded, fewer than {MIN_DECODED}",
            own.decoded
        ));
    }
    if own.wrong.len() > MAX_WRONG {
        problems.push(format!(
            "{} wrong in QEMU's docs, more than {MAX_WRONG}",
            own.wrong.len()
        ));
    }
    problems.extend(compare_pins(&own_release, &own));

    let newest_qmp = read(&root.join("schema/qemu/qapi/qapi-schema.json"));
    let newest_qga = read(&root.join("schema/qemu/qga/qapi-schema.json"));
    let older = ["6.2.0", "8.2.0", "9.2.0"];
    // A pin file for a release no longer checked (the vendored schema
    // moved on) is stale.
    for entry in std::fs::read_dir(root.join("tests/schema-examples")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let release = name.trim_end_matches(".txt");
        if release != own_release && !older.contains(&release) {
            problems.push(format!(
                "tests/schema-examples/{name}: no such release is checked; remove it"
            ));
        }
    }
    for release in older {
        let tree = qapi_tests::extracts::ensure(release).unwrap();
        let report = check_release(&tree, Some((&newest_qmp, &newest_qga)));
        println!("{}", summary(&format!("QEMU {release}"), &report));
        for f in &report.failed {
            problems.push(format!("QEMU {release}: {f}"));
        }
        problems.extend(compare_pins(release, &report));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
