//! The clients against a real QEMU: `/usr/bin/qemu-storage-daemon`
//! (QEMU 10.0.2).  Negotiation with and without oob, pipelining from
//! many tasks and threads, every way to connect, `pretty=on`, a
//! multi-megabyte reply, typed events and errors, disconnects.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qapi_tests::live::{spawn, spawn_in, temp_dir, Process};
use qapi_types::blocking::{self, Qmp};
use qapi_types::qmp::commands::{QomGet, QueryNamedBlockNodes, QueryVersion};
use qapi_types::qmp::events::Event;
use qapi_types::qmp::JobStatus;
use qapi_types::{Error, EventItem, Options};
use serde_json::json;

const DAEMON: &str = "/usr/bin/qemu-storage-daemon";

fn daemon(monitor_opts: &str) -> Process {
    let monitor = format!("chardev=m{monitor_opts}");
    spawn(
        DAEMON,
        &[
            "--chardev",
            "socket,path={sock},server=on,wait=off,id=m",
            "--monitor",
            &monitor,
        ],
    )
}

fn throttle_group(qmp: &Qmp, i: u64) {
    qmp.execute_raw(
        "object-add",
        Some(
            &json!({"qom-type": "throttle-group", "id": format!("tg{i}"),
                     "limits": {"iops-total": 1000 + i}}),
        ),
    )
    .unwrap();
}

fn qom_limits(i: u64) -> QomGet {
    QomGet {
        path: format!("/objects/tg{i}"),
        property: "limits".into(),
    }
}

#[test]
fn negotiates_with_and_without_oob_and_reconnects() {
    qapi_tests::require_live!();
    let d = daemon("");
    let qmp = Qmp::connect_unix(d.sock()).unwrap();
    assert_eq!(qmp.greeting().version.0, 10, "{}", qmp.greeting());
    assert!(qmp.greeting().offers("oob"));
    assert!(qmp.oob(), "oob is enabled when offered");
    let v = qmp.execute(&QueryVersion {}).unwrap();
    assert_eq!((v.qemu.major, v.qemu.minor, v.qemu.micro), (10, 0, 2));
    qmp.close();
    assert!(matches!(
        qmp.execute(&QueryVersion {}),
        Err(Error::Disconnected)
    ));

    // A fresh client on the same address negotiates again; this time
    // without oob.
    let qmp = Qmp::connect_unix_with(d.sock(), &Options::new().oob(false)).unwrap();
    assert!(!qmp.oob());
    qmp.execute(&QueryVersion {}).unwrap();
}

