//! The bindings against QEMU 7.2's `qemu-system-x86_64 -machine none`
//! and `-machine pc`: every argument-free `query-*` command 7.2 has is
//! run, and each reply
//! - decodes strictly with bindings generated from 7.2's own schema;
//! - decodes with the shipped 10.0.2 bindings in normal (lenient) mode,
//!   as a program built against them and run on 7.2 would: members that
//!   10.0.2 added and requires are `Option`s there, because the bindings
//!   are generated with 7.2's schema as an older release they also read
//!   (`Config::older_schema`);
//! - decodes strictly with the 10.0.2 bindings once what only 7.2 has is
//!   taken out (`qapi_tests::shared::prune_older`): strict mode stays
//!   clean for everything 7.2 and 10.0.2 share.

use std::collections::BTreeSet;

use qapi_parser::{DocMode, EntityKind, Options as ParseOptions, Schema};
use qapi_qemu_bindings_check::v7_2;
use qapi_tests::live::argument_free_queries;
use qapi_tests::qemu_bin::ensure_qemu72;
use qapi_tests::qemu_src::{ensure, workspace_root};
use qapi_types::blocking::Qmp;
use serde_json::Value;

fn schemas() -> (Schema, Schema) {
    let newer = Schema::from_file(
        workspace_root().join("schema/qemu/qapi/qapi-schema.json"),
        ParseOptions::default(),
    )
    .unwrap_or_else(|f| panic!("{f}"));
    let tree = ensure("7.2").unwrap();
    let older = Schema::from_file(
        tree.join("qapi/qapi-schema.json"),
        ParseOptions {
            doc_mode: DocMode::Lenient,
        },
    )
    .unwrap_or_else(|f| panic!("{f}"));
    (newer, older)
}

fn run(machine: &str, newer: &Schema, older: &Schema) {
    let d = ensure_qemu72().unwrap().spawn_system(machine);
    let qmp = Qmp::connect_unix(d.sock()).unwrap();
    // What this build has (its configuration drops some commands).
    let available: BTreeSet<String> = qmp
        .execute_raw("query-commands", None)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    let queries: Vec<String> = argument_free_queries(older)
        .into_iter()
        .filter(|q| available.contains(q))
        .collect();
    assert!(queries.len() >= 30, "only {} queries", queries.len());

    let (mut problems, mut only_older, mut errors) = (Vec::new(), BTreeSet::new(), Vec::new());
    let mut decoded = 0;
    for name in &queries {
        let reply = match qmp.execute_raw(name, None) {
            Ok(v) => v,
            Err(qapi_types::Error::Qmp(e)) => {
                // Not every query works on every machine (no KVM, no
                // guest, no migration): QEMU's own answer, kept.
                errors.push(format!("{name}: {e}"));
                continue;
            }
            Err(e) => panic!("{name}: {e}"),
        };
        qapi_types::set_strict(true);
        let own = v7_2::qmp::commands::check_return(name, reply.clone());
        qapi_types::set_strict(false);
        match own {
            Some(Ok(())) => {}
            Some(Err(e)) => problems.push(format!(
                "{name} (7.2 bindings, strict): {e}\n  {}",
                short(&reply)
            )),
            None => problems.push(format!("{name}: not in 7.2's bindings")),
        }
        let Some(cmd) = newer.lookup(name) else {
            only_older.insert(format!("command {name}"));
            continue;
        };
        let EntityKind::Command(c) = &newer.entity(cmd).kind else {
            unreachable!()
        };
        let mut pruned = reply.clone();
        let log = match c.ret_type {
            Some(ty) => qapi_tests::shared::prune_older(newer, older, ty, &mut pruned),
            None => Vec::new(),
        };
        // A failure the walk explains: a required member 7.2 lacks, or
        // an enum value only 7.2 has.
        let explained = |e: &str| {
            log.iter().any(|l| {
                l.strip_suffix(" (required, newer only)")
                    .and_then(|m| m.rsplit_once('.'))
                    .is_some_and(|(_, m)| e.contains(&format!("missing member '{m}'")))
                    || l.split_once(" value ")
                        .is_some_and(|(_, v)| e.contains(&format!("'{v}'")))
            })
        };
        match qapi_types::qmp::commands::check_return(name, reply.clone()) {
            Some(Ok(())) => {}
            Some(Err(e)) => problems.push(format!(
                "{name} (10.0.2 bindings): {e}\n  {}",
                short(&reply)
            )),
            None => problems.push(format!("{name}: not in the 10.0.2 bindings")),
        }
        qapi_types::set_strict(true);
        let strict = qapi_types::qmp::commands::check_return(name, pruned.clone());
        qapi_types::set_strict(false);
        match strict {
            Some(Ok(())) => decoded += 1,
            Some(Err(e)) if explained(&e.to_string()) => {}
            Some(Err(e)) => problems.push(format!(
                "{name} (10.0.2 bindings, strict, 7.2-only parts removed: {log:?}): {e}\n  {}",
                short(&pruned)
            )),
            None => {}
        }
        only_older.extend(log);
    }
    println!(
        "-machine {machine}: {} queries; {decoded} decode strictly with 10.0.2's bindings \
         (differences found: {only_older:?}); QEMU refused {}: {errors:?}",
        queries.len(),
        errors.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        decoded * 3 >= queries.len() * 2,
        "{decoded} of {}",
        queries.len()
    );
}

fn short(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 600 {
        s.truncate(600);
        s.push('…');
    }
    s
}

/// Strict decoding is global to the process: the machines take turns.
#[test]
fn every_query_of_qemu72_decodes_strictly_on_what_it_shares_with_10_0_2() {
    let (newer, older) = schemas();
    for machine in ["none", "pc"] {
        run(machine, &newer, &older);
    }
}
