//! `diff::changes` on small schemas: every kind of change, the order,
//! and that implicit types are shown through their owners.

use std::path::Path;

use qapi_codegen::diff::{changes, summary, Action, Change, DefKind, Flag, Part};
use qapi_codegen::qapi_parser::{Options, Rules, Schema};

fn read(text: &str, rules: Rules) -> Schema {
    let bytes = text.as_bytes().to_vec();
    let load = move |_: &Path| Ok(bytes.clone());
    Schema::from_file_with(Path::new("t.json"), Options { rules }, &load)
        .unwrap_or_else(|f| panic!("{}", f.render()))
}

fn lines(old: &str, new: &str, rules: Rules) -> Vec<String> {
    let list = changes(&read(old, rules), &read(new, rules));
    list.iter().map(Change::to_string).collect()
}

const OLD: &str = "
{ 'pragma': { 'command-returns-exceptions': ['ret'] } }
{ 'command': 'first-gone' }
{ 'command': 'keep',
  'data': { 'a': 'int', '*b': 'str', 'c': 'str', 'gone': 'bool', 'dep': 'int' },
  'returns': 'Info' }
{ 'command': 'gone-cmd' }
{ 'command': 'ret', 'returns': ['Info'] }
{ 'command': 'ret-gone', 'returns': 'Info' }
{ 'command': 'ret-new' }
{ 'command': 'to-named', 'data': { 'x': 'int' } }
{ 'command': 'flagged' }
{ 'event': 'EV', 'data': { 'm': 'int' }, 'features': ['deprecated'] }
{ 'event': 'EV_NAMED', 'data': 'Args' }
{ 'event': 'EV_GONE' }
{ 'struct': 'Info', 'data': { 'n': 'int', '*o': 'str', 'list': ['int'] } }
{ 'struct': 'Args', 'data': { 'x': 'int' } }
{ 'enum': 'Kind', 'data': [ 'one', 'two', 'three' ] }
{ 'struct': 'Base', 'data': { 'kind': 'Kind' } }
{ 'union': 'Uni', 'base': 'Base', 'discriminator': 'kind',
  'data': { 'one': 'Info', 'two': 'Args' } }
{ 'alternate': 'Alt', 'data': { 'i': 'int', 's': 'Info' } }
{ 'struct': 'Becomes', 'data': { 'kind': 'str', 'z': 'int' } }
{ 'struct': 'Gone', 'data': {} }
{ 'enum': 'ToStruct', 'data': ['a'] }
{ 'struct': 'Child', 'base': 'Args', 'data': { 'c': 'int' } }
{ 'struct': 'Rebased', 'data': { 'x': 'int' } }
";

const NEW: &str = "
{ 'pragma': { 'command-returns-exceptions': ['ret'] } }
{ 'command': 'added-cmd' }
{ 'command': 'keep',
  'data': { 'a': 'str', 'b': 'str', '*c': 'str',
            'dep': { 'type': 'int', 'features': ['deprecated'] },
            'new': 'int', '*newopt': ['Info'] },
  'returns': 'Info' }
{ 'command': 'ret', 'returns': 'int' }
{ 'command': 'ret-gone' }
{ 'command': 'ret-new', 'returns': 'Info' }
{ 'command': 'to-named', 'data': 'Args' }
{ 'command': 'flagged', 'features': ['unstable'] }
{ 'event': 'EV', 'data': { 'm': 'str', '*n': 'int' } }
{ 'event': 'EV_NAMED', 'data': 'Args' }
{ 'event': 'EV_NEW' }
{ 'struct': 'Info', 'data': { 'n': 'int', '*o': 'str', 'list': ['str'] } }
{ 'struct': 'Args', 'data': { 'x': 'int', '*y': 'int' } }
{ 'enum': 'Kind',
  'data': [ 'one', { 'name': 'two', 'features': ['deprecated'] }, 'four' ] }
{ 'struct': 'Base', 'data': { 'kind': 'Kind' } }
{ 'union': 'Uni', 'base': 'Base', 'discriminator': 'kind',
  'data': { 'one': 'Args', 'four': 'Info' } }
{ 'alternate': 'Alt', 'data': { 'i': 'int', 'b': 'bool' } }
{ 'union': 'Becomes', 'base': { 'kind': 'Kind', 'z': 'int' },
  'discriminator': 'kind', 'data': { 'one': 'Args' } }
{ 'struct': 'New', 'data': {} }
{ 'struct': 'ToStruct', 'data': { 'a': 'int' } }
{ 'struct': 'Child', 'base': 'Args', 'data': { 'c': 'str' } }
{ 'struct': 'Rebased', 'base': 'Args', 'data': {} }
";

