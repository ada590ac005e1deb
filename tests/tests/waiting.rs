//! Waiting, on both clients, against real QEMU: jobs run to their end on
//! `qemu-storage-daemon` 10.0.2 (blockdev-create of a qcow2 over a file
//! in a temporary folder, a mirror, a backup, a stream and an active
//! commit, and a job that fails with QEMU's own message), a matching
//! event within a time limit, and on QEMU 7.2's system emulator
//! `device_del` waiting for `DEVICE_DELETED` and fd sets removed by
//! their guard.

use std::os::fd::AsFd;
use std::time::Duration;

use qapi_tests::live::{spawn, storage_daemon, Process};
use qapi_types::blocking::Qmp;
use qapi_types::qmp::commands::{
    BlockCommit, BlockStream, BlockdevAdd, BlockdevBackup, BlockdevCreate, BlockdevMirror,
    QueryFdsets, QueryJobs, QueryNamedBlockNodes,
};
use qapi_types::Error;
use serde_json::{json, Value};

const LIMIT: Option<Duration> = Some(Duration::from_secs(30));

/// A typed command from its wire form: the tests name only the members
/// they set.
fn cmd<C: serde::de::DeserializeOwned>(v: Value) -> C {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
}

fn create(job: &str, options: Value) -> BlockdevCreate {
    cmd(json!({ "job-id": job, "options": options }))
}

fn add(node: Value) -> BlockdevAdd {
    cmd(node)
}

fn null(name: &str) -> BlockdevAdd {
    add(json!({ "driver": "null-co", "node-name": name, "size": 4 << 20 }))
}

