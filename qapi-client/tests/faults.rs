//! Faults a real QEMU cannot be made to show, from a fake server on a
//! Unix socket: garbage bytes, a reply cut in half, a disconnect in the
//! middle of a reply, an event flood, a silent peer, a late reply.  Each
//! must end in a typed error within the time limit, never a hang.
//!
//! Where a fault is one the fake QEMU (`qapi-fake`) makes on demand, the
//! test uses it; the hand-written script server stays for what it cannot
//! do (no greeting, a reply cut and then held open, replies to requests
//! never sent, a stale guest-agent reply).

mod common;

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use qapi_types::blocking::{GuestAgent, Qmp};
use qapi_types::{Error, EventItem, Options};
use serde_json::Value;

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 99}, "package": ""}, "capabilities": ["oob"]}}"#;

struct Fake {
    path: PathBuf,
    server: Option<JoinHandle<()>>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            let _ = s.join();
        }
        let _ = std::fs::remove_dir_all(self.path.parent().unwrap());
    }
}

/// A fake server that runs `script` on the first connection.
fn fake(script: impl FnOnce(Peer) + Send + 'static) -> Fake {
    let (listener, path) = common::listen("qapi-fake");
    let server = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        script(Peer {
            reader: BufReader::new(s.try_clone().unwrap()),
            s,
        });
    });
    Fake {
        path,
        server: Some(server),
    }
}

/// The `id` member of a reply to `request`: echoed when the request
/// had one, left out when not, as QEMU does (the clients send a command
/// alone in flight without one).
fn id(request: &Value) -> String {
    match request.get("id") {
        Some(v) => format!(", \"id\": {v}"),
        None => String::new(),
    }
}