#[test]
fn every_kind_of_change_in_order() {
    let want = [
        "command first-gone removed",
        "command added-cmd added",
        "command keep: argument a retyped from int to str",
        "command keep: argument b made required",
        "command keep: argument c made optional",
        "command keep: argument gone removed",
        "command keep: argument dep now deprecated",
        "command keep: argument new added (required int)",
        "command keep: argument newopt added (optional [Info])",
        "command gone-cmd removed",
        "command ret: return retyped from [Info] to int",
        "command ret-gone: return removed",
        "command ret-new: return added (Info)",
        "command to-named: arguments retyped from inline to Args",
        // Args's own change, which its other users see under type Args.
        "command to-named: argument y added (optional int)",
        "command flagged now unstable",
        "event EV no longer deprecated",
        "event EV: member m retyped from int to str",
        "event EV: member n added (optional int)",
        "event EV_GONE removed",
        "event EV_NEW added",
        "type Info: member list retyped from [int] to [str]",
        "type Args: member y added (optional int)",
        "type Kind: value two now deprecated",
        "type Kind: value three removed",
        "type Kind: value four added",
        "type Uni: branch one retyped from Info to Args",
        "type Uni: branch two removed",
        "type Uni: branch four added (Info)",
        "type Alt: branch s removed",
        "type Alt: branch b added (bool)",
        "type Becomes now a union on kind (was a struct)",
        "type Becomes: member kind retyped from str to Kind",
        "type Becomes: branch one added (Args)",
        "type Gone removed",
        "type New added (struct)",
        "type ToStruct now a struct (was an enum)",
        // Args's y is listed under Args only, while both have it as base.
        "type Child: member c retyped from int to str",
        "type Rebased: member y added (optional int)",
    ];
    assert_eq!(lines(OLD, NEW, Rules::Strict), want);
}

#[test]
fn the_changes_are_values() {
    let list = changes(&read(OLD, Rules::Strict), &read(NEW, Rules::Strict));
    let dep = list
        .iter()
        .find(|c| c.part == Some(Part::Argument("dep".into())))
        .expect("dep's change");
    assert_eq!(
        *dep,
        Change {
            kind: DefKind::Command,
            name: "keep".into(),
            part: Some(Part::Argument("dep".into())),
            action: Action::Now(Flag::Deprecated),
        }
    );
    assert_eq!(
        summary(&list),
        "39 changes: 14 added, 9 removed, 1 made required, 1 made optional, \
         8 retyped, 2 changed kind, 2 newly deprecated, 1 newly unstable, \
         1 no longer deprecated"
    );
}

#[test]
fn the_same_schema_has_no_changes() {
    let s = read(NEW, Rules::Strict);
    assert!(changes(&s, &s).is_empty());
    assert_eq!(summary(&[]), "0 changes");
    let one = lines(
        "{ 'command': 'a' }",
        "{ 'command': 'a' }\n{ 'command': 'b' }",
        Rules::Strict,
    );
    assert_eq!(one, ["command b added"]);
}

#[test]
fn reversing_swaps_added_and_removed() {
    let forth = changes(&read(OLD, Rules::Strict), &read(NEW, Rules::Strict));
    let back = changes(&read(NEW, Rules::Strict), &read(OLD, Rules::Strict));
    let count = |l: &[Change], label: &str| l.iter().filter(|c| c.action.label() == label).count();
    assert_eq!(count(&forth, "added"), count(&back, "removed"));
    assert_eq!(count(&forth, "removed"), count(&back, "added"));
    assert_eq!(
        count(&forth, "made required"),
        count(&back, "made optional")
    );
    assert_eq!(count(&forth, "retyped"), count(&back, "retyped"));
}

/// An older simple union's branch types are implicit wrappers
/// (`q_obj_int-wrapper`): shown by their members, never by name.
#[test]
fn implicit_types_are_never_named() {
    let old = "{ 'union': 'Sel', 'data': { 'a': 'int', 'b': 'str' } }\n\
               { 'event': 'EV', 'data': { 'x': 'int' } }";
    let new = "{ 'union': 'Sel', 'data': { 'a': 'str', 'c': 'int' } }\n\
               { 'event': 'EV', 'data': { 'x': 'int', 'y': 'Sel' } }";
    let got = lines(old, new, Rules::Lenient);
    assert_eq!(
        got,
        [
            "event EV: member y added (required Sel)",
            "type SelKind: value b removed",
            "type SelKind: value c added",
            "type Sel: branch a retyped from {data: int} to {data: str}",
            "type Sel: branch b removed",
            "type Sel: branch c added ({data: int})",
        ]
    );
    assert!(got.iter().all(|l| !l.contains("q_")), "{got:?}");
}

/// `qapi-gen diff OLD NEW`: a line per change, then the count; exit code
/// 0 either way.  A schema the strict rules reject is read leniently,
/// with a note.
#[test]
fn qapi_gen_diff_prints_the_changes_and_their_count() {
    let dir = std::env::temp_dir().join(format!("qapi-gen-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (old, new) = (dir.join("old.json"), dir.join("new.json"));
    // A simple union: only the lenient rules read it.
    std::fs::write(&old, "{ 'union': 'Sel', 'data': { 'a': 'int' } }\n").unwrap();
    std::fs::write(&new, NEW).unwrap();
    let run = |args: &[&Path]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_qapi-gen"))
            .arg("diff")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[&new, &new]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0 changes\n");
    assert!(out.stderr.is_empty());

    let out = run(&[&old, &new]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"command added-cmd added"));
    assert!(lines.contains(&"type Sel removed"), "{stdout}");
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with(&format!("{} changes: ", lines.len() - 1))),
        "{stdout}"
    );
    assert!(
        stderr.starts_with("note: ") && stderr.contains("lenient rules"),
        "{stderr}"
    );
    let usage = std::process::Command::new(env!("CARGO_BIN_EXE_qapi-gen"))
        .args(["diff", "only-one.json"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
}
