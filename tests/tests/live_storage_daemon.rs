//! The shipped QMP bindings (QEMU 10.2.0's, reading 10.0 too) against a
//! real QEMU: qemu-storage-daemon (QEMU 10.0.2, on every machine here).
//! Every command of the storage daemon's schema that starts with
//! `query-` and needs no argument is run, and each reply is decoded into
//! its generated return type with strict decoding on (an unknown
//! member, enum value or branch fails), chosen for each decoding with
//! `qapi_types::with_strict`.

use std::time::Duration;

use qapi_parser::{Options, Schema};
use qapi_tests::live::{argument_free_queries, spawn, Process};
use qapi_types::blocking::Qmp;
use qapi_types::{with_strict, EventItem};
use serde_json::json;

const DAEMON: &str = "/usr/bin/qemu-storage-daemon";

fn daemon() -> (Process, Qmp) {
    let p = spawn(
        DAEMON,
        &[
            "--chardev",
            "socket,path={sock},server=on,wait=off,id=m",
            "--monitor",
            "chardev=m",
        ],
    );
    let qmp = Qmp::connect_unix(p.sock()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(qmp.greeting().version.0, 10, "{}", qmp.greeting());
    (p, qmp)
}

#[test]
fn every_query_command_decodes_strictly() {
    qapi_tests::require_live!();
    let root = qapi_tests::qemu_src::workspace_root();
    let schema = Schema::from_file(
        root.join("schema/qemu/storage-daemon/qapi/qapi-schema.json"),
        Options::default(),
    )
    .unwrap_or_else(|f| panic!("{f}"));
    let queries = argument_free_queries(&schema);
    assert!(queries.len() >= 10, "only {} query commands", queries.len());

    let (_daemon, qmp) = daemon();
    // Something for the block queries to report.
    qmp.execute_raw(
        "blockdev-add",
        Some(&json!({"driver": "null-co", "node-name": "n0", "size": 1048576})),
    )
    .unwrap();

    let (mut decoded, mut problems) = (Vec::new(), Vec::new());
    for name in &queries {
        match qmp.execute_raw(name, None) {
            Ok(value) => match with_strict(Some(true), || {
                qapi_types::qmp::commands::check_return(name, value.clone())
            }) {
                Some(Ok(())) => decoded.push(name.clone()),
                Some(Err(e)) => problems.push(format!("{name}: {e}\n  reply: {value}")),
                None => problems.push(format!("{name}: not in the QMP bindings")),
            },
            Err(qapi_types::Error::Qmp(e)) => println!("QEMU answered {name} with an error: {e}"),
            Err(e) => panic!("{name}: {e}"),
        }
    }
    println!(
        "decoded strictly: {} of {} query commands",
        decoded.len(),
        queries.len()
    );
    assert!(
        problems.is_empty(),
        "replies that did not decode strictly:\n{}",
        problems.join("\n")
    );
    assert!(
        decoded.len() * 2 >= queries.len(),
        "too few replies decoded: {decoded:?}"
    );
    assert!(
        decoded.iter().any(|n| n == "query-named-block-nodes"),
        "{decoded:?}"
    );
}

#[test]
fn job_events_decode_into_typed_events() {
    qapi_tests::require_live!();
    use qapi_types::qmp::events::{Event, EventMessage};
    use qapi_types::qmp::JobStatus;

    let (daemon, qmp) = daemon();
    let events = qmp.subscribe();
    let image = daemon.dir.join("new.img");
    qmp.execute_raw(
        "blockdev-create",
        Some(&json!({"job-id": "j0", "options": {"driver": "file", "filename": image, "size": 1048576}})),
    )
    .unwrap();
    let mut seen = Vec::new();
    let next = || match events.recv_timeout(Duration::from_secs(10)) {
        Ok(EventItem::Event(raw)) => {
            // The whole message, as a program reading the wire would.
            let msg = json!({"event": raw.name, "data": raw.data,
                             "timestamp": {"seconds": raw.timestamp.seconds,
                                           "microseconds": raw.timestamp.microseconds}});
            let msg: EventMessage = with_strict(Some(true), || serde_json::from_value(msg.clone()))
                .unwrap_or_else(|e| panic!("{e}: {msg}"));
            match msg.event {
                Event::JobStatusChange(change) => {
                    assert_eq!(change.id, "j0");
                    change.status
                }
                other => panic!("not decoded into a known event: {other:?}"),
            }
        }
        other => panic!("{other:?}"),
    };
    while seen.last() != Some(&JobStatus::Concluded) {
        seen.push(next());
    }
    qmp.execute_raw("job-dismiss", Some(&json!({"id": "j0"})))
        .unwrap();
    seen.push(next());
    assert!(seen.contains(&JobStatus::Created), "{seen:?}");
    assert!(seen.contains(&JobStatus::Concluded), "{seen:?}");
    assert_eq!(seen.last(), Some(&JobStatus::Null), "{seen:?}");
    assert!(image.exists());
}