#[test]
fn errors_keep_their_class() {
    qapi_tests::require_live!();
    let d = daemon("");
    let qmp = Qmp::connect_unix(d.sock()).unwrap();
    match qmp.execute_raw("no-such-command", None) {
        Err(Error::Qmp(e)) => assert_eq!(e.class, "CommandNotFound", "{e}"),
        other => panic!("{other:?}"),
    }
    match qmp.execute(&QomGet {
        path: "/nowhere".into(),
        property: "x".into(),
    }) {
        Err(Error::Qmp(e)) => {
            assert_eq!(e.class, "DeviceNotFound", "{e}");
            assert!(e.desc.contains("/nowhere"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // The connection is still fine.
    qmp.execute(&QueryVersion {}).unwrap();
}

#[test]
fn pipelined_from_eight_threads_id_on_every_command() {
    qapi_tests::require_live!();
    pipelined_threads(&Options::default().ids(qapi_types::IdPolicy::Always));
}

/// The default: ids only when needed.
#[test]
fn pipelined_from_eight_threads() {
    qapi_tests::require_live!();
    pipelined_threads(&Options::default());
}

fn pipelined_threads(opts: &Options) {
    let d = daemon("");
    let qmp = Qmp::connect_unix_with(d.sock(), opts).unwrap();
    for i in 0..8 {
        throttle_group(&qmp, i);
    }
    let threads: Vec<_> = (0..8u64)
        .map(|i| {
            let qmp = qmp.clone();
            std::thread::spawn(move || {
                for j in 0..150u64 {
                    if j % 3 == 2 {
                        let e = qmp
                            .execute(&QomGet {
                                path: format!("/objects/missing-{i}-{j}"),
                                property: "x".into(),
                            })
                            .unwrap_err();
                        assert!(e.to_string().contains(&format!("missing-{i}-{j}")), "{e}");
                    } else {
                        let v = qmp.execute(&qom_limits(i)).unwrap();
                        assert_eq!(v["iops-total"], 1000 + i, "thread {i} got {v}");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_from_eight_tasks_id_on_every_command() {
    qapi_tests::require_live!();
    pipelined_tasks(&Options::default().ids(qapi_types::IdPolicy::Always)).await;
}

/// The default: ids only when needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_from_eight_tasks() {
    qapi_tests::require_live!();
    pipelined_tasks(&Options::default()).await;
}

async fn pipelined_tasks(opts: &Options) {
    let d = daemon("");
    let qmp = qapi_types::tokio::Qmp::connect_unix_with(d.sock(), opts)
        .await
        .unwrap();
    assert!(qmp.oob());
    for i in 0..8u64 {
        qmp.execute_raw(
            "object-add",
            Some(
                &json!({"qom-type": "throttle-group", "id": format!("tg{i}"),
                         "limits": {"iops-total": 1000 + i}}),
            ),
        )
        .await
        .unwrap();
    }
    let tasks: Vec<_> = (0..8u64)
        .map(|i| {
            let qmp = qmp.clone();
            tokio::spawn(async move {
                for j in 0..150u64 {
                    if j % 3 == 2 {
                        let e = qmp
                            .execute(&QomGet {
                                path: format!("/objects/missing-{i}-{j}"),
                                property: "x".into(),
                            })
                            .await
                            .unwrap_err();
                        assert!(e.to_string().contains(&format!("missing-{i}-{j}")), "{e}");
                    } else {
                        let v = qmp.execute(&qom_limits(i)).await.unwrap();
                        assert_eq!(v["iops-total"], 1000 + i, "task {i} got {v}");
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// Many requests written before any reply is read: the writes of all
/// tasks interleave on the socket, the replies come back in any order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_in_flight_at_once() {
    qapi_tests::require_live!();
    let d = daemon("");
    let qmp = qapi_types::tokio::Qmp::connect_unix(d.sock())
        .await
        .unwrap();
    let calls = (0..500).map(|i| {
        let qmp = qmp.clone();
        async move {
            qmp.execute_raw(
                "blockdev-add",
                Some(&json!({"driver": "null-co", "node-name": format!("n{i}")})),
            )
            .await
        }
    });
    let handles: Vec<_> = calls.map(tokio::spawn).collect();
    for h in handles {
        h.await.unwrap().unwrap();
    }
    let nodes = qmp
        .execute(&QueryNamedBlockNodes { flat: Some(true) })
        .await
        .unwrap();
    assert_eq!(nodes.len(), 500);
}

#[test]
fn pretty_output_and_a_multi_megabyte_reply() {
    qapi_tests::require_live!();
    let d = daemon(",pretty=on");
    let qmp = Qmp::connect_unix(d.sock()).unwrap();
    let v = qmp.execute(&QueryVersion {}).unwrap();
    assert_eq!(v.qemu.major, 10);
    let adders: Vec<_> = (0..4)
        .map(|t| {
            let qmp = qmp.clone();
            std::thread::spawn(move || {
                for i in (t..3000).step_by(4) {
                    qmp.execute_raw(
                        "blockdev-add",
                        Some(
                            &json!({"driver": "null-co", "node-name": format!("node{i}"),
                                     "size": 1048576}),
                        ),
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for a in adders {
        a.join().unwrap();
    }
    let raw = qmp
        .execute_raw("query-named-block-nodes", None)
        .unwrap()
        .to_string();
    // Pretty-printed on the wire it is larger still.
    assert!(raw.len() > 1 << 20, "only {} bytes", raw.len());
    let nodes = qmp.execute(&QueryNamedBlockNodes { flat: None }).unwrap();
    assert_eq!(nodes.len(), 3000);
    let schema = qmp.execute_raw("query-qmp-schema", None).unwrap();
    assert!(schema.as_array().is_some_and(|a| a.len() > 500));
}

#[test]
fn a_message_over_the_limit_is_an_error() {
    qapi_tests::require_live!();
    let d = daemon("");
    let qmp = Qmp::connect_unix_with(d.sock(), &Options::new().max_message(64 * 1024)).unwrap();
    match qmp.execute_raw("query-qmp-schema", None) {
        Err(Error::TooLarge { limit }) => assert_eq!(limit, 64 * 1024),
        Err(e) => panic!("{e}"),
        Ok(v) => panic!("a reply of {} bytes was accepted", v.to_string().len()),
    }
    // The connection is over: the stream cannot be trusted past it.
    assert!(matches!(
        qmp.execute(&QueryVersion {}),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn job_status_changes_arrive_as_typed_events() {
    qapi_tests::require_live!();
    let d = daemon("");
    let qmp = Qmp::connect_unix(d.sock()).unwrap();
    let all = qmp.subscribe();
    let jobs = qmp.subscribe_filter(|e| e.name == "JOB_STATUS_CHANGE");
    let image = d.dir.join("disk.img");
    qmp.execute_raw(
        "blockdev-create",
        Some(&json!({"job-id": "j0", "options": {"driver": "file",
                     "filename": image, "size": 1048576}})),
    )
    .unwrap();
    let mut statuses = Vec::new();
    while statuses.last() != Some(&JobStatus::Concluded) {
        let EventItem::Event(raw) = jobs.recv_timeout(Duration::from_secs(10)).unwrap() else {
            panic!("lagged")
        };
        let ev = raw
            .decode::<qapi_types::qmp::events::JobStatusChange>()
            .unwrap()
            .unwrap();
        assert_eq!(ev.id, "j0");
        statuses.push(ev.status);
    }
    assert_eq!(statuses[0], JobStatus::Created);
    assert!(statuses.contains(&JobStatus::Running));
    qmp.execute_raw("job-dismiss", Some(&json!({"id": "j0"})))
        .unwrap();
    let mut names = Vec::new();
    loop {
        let EventItem::Event(raw) = all.recv_timeout(Duration::from_secs(10)).unwrap() else {
            panic!("lagged")
        };
        match raw.event::<Event>().expect("a known event decodes") {
            Event::JobStatusChange(e) if e.status == JobStatus::Null => break,
            e => names.push(e.name().to_string()),
        }
    }
    assert!(names.iter().all(|n| n == "JOB_STATUS_CHANGE"), "{names:?}");
}

#[test]
fn a_slow_subscriber_lags_and_replies_still_flow() {
    qapi_tests::require_live!();
    let d = daemon("");
    let qmp = Qmp::connect_unix_with(d.sock(), &Options::new().event_buffer(2)).unwrap();
    let slow = qmp.subscribe();
    for i in 0..3 {
        let image = d.dir.join(format!("disk{i}.img"));
        qmp.execute_raw(
            "blockdev-create",
            Some(
                &json!({"job-id": format!("j{i}"), "options": {"driver": "file",
                         "filename": image, "size": 65536}}),
            ),
        )
        .unwrap();
    }
    // Let the jobs finish while nobody reads events; commands still work.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let jobs = qmp.execute_raw("query-jobs", None).unwrap();
        if jobs
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["status"] == "concluded")
        {
            break;
        }
        assert!(Instant::now() < deadline, "jobs did not conclude: {jobs}");
        std::thread::sleep(Duration::from_millis(20));
    }
    match slow.recv_timeout(Duration::from_secs(5)).unwrap() {
        EventItem::Lagged(n) => assert!(n >= 3, "lagged by {n}"),
        other => panic!("expected a lag report, got {other:?}"),
    }
    assert!(matches!(slow.try_recv(), Some(EventItem::Event(_))));
}

#[test]
fn a_killed_daemon_fails_pending_calls_and_ends_subscriptions() {
    qapi_tests::require_live!();
    let mut d = daemon("");
    let qmp = Qmp::connect_unix(d.sock()).unwrap();
    let sub = qmp.subscribe();
    let waiter = std::thread::spawn(move || sub.recv());
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let _ = d.child().kill();
    let r = waiter.join().unwrap();
    assert!(matches!(r, Err(Error::Disconnected)), "{r:?}");
    assert!(matches!(
        qmp.execute(&QueryVersion {}),
        Err(Error::Disconnected)
    ));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn tokio_disconnect_ends_everything() {
    qapi_tests::require_live!();
    let mut d = daemon("");
    let qmp = qapi_types::tokio::Qmp::connect_unix(d.sock())
        .await
        .unwrap();
    let sub = qmp.subscribe();
    let _ = d.child().kill();
    let r = sub.recv_timeout(Duration::from_secs(5)).await;
    assert!(matches!(r, Err(Error::Disconnected)), "{r:?}");
    assert!(matches!(
        qmp.execute(&QueryVersion {}).await,
        Err(Error::Disconnected)
    ));
}

#[test]
fn over_stdio() {
    qapi_tests::require_live!();
    let mut d = spawn_in(
        temp_dir(),
        DAEMON,
        &["--chardev", "stdio,id=m", "--monitor", "chardev=m"],
        Stdio::piped(),
        Stdio::piped(),
    );
    let stream = blocking::Stream::from_child(d.child()).unwrap();
    let qmp = Qmp::start(stream, &Options::default()).unwrap();
    assert_eq!(qmp.execute(&QueryVersion {}).unwrap().qemu.major, 10);
}

#[tokio::test]
async fn over_stdio_with_tokio() {
    qapi_tests::require_live!();
    let dir = temp_dir();
    let mut child = tokio::process::Command::new(DAEMON)
        .args(["--chardev", "stdio,id=m", "--monitor", "chardev=m"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .current_dir(&dir)
        .spawn()
        .unwrap();
    let stream = qapi_types::tokio::Stream::from_child(&mut child).unwrap();
    let qmp = qapi_types::tokio::Qmp::start(stream, &Options::default())
        .await
        .unwrap();
    assert_eq!(qmp.execute(&QueryVersion {}).await.unwrap().qemu.major, 10);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn over_tcp() {
    qapi_tests::require_live!();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let chardev = format!("socket,host=127.0.0.1,port={port},server=on,wait=off,id=m");
    let _d = spawn(DAEMON, &["--chardev", &chardev, "--monitor", "chardev=m"]);
    let addr = format!("127.0.0.1:{port}");
    // The daemon may not listen yet: retry within a time limit.
    let deadline = Instant::now() + Duration::from_secs(10);
    let qmp = loop {
        match Qmp::connect_tcp(&addr, &Options::default()) {
            Ok(q) => break q,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(qmp.execute(&QueryVersion {}).unwrap().qemu.major, 10);
    // File descriptors need a Unix socket: refused before sending, and
    // the connection goes on.
    let file = std::fs::File::open("/dev/null").unwrap();
    let r = qmp.execute_with_fds(&QueryVersion {}, &[std::os::fd::AsFd::as_fd(&file)]);
    assert!(matches!(r, Err(Error::Unsupported(_))), "{r:?}");
    assert_eq!(qmp.execute(&QueryVersion {}).unwrap().qemu.major, 10);
}

#[test]
fn qemu_dials_in() {
    qapi_tests::require_live!();
    let dir = temp_dir();
    let path = dir.join("listen.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let chardev = format!("socket,path={},server=off,id=m", path.display());
    let _d = spawn_in(
        dir.clone(),
        DAEMON,
        &["--chardev", &chardev, "--monitor", "chardev=m"],
        Stdio::null(),
        Stdio::null(),
    );
    let qmp = Qmp::accept(&listener, &Options::default()).unwrap();
    assert_eq!(qmp.execute(&QueryVersion {}).unwrap().qemu.major, 10);
}

#[tokio::test]
async fn qemu_dials_in_with_tokio() {
    qapi_tests::require_live!();
    let dir = temp_dir();
    let path = dir.join("listen.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let chardev = format!("socket,path={},server=off,id=m", path.display());
    let _d = spawn_in(
        dir.clone(),
        DAEMON,
        &["--chardev", &chardev, "--monitor", "chardev=m"],
        Stdio::null(),
        Stdio::null(),
    );
    let qmp = qapi_types::tokio::Qmp::accept(&listener, &Options::default())
        .await
        .unwrap();
    assert_eq!(qmp.execute(&QueryVersion {}).await.unwrap().qemu.major, 10);
}

#[test]
fn an_already_open_socket() {
    qapi_tests::require_live!();
    let d = daemon("");
    let s = blocking::Stream::connect_unix(d.sock(), Some(Duration::from_secs(10))).unwrap();
    let blocking::Stream::Unix(sock) = s else {
        unreachable!()
    };
    let qmp = Qmp::start(sock.into(), &Options::default()).unwrap();
    assert_eq!(qmp.execute(&QueryVersion {}).unwrap().qemu.major, 10);
    let _ = Arc::new(qmp);
}