struct Peer {
    s: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Peer {
    fn send(&mut self, text: &str) {
        let _ = self.s.write_all(text.as_bytes());
    }

    /// Read one request (the clients end none with a newline); `None`
    /// at the end.
    fn request(&mut self) -> Option<Value> {
        let mut de = serde_json::Deserializer::from_reader(&mut self.reader).into_iter::<Value>();
        match de.next() {
            Some(Ok(v)) => Some(v),
            _ => None,
        }
    }

    /// Greet and accept the capabilities negotiation.
    fn negotiate(&mut self) {
        self.send(&format!("{GREETING}\n"));
        let r = self.request().expect("qmp_capabilities");
        assert_eq!(r["execute"], "qmp_capabilities");
        self.send(&format!("{{\"return\": {{}}{}}}\n", id(&r)));
    }

    /// Wait until the client hangs up.
    fn until_closed(&mut self) {
        while self.request().is_some() {}
    }
}

fn quick() -> Options {
    Options::new()
        .greeting_timeout(Some(Duration::from_millis(500)))
        .command_timeout(Some(Duration::from_millis(500)))
}

fn within<T>(limit: Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let r = f();
    assert!(start.elapsed() < limit, "took {:?}", start.elapsed());
    r
}

/// A fake QEMU (`qapi-fake`) answering `query-status`, and a client
/// with short time limits connected to it in process.
fn fake_qemu(opts: &Options) -> (qapi_fake::Fake, qapi_fake::Server, Qmp) {
    use qapi_types::qmp::{RunState, StatusInfo};
    let fake = qapi_fake::Fake::qmp();
    fake.on::<qapi_types::qmp::commands::QueryStatus>(|_| {
        Ok(StatusInfo {
            running: true,
            status: RunState::Running,
        })
    });
    let (stream, server) = fake.pair();
    let qmp = Qmp::start(stream.into(), opts).unwrap();
    (fake, server, qmp)
}

#[test]
fn garbage_bytes_are_a_protocol_error() {
    let (fake, _server, qmp) = fake_qemu(&quick());
    fake.fault(
        "query-status",
        qapi_fake::Fault::Garbage(b"this is not JSON\n".to_vec()),
    );
    let r = within(Duration::from_secs(2), || {
        qmp.execute_raw("query-status", None)
    });
    match r {
        Err(Error::Protocol(m)) => assert!(m.contains("0x74"), "{m}"),
        other => panic!("{other:?}"),
    }
    // The connection is over; later calls say why at once.
    assert!(matches!(
        qmp.execute_raw("query-status", None),
        Err(Error::Protocol(_))
    ));
    qmp.close();
}

#[test]
fn invalid_json_inside_a_message_is_a_protocol_error() {
    let (fake, _server, qmp) = fake_qemu(&quick());
    fake.fault(
        "query-status",
        qapi_fake::Fault::Garbage(b"{\"return\": nope}\n".to_vec()),
    );
    let r = qmp.execute_raw("query-status", None);
    assert!(matches!(r, Err(Error::Protocol(_))), "{r:?}");
    qmp.close();
}

#[test]
fn a_reply_cut_in_half_times_out_then_a_disconnect_says_so() {
    let f = fake(|mut p| {
        p.negotiate();
        let r = p.request().unwrap();
        p.send(&format!("{{\"return\": {{\"sta{}", id(&r)));
        std::thread::sleep(Duration::from_millis(800));
        // And then hang up in the middle of it.
    });
    let qmp = Qmp::connect_unix_with(&f.path, &quick()).unwrap();
    let r = within(Duration::from_secs(2), || {
        qmp.execute_raw("query-status", None)
    });
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    let sub = qmp.subscribe();
    let r = within(Duration::from_secs(2), || {
        sub.recv_timeout(Duration::from_secs(5))
    });
    match r {
        Err(Error::Protocol(m)) => assert!(m.contains("middle of a message"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_disconnect_mid_reply_fails_every_pending_call() {
    let (fake, _server, qmp) = fake_qemu(&Options::default());
    // Three requests: two never answered, the third's reply cut in half
    // and the line closed.
    fake.fault("query-status", qapi_fake::Fault::NeverAnswer)
        .fault("query-status", qapi_fake::Fault::NeverAnswer)
        .fault("query-status", qapi_fake::Fault::CutReply);
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let q = qmp.clone();
            std::thread::spawn(move || q.execute_raw("query-status", None))
        })
        .collect();
    let start = Instant::now();
    for c in calls {
        let r = c.join().unwrap();
        assert!(r.as_ref().is_err_and(Error::is_fatal), "{r:?}");
    }
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_silent_peer_times_out_at_every_step() {
    // No greeting.
    let f = fake(|mut p| p.until_closed());
    let r = within(Duration::from_secs(2), || {
        Qmp::connect_unix_with(&f.path, &quick())
    });
    assert!(
        matches!(r, Err(Error::Timeout { ref what, .. }) if what == "the greeting"),
        "{r:?}"
    );
    drop(r);
    drop(f);

    // A greeting, then silence.
    let f = fake(|mut p| {
        p.negotiate();
        p.until_closed();
    });
    let qmp = Qmp::connect_unix_with(&f.path, &quick()).unwrap();
    let r = within(Duration::from_secs(2), || qmp.execute_raw("stop", None));
    assert!(
        matches!(r, Err(Error::Timeout { ref what, .. }) if what == "stop"),
        "{r:?}"
    );
    qmp.close();
}

#[test]
fn a_late_reply_is_matched_and_dropped() {
    let (fake, _server, qmp) = fake_qemu(&quick());
    let n = std::sync::atomic::AtomicUsize::new(0);
    fake.on_raw("query-name", move |_| {
        let late = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        Ok(serde_json::json!({"name": if late { "late" } else { "on time" }}))
    });
    fake.fault(
        "query-name",
        qapi_fake::Fault::Delay(Duration::from_millis(700)),
    );
    let r = qmp.execute_raw("query-name", None);
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        qmp.execute_raw("query-name", None).unwrap()["name"],
        "on time"
    );
    qmp.close();
}

#[test]
fn an_event_flood_does_not_stall_replies() {
    let f = fake(|mut p| {
        p.negotiate();
        let r = p.request().unwrap();
        let mut flood = String::new();
        for i in 0..20000 {
            flood.push_str(&format!(
                "{{\"event\": \"FLOOD\", \"data\": {{\"i\": {i}}}, \"timestamp\": {{\"seconds\": 1, \"microseconds\": 2}}}}\n"
            ));
        }
        p.send(&flood);
        p.send(&format!("{{\"return\": {{}}{}}}\n", id(&r)));
        p.until_closed();
    });
    // Reading 20,000 events takes a while in a debug build on a busy
    // machine: a generous limit; the point is that the reply comes.
    let opts = Options::new()
        .command_timeout(Some(Duration::from_secs(20)))
        .event_buffer(100);
    let qmp = Qmp::connect_unix_with(&f.path, &opts).unwrap();
    let slow = qmp.subscribe();
    let fast = qmp.subscribe_filter(|e| e.data["i"].as_u64().is_some_and(|i| i >= 19990));
    within(Duration::from_secs(20), || qmp.execute_raw("x", None)).unwrap();
    match slow.try_recv() {
        Some(EventItem::Lagged(n)) => assert_eq!(n, 19900),
        other => panic!("{other:?}"),
    }
    let Some(EventItem::Event(e)) = slow.try_recv() else {
        panic!()
    };
    assert_eq!(e.data["i"], 19900);
    let mut seen = 0;
    while let Some(EventItem::Event(_)) = fast.try_recv() {
        seen += 1;
    }
    assert_eq!(seen, 10);
    qmp.close();
}

#[test]
fn an_unexpected_message_is_a_protocol_error() {
    let f = fake(|mut p| {
        p.negotiate();
        p.request();
        p.send("{\"return\": {}, \"id\": 12345}\n");
        p.until_closed();
    });
    let qmp = Qmp::connect_unix_with(&f.path, &quick()).unwrap();
    let r = qmp.execute_raw("x", None);
    assert!(
        matches!(r, Err(Error::Protocol(ref m)) if m.contains("no command in flight")),
        "{r:?}"
    );
}

#[test]
fn a_reply_that_does_not_decode_keeps_its_json() {
    let f = fake(|mut p| {
        p.negotiate();
        let r = p.request().unwrap();
        p.send(&format!(
            "{{\"return\": {{\"running\": \"yes\"}}{}}}\n",
            id(&r)
        ));
        p.until_closed();
    });
    let qmp = Qmp::connect_unix_with(&f.path, &quick()).unwrap();
    match qmp.execute(&qapi_types::qmp::commands::QueryStatus {}) {
        Err(Error::Decode { raw, what, .. }) => {
            assert_eq!(raw["running"], "yes");
            assert!(what.contains("query-status"), "{what}");
        }
        other => panic!("{other:?}"),
    }
    // Not fatal: the connection goes on.
    qmp.close();
}

#[tokio::test]
async fn tokio_faults_end_in_typed_errors() {
    // Garbage.
    let f = fake(|mut p| {
        p.negotiate();
        p.request();
        p.send("\x01\x02garbage");
        p.until_closed();
    });
    let qmp = qapi_types::tokio::Qmp::connect_unix_with(&f.path, &quick())
        .await
        .unwrap();
    let r = qmp.execute_raw("x", None).await;
    assert!(matches!(r, Err(Error::Protocol(_))), "{r:?}");
    qmp.close().await;
    drop(f);

    // Silence, then a late reply, then a disconnect mid-reply.
    let f = fake(|mut p| {
        p.negotiate();
        let a = p.request().unwrap();
        std::thread::sleep(Duration::from_millis(700));
        p.send(&format!("{{\"return\": 1{}}}\n", id(&a)));
        let b = p.request().unwrap();
        p.send(&format!("{{\"return\": 2{}}}\n", id(&b)));
        p.request();
        p.send("{\"return\": {\"cut");
    });
    let qmp = qapi_types::tokio::Qmp::connect_unix_with(&f.path, &quick())
        .await
        .unwrap();
    let sub = qmp.subscribe();
    let r = qmp.execute_raw("a", None).await;
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(qmp.execute_raw("b", None).await.unwrap(), 2);
    let r = qmp.execute_raw("c", None).await;
    assert!(r.as_ref().is_err_and(Error::is_fatal), "{r:?}");
    let r = sub.recv_timeout(Duration::from_secs(2)).await;
    assert!(r.as_ref().is_err_and(Error::is_fatal), "{r:?}");
    drop(f);

    // No greeting.
    let f = fake(|mut p| p.until_closed());
    let r = qapi_types::tokio::Qmp::connect_unix_with(&f.path, &quick()).await;
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
}

/// A guest agent that holds a stale reply and answers the resync only
/// after the 0xFF it sends first.
#[test]
fn guest_agent_skips_stale_replies_and_resyncs_after_a_timeout() {
    let f = fake(|mut p| {
        let mut raw = Vec::new();
        // First sync: stale junk before the delimiter.
        let mut byte = [0u8; 1];
        use std::io::Read;
        p.reader.read_exact(&mut byte).unwrap();
        assert_eq!(byte[0], 0xff);
        let sync = p.request().unwrap();
        assert_eq!(sync["execute"], "guest-sync-delimited");
        raw.extend_from_slice(b"{\"return\": \"stale\"}\n\xff");
        raw.extend_from_slice(format!("{{\"return\": {}}}\n", sync["arguments"]["id"]).as_bytes());
        p.s.write_all(&raw).unwrap();
        // A command the agent never answers.
        p.request().unwrap();
        // The client resyncs after its time limit.
        p.reader.read_exact(&mut byte).unwrap();
        assert_eq!(byte[0], 0xff);
        let sync = p.request().unwrap();
        let mut raw = b"{\"return\": \"the late one\"}\n\xff".to_vec();
        raw.extend_from_slice(format!("{{\"return\": {}}}\n", sync["arguments"]["id"]).as_bytes());
        p.s.write_all(&raw).unwrap();
        let _ = p.request().unwrap();
        p.send("{\"return\": {\"version\": \"9\", \"supported_commands\": []}}\n");
        p.until_closed();
    });
    let ga = GuestAgent::start(
        qapi_types::blocking::Stream::connect_unix(&f.path, None).unwrap(),
        &quick(),
    )
    .unwrap();
    let r = ga.execute_raw("guest-never", None);
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    let info = ga
        .execute(&qapi_types::qga::commands::GuestInfo {})
        .unwrap();
    assert_eq!(info.version, "9");
}

/// A server whose first `query-qmp-schema` reply is not a schema and
/// whose second is; it records every command it is sent.
fn schema_server(log: std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> Fake {
    fake(move |mut p| {
        p.negotiate();
        let mut fetches = 0;
        while let Some(r) = p.request() {
            let name = r["execute"].as_str().unwrap_or("?").to_string();
            let reply = match name.as_str() {
                "query-qmp-schema" => {
                    fetches += 1;
                    if fetches == 1 {
                        serde_json::json!([{"name": "query-version"}])
                    } else {
                        serde_json::json!([
                            {"name": "query-version", "meta-type": "command",
                             "arg-type": "0", "ret-type": "0"},
                            {"name": "0", "meta-type": "object", "members": []}
                        ])
                    }
                }
                _ => serde_json::json!({}),
            };
            log.lock().unwrap().push(name);
            let mut msg = serde_json::json!({ "return": reply });
            if let Some(id) = r.get("id") {
                msg["id"] = id.clone();
            }
            p.send(&format!("{msg}\n"));
        }
    })
}

#[test]
fn the_schema_is_fetched_once_and_a_bad_one_is_an_error() {
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let f = schema_server(log.clone());
    let qmp = Qmp::connect_unix_with(&f.path, &quick().check_commands(true)).unwrap();
    // The first checked command fetches the schema, which does not read.
    match qmp.execute_raw("query-version", None) {
        Err(Error::Decode { what, error, .. }) => {
            assert!(what.contains("query-qmp-schema"), "{what}");
            assert!(error.to_string().contains("entry 0"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    // Eight callers at once: one fetch, then their eight commands.
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| qmp.execute_raw("query-version", None).unwrap());
        }
    });
    // Unknown commands are not sent.
    let r = qmp.execute_raw("query-nothing", None);
    assert!(
        matches!(r, Err(Error::Unsupported(ref u)) if u.unknown.len() == 1),
        "{r:?}"
    );
    assert!(qmp
        .supports::<qapi_types::qmp::commands::QueryVersion>()
        .unwrap());
    qmp.close();
    drop(f);
    let mut want = vec!["query-qmp-schema"; 2];
    want.extend(["query-version"; 8]);
    assert_eq!(*log.lock().unwrap(), want);
}

#[test]
fn the_tokio_client_fetches_the_schema_once() {
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let f = schema_server(log.clone());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let opts = quick().check_commands(true);
        let qmp = qapi_types::tokio::Qmp::connect_unix_with(&f.path, &opts)
            .await
            .unwrap();
        let e = qmp.schema().await.unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e}");
        let (a, b, c, d) = tokio::join!(
            qmp.execute_raw("query-version", None),
            qmp.execute_raw("query-version", None),
            qmp.schema(),
            qmp.schema(),
        );
        a.unwrap();
        b.unwrap();
        assert!(std::sync::Arc::ptr_eq(&c.unwrap(), &d.unwrap()));
        let r = qmp.execute_raw("query-nothing", None).await;
        assert!(matches!(r, Err(Error::Unsupported(_))), "{r:?}");
    });
    drop(rt);
    drop(f);
    assert_eq!(
        *log.lock().unwrap(),
        [
            "query-qmp-schema",
            "query-qmp-schema",
            "query-version",
            "query-version"
        ]
    );
}

/// QEMU 7.2 can send an event ahead of the greeting to a client that
/// connects as the machine starts (seen in CI: `RESUME`, then the
/// greeting): both clients skip it and negotiate; any other message
/// before the greeting is still a protocol error.
#[tokio::test]
async fn an_event_before_the_greeting_is_skipped() {
    const EARLY: &str =
        "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"RESUME\"}\n";
    let script = |mut p: Peer| {
        p.send(EARLY);
        p.send(EARLY);
        p.negotiate();
        let r = p.request().unwrap();
        p.send(&format!("{{\"return\": 7{}}}\n", id(&r)));
        p.until_closed();
    };
    let f = fake(script);
    let qmp = Qmp::connect_unix_with(&f.path, &quick()).unwrap();
    assert_eq!(qmp.greeting().version.0, 99);
    assert_eq!(qmp.execute_raw("x", None).unwrap(), Value::from(7));
    drop(qmp);
    drop(f);

    let f = fake(script);
    let qmp = qapi_types::tokio::Qmp::connect_unix_with(&f.path, &quick())
        .await
        .unwrap();
    assert_eq!(qmp.execute_raw("x", None).await.unwrap(), Value::from(7));
    qmp.close().await;
    drop(f);

    let f = fake(|mut p| {
        p.send("{\"return\": {}}\n");
        p.until_closed();
    });
    let r = Qmp::connect_unix_with(&f.path, &quick());
    assert!(
        matches!(r, Err(Error::Protocol(ref m)) if m.contains("expected the QMP greeting")),
        "{r:?}"
    );
}
