//! `diff::changes` on QEMU's real schemas, against facts found
//! elsewhere: the schemas' own text (checked by hand with grep, pinned
//! here) and QEMU's own front end's list of commands and events.
//!
//! The release extracts are unpacked from `shared/qemu/` (no network);
//! 7.2's and 10.0.2's QMP schemas are the vendored `schema/older/`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use qapi_codegen::diff::{changes, Action, Change, DefKind};
use qapi_codegen::qapi_parser::{EntityKind, Schema};
use qapi_codegen::Config;
use qapi_tests::qemu_src::{self, workspace_root};

const QMP: &str = "qapi/qapi-schema.json";

/// A release's tree: an extract, or the vendored older schema.
fn tree(release: &str) -> PathBuf {
    match release {
        "7.2" | "10.0" => workspace_root().join("schema/older").join(release),
        _ => qemu_src::ensure(release).unwrap_or_else(|e| panic!("{e}")),
    }
}

/// Read as `qapi-gen diff` reads: the strict rules, else the lenient ones.
fn read(path: &Path) -> Schema {
    Config::new()
        .read_schema(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .0
}

fn qmp_lines(old: &str, new: &str) -> Vec<String> {
    let (a, b) = (read(&tree(old).join(QMP)), read(&tree(new).join(QMP)));
    let lines: Vec<String> = changes(&a, &b).iter().map(Change::to_string).collect();
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("q_obj") && !l.contains("q_empty")),
        "{old} to {new}: an implicit type is named"
    );
    lines
}

fn has(lines: &[String], line: &str) -> bool {
    lines.iter().any(|l| l == line)
}

/// 10.2 dropped the `reconnect` members deprecated since 9.2 in favour
/// of `reconnect-ms`; it removed no command: `query-migrationthreads`
/// is in 10.1.0 and 10.2.0 alike, deprecated in both.
#[test]
fn qemu_10_1_to_10_2() {
    let lines = qmp_lines("10.1.0", "10.2.0");
    for want in [
        "type ChardevSocket: member reconnect removed",
        "type NetdevStreamOptions: member reconnect removed",
        "command query-accelerators added",
        "command query-firmware-log added",
        "command inject-ghes-v2-error added",
        "event SCLP_CPI_INFO_AVAILABLE added",
    ] {
        assert!(has(&lines, want), "missing: {want}\n{lines:#?}");
    }
    assert!(
        !lines.iter().any(|l| l.contains("reconnect-ms")),
        "{lines:#?}"
    );
    let removed_commands: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("command ") && l.ends_with(" removed") && !l.contains(':'))
        .collect();
    assert!(removed_commands.is_empty(), "{removed_commands:?}");
    assert!(!lines.iter().any(|l| l.contains("query-migrationthreads")));
    for release in ["10.1.0", "10.2.0"] {
        let s = read(&tree(release).join(QMP));
        let id = s.lookup("query-migrationthreads").expect(release);
        let e = s.entity(id);
        assert!(matches!(e.kind, EntityKind::Command(_)), "{release}");
        assert!(e.features.iter().any(|f| f.name == "deprecated"));
    }
    // node-name has been required since 10.1 (below).
    assert!(!lines.iter().any(|l| l.contains("BlockDeviceInfo")));
}

/// `query-migrationthreads` (documented "Since: 7.2") is first in 8.0,
/// and deprecated from 9.2.
#[test]
fn qemu_9_1_to_9_2_deprecates_query_migrationthreads() {
    let lines = qmp_lines("9.1.0", "9.2.0");
    assert!(
        has(&lines, "command query-migrationthreads now deprecated"),
        "{lines:#?}"
    );
}

/// `BlockDeviceInfo`'s `node-name` was optional through 10.0 and is
/// required from 10.1.
#[test]
fn qemu_10_0_to_10_1_makes_node_name_required() {
    let want = "type BlockDeviceInfo: member node-name made required";
    for old in ["10.0", "9.2.0"] {
        let lines = qmp_lines(old, "10.1.0");
        assert!(has(&lines, want), "{old}: missing: {want}");
    }
}

/// 8.2 turned `BlockJobInfo` from a struct with `type: str` into a union
/// on `type` (`JobType`) with a `mirror` branch: three lines, in order.
#[test]
fn qemu_7_2_to_10_2() {
    let lines = qmp_lines("7.2", "10.2.0");
    let want = [
        "type BlockJobInfo now a union on type (was a struct)",
        "type BlockJobInfo: member type retyped from str to JobType",
        "type BlockJobInfo: branch mirror added (BlockJobInfoMirror)",
    ];
    let at = lines
        .iter()
        .position(|l| l == want[0])
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(lines[at..at + 3], want);
    assert!(has(&lines, "command query-migrationthreads added"));
    assert!(has(
        &lines,
        "type BlockDeviceInfo: member node-name made required"
    ));
}

/// Every command and event added or removed between two releases, by
/// `changes` and by QEMU's own front ends (each release's own
/// `scripts/qapi` on its own schema).
fn commands_and_events_agree_with_qemu(old: &str, new: &str, schema: &str) -> usize {
    type Set = BTreeSet<(String, String)>;
    let qemu = |release: &str| -> Set {
        let t = tree(release);
        let list = qapi_tests::reference_commands_and_events(&t, schema)
            .unwrap_or_else(|e| panic!("{release} {schema}: {e}"));
        list.into_iter().collect()
    };
    let (a, b) = (qemu(old), qemu(new));
    let qemu_added: Set = b.difference(&a).cloned().collect();
    let qemu_removed: Set = a.difference(&b).cloned().collect();
    let list = changes(
        &read(&tree(old).join(schema)),
        &read(&tree(new).join(schema)),
    );
    let ours = |removed: bool| -> Set {
        list.iter()
            .filter(|c| c.part.is_none() && c.kind != DefKind::Type)
            .filter(|c| match c.action {
                Action::Added(_) => !removed,
                Action::Removed => removed,
                _ => false,
            })
            .map(|c| (c.kind.to_string(), c.name.clone()))
            .collect()
    };
    assert_eq!(ours(false), qemu_added, "{old} to {new} {schema}: added");
    assert_eq!(ours(true), qemu_removed, "{old} to {new} {schema}: removed");
    qemu_added.len() + qemu_removed.len()
}

#[test]
fn added_and_removed_commands_and_events_agree_with_qemus_front_end() {
    for schema in [QMP, "qga/qapi-schema.json"] {
        commands_and_events_agree_with_qemu("10.1.0", "10.2.0", schema);
    }
    let n = commands_and_events_agree_with_qemu("6.2.0", "10.2.0", QMP);
    println!("6.2.0 to 10.2.0: {n} commands and events added or removed");
    assert!(
        n > 40,
        "6.2.0 to 10.2.0: only {n} commands and events differ"
    );
    let n = commands_and_events_agree_with_qemu("6.2.0", "10.2.0", "qga/qapi-schema.json");
    assert!(n > 0, "6.2.0 to 10.2.0 (guest agent): none differ");
}