fn node_names(qmp: &Qmp) -> Vec<String> {
    let nodes = qmp
        .execute(&cmd::<QueryNamedBlockNodes>(json!({ "flat": true })))
        .unwrap();
    serde_json::to_value(nodes)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node-name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn jobs_run_to_their_end_blocking() {
    qapi_tests::require_live!();
    let d = storage_daemon(&[]);
    let qmp = Qmp::connect_unix(d.sock()).unwrap();
    let file = d.dir.join("disk.qcow2");

    // blockdev-create: a file, then a qcow2 on it; never auto-dismissed,
    // so run_job dismisses them.
    let file_opts = json!({ "driver": "file", "filename": file, "size": 0 });
    qmp.run_job(&create("c-file", file_opts), LIMIT).unwrap();
    qmp.execute(&add(
        json!({ "driver": "file", "node-name": "f0", "filename": file }),
    ))
    .unwrap();
    let qcow2 = json!({ "driver": "qcow2", "file": "f0", "size": 4 << 20 });
    qmp.run_job(&create("c-qcow2", qcow2), LIMIT).unwrap();
    let header = std::fs::read(&file).unwrap();
    assert_eq!(&header[..4], b"QFI\xfb", "not a qcow2 image");

    // The qcow2 over the file, backed by a null node: a stream pulls the
    // backing data up.  Then a second qcow2 over it, committed down into
    // it (an active commit waits in `ready` for job-complete).
    qmp.execute(&null("base")).unwrap();
    qmp.execute(&add(json!({
        "driver": "qcow2", "node-name": "top", "file": "f0", "backing": "base"
    })))
    .unwrap();
    qmp.run_job(
        &cmd::<BlockStream>(json!({ "job-id": "s0", "device": "top" })),
        LIMIT,
    )
    .unwrap();
    let file2 = d.dir.join("overlay.qcow2");
    let file2_opts = json!({ "driver": "file", "filename": file2, "size": 0 });
    qmp.run_job(&create("c-file2", file2_opts), LIMIT).unwrap();
    qmp.execute(&add(
        json!({ "driver": "file", "node-name": "f1", "filename": file2 }),
    ))
    .unwrap();
    let qcow2 = json!({ "driver": "qcow2", "file": "f1", "size": 4 << 20 });
    qmp.run_job(&create("c-qcow2-2", qcow2), LIMIT).unwrap();
    qmp.execute(&add(json!({
        "driver": "qcow2", "node-name": "overlay", "file": "f1", "backing": "top"
    })))
    .unwrap();
    qmp.run_job(
        &cmd::<BlockCommit>(json!({ "job-id": "k0", "device": "overlay" })),
        LIMIT,
    )
    .unwrap();

    // A mirror (ready, then completed) with auto-dismiss on (QEMU
    // dismisses it) and off (run_job does), and a backup.
    for n in ["src", "dst1", "dst2", "dst3"] {
        qmp.execute(&null(n)).unwrap();
    }
    qmp.run_job(
        &cmd::<BlockdevMirror>(json!({
            "job-id": "m1", "device": "src", "target": "dst1", "sync": "full"
        })),
        LIMIT,
    )
    .unwrap();
    qmp.run_job(
        &cmd::<BlockdevMirror>(json!({
            "job-id": "m2", "device": "src", "target": "dst2", "sync": "full",
            "auto-dismiss": false
        })),
        LIMIT,
    )
    .unwrap();
    qmp.run_job(
        &cmd::<BlockdevBackup>(json!({
            "job-id": "b0", "device": "src", "target": "dst3", "sync": "full"
        })),
        LIMIT,
    )
    .unwrap();

    // A job that fails: QEMU's message, typed, and the job dismissed.
    let missing = d.dir.join("no-such-folder/disk.raw");
    let e = qmp
        .run_job(
            &create(
                "c-bad",
                json!({ "driver": "file", "filename": missing, "size": 0 }),
            ),
            LIMIT,
        )
        .unwrap_err();
    match &e {
        Error::Job { id, message } => {
            assert_eq!(id, "c-bad");
            assert!(message.contains("No such file or directory"), "{message}");
        }
        e => panic!("expected a job error, got {e}"),
    }
    assert!(!e.is_fatal());
    assert!(qmp.execute(&QueryJobs {}).unwrap().is_empty());
    for n in ["f0", "f1", "top", "src", "dst1", "dst2", "dst3"] {
        assert!(node_names(&qmp).contains(&n.to_string()), "{n}");
    }
}

#[test]
fn a_matching_event_within_a_time_limit_blocking() {
    qapi_tests::require_live!();
    let d = storage_daemon(&[]);
    let qmp = Qmp::connect_unix(d.sock()).unwrap();
    let sub = qmp.subscribe();
    let short = Duration::from_millis(200);
    assert!(matches!(
        sub.wait_for(short, |_| true),
        Err(Error::Timeout { after, .. }) if after == short
    ));
    qmp.execute(&null("src")).unwrap();
    qmp.execute(&null("dst")).unwrap();
    let job = json!({ "job-id": "m0", "device": "src", "target": "dst", "sync": "full" });
    qmp.execute(&cmd::<BlockdevMirror>(job)).unwrap();
    // Passes over created and running; the typed form decodes.
    use qapi_types::qmp::events::JobStatusChange;
    use qapi_types::qmp::JobStatus;
    let ready = sub
        .wait_event::<JobStatusChange>(Duration::from_secs(10), |e| e.status == JobStatus::Ready)
        .unwrap();
    assert_eq!(ready.id, "m0");
    qmp.execute(&cmd::<qapi_types::qmp::commands::JobCancel>(
        json!({ "id": "m0" }),
    ))
    .unwrap();
    let raw = sub
        .wait_for(Duration::from_secs(10), |e| {
            e.name == "JOB_STATUS_CHANGE" && e.data["status"] == "concluded"
        })
        .unwrap();
    assert_eq!(raw.data["id"], "m0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_to_their_end_tokio() {
    qapi_tests::require_live!();
    let d = storage_daemon(&[]);
    let qmp = qapi_types::tokio::Qmp::connect_unix(d.sock())
        .await
        .unwrap();
    let file = d.dir.join("disk.raw");
    let file_opts = json!({ "driver": "file", "filename": file, "size": 0 });
    qmp.run_job(&create("c-file", file_opts), LIMIT)
        .await
        .unwrap();
    assert!(file.exists());
    qmp.execute(&null("src")).await.unwrap();
    qmp.execute(&null("dst")).await.unwrap();
    let mirror = json!({ "job-id": "m0", "device": "src", "target": "dst", "sync": "full" });
    qmp.run_job(&cmd::<BlockdevMirror>(mirror), LIMIT)
        .await
        .unwrap();
    let missing = d.dir.join("no-such-folder/disk.raw");
    let bad = json!({ "driver": "file", "filename": missing, "size": 0 });
    match qmp.run_job(&create("c-bad", bad), LIMIT).await {
        Err(Error::Job { id, message }) => {
            assert_eq!(id, "c-bad");
            assert!(message.contains("No such file or directory"), "{message}");
        }
        r => panic!("expected a job error, got {r:?}"),
    }
    assert!(qmp.execute(&QueryJobs {}).await.unwrap().is_empty());
    let sub = qmp.subscribe();
    let short = Duration::from_millis(200);
    assert!(matches!(
        sub.wait_for(short, |_| true).await,
        Err(Error::Timeout { .. })
    ));
}

/// QEMU 7.2's system emulator with `devices` plugged at start.
fn system72(devices: &[&str]) -> Process {
    let q = qapi_tests::qemu_bin::ensure_qemu72().unwrap_or_else(|e| panic!("QEMU 7.2: {e}"));
    let mut args = q.firmware_args();
    for a in [
        "-machine",
        "q35",
        "-nodefaults",
        "-display",
        "none",
        "-qmp",
        "unix:{sock},server=on,wait=off",
    ] {
        args.push(a.into());
    }
    for d in devices {
        args.push("-device".into());
        args.push(d.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn(q.system_x86_64(), &args)
}

/// USB devices leave at once, without the guest's help.
const USB: [&str; 3] = [
    "qemu-xhci,id=usb",
    "usb-tablet,id=tablet0,bus=usb.0",
    "usb-kbd,id=kbd0,bus=usb.0",
];

#[test]
fn device_del_waits_for_device_deleted_blocking() {
    qapi_tests::require_live!();
    let d = system72(&USB);
    let qmp = Qmp::connect_unix(d.sock()).unwrap();
    qmp.device_del("tablet0", LIMIT).unwrap();
    // By QOM path too.
    qmp.device_del("/machine/peripheral/kbd0", LIMIT).unwrap();
    // Gone: QEMU says so, and nothing is waited for.
    assert!(matches!(
        qmp.device_del("tablet0", LIMIT),
        Err(Error::Qmp(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_del_waits_for_device_deleted_tokio() {
    qapi_tests::require_live!();
    let d = system72(&USB);
    let qmp = qapi_types::tokio::Qmp::connect_unix(d.sock())
        .await
        .unwrap();
    qmp.device_del("tablet0", LIMIT).await.unwrap();
    assert!(matches!(
        qmp.device_del("tablet0", LIMIT).await,
        Err(Error::Qmp(_))
    ));
}

fn fdset_ids(sets: Vec<qapi_types::qmp::FdsetInfo>) -> Vec<i64> {
    sets.iter().map(|s| s.fdset_id).collect()
}

#[test]
fn fd_sets_are_removed_by_their_guard_blocking() {
    qapi_tests::require_live!();
    let d = system72(&[]);
    let qmp = Qmp::connect_unix(d.sock()).unwrap();
    let f = std::fs::File::create(d.dir.join("fd-file")).unwrap();
    let set = qmp.add_fd(f.as_fd(), None, Some("first")).unwrap();
    let id = set.info().fdset_id;
    assert_eq!(fdset_ids(qmp.execute(&QueryFdsets {}).unwrap()), [id]);
    drop(set);
    assert!(qmp.execute(&QueryFdsets {}).unwrap().is_empty());
    // Removed explicitly, with the outcome.
    let set = qmp.add_fd(f.as_fd(), Some(7), None).unwrap();
    assert_eq!(set.info().fdset_id, 7);
    set.remove().unwrap();
    assert!(qmp.execute(&QueryFdsets {}).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fd_sets_are_removed_by_their_guard_tokio() {
    qapi_tests::require_live!();
    let d = system72(&[]);
    let qmp = qapi_types::tokio::Qmp::connect_unix(d.sock())
        .await
        .unwrap();
    let f = std::fs::File::create(d.dir.join("fd-file")).unwrap();
    let set = qmp.add_fd(f.as_fd(), None, None).await.unwrap();
    let id = set.info().fdset_id;
    assert_eq!(fdset_ids(qmp.execute(&QueryFdsets {}).await.unwrap()), [id]);
    set.remove().await.unwrap();
    assert!(qmp.execute(&QueryFdsets {}).await.unwrap().is_empty());
    // Dropped: removed from a task on the runtime, before the next
    // command (one connection, commands in order).
    let set = qmp.add_fd(f.as_fd(), None, None).await.unwrap();
    drop(set);
    tokio::task::yield_now().await;
    let mut left = qmp.execute(&QueryFdsets {}).await.unwrap();
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = qmp.execute(&QueryFdsets {}).await.unwrap();
    }
    assert!(left.is_empty(), "{:?}", fdset_ids(left));
}
