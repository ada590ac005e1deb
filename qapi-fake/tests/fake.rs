//! The fake QEMU: the protocol's rules, the checks, handlers, events,
//! faults, and bad input (which never panics or hangs it).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use qapi_fake::{Fake, Fault, Greeting, QmpError, QmpErrorExt};
use qapi_types::blocking::{GuestAgent, Qmp};
use qapi_types::qmp::commands::{QueryStatus, QueryVersion};
use qapi_types::qmp::{RunState, StatusInfo};
use qapi_types::{Error, Options};
use serde_json::{json, Value};

/// A bare line client: what is sent is exactly what the test wrote.
struct Line {
    w: UnixStream,
    r: BufReader<UnixStream>,
}

impl Line {
    fn new(s: UnixStream) -> Line {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Line {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    fn ask(&mut self, req: &str) -> Value {
        self.w.write_all(req.as_bytes()).unwrap();
        self.w.write_all(b"\n").unwrap();
        self.read()
    }
}

fn error(v: &Value) -> (String, String) {
    let e = &v["error"];
    (
        e["class"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {v}"))
            .into(),
        e["desc"].as_str().unwrap().into(),
    )
}

fn qmp(fake: &Fake) -> (Qmp, qapi_fake::Server) {
    let (s, server) = fake.pair();
    (Qmp::start(s.into(), &Options::default()).unwrap(), server)
}

fn qmp_error(r: qapi_types::Result<Value>) -> (String, String) {
    match r {
        Err(Error::Qmp(e)) => (e.class, e.desc),
        other => panic!("expected a QMP error, got {other:?}"),
    }
}

#[test]
fn negotiation_rules_and_ids() {
    let fake = Fake::qmp();
    fake.greeting(Greeting {
        version: (9, 2, 0),
        package: "test".into(),
        capabilities: vec![],
    });
    let (s, _server) = fake.pair();
    let mut c = Line::new(s);
    let g = c.read();
    assert_eq!(
        g["QMP"]["version"]["qemu"],
        json!({"major": 9, "minor": 2, "micro": 0})
    );
    assert_eq!(g["QMP"]["capabilities"], json!([]));
    let r = c.ask(r#"{"execute": "query-status", "id": 1}"#);
    assert_eq!(
        error(&r),
        (
            "CommandNotFound".into(),
            "Expecting capabilities negotiation with 'qmp_capabilities'".into()
        )
    );
    assert_eq!(r["id"], 1);
    let r = c.ask(r#"{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}"#);
    assert_eq!(error(&r).1, "Capability 'oob' not available");
    let r = c.ask(r#"{"execute": "qmp_capabilities", "arguments": {"enable": ["nope"]}}"#);
    assert_eq!(error(&r).1, "Parameter 'null' does not accept value 'nope'");
    let r = c.ask(r#"{"execute": "qmp_capabilities", "id": {"a": [1, "b"]}}"#);
    assert_eq!(r, json!({"return": {}, "id": {"a": [1, "b"]}}));
    let r = c.ask(r#"{"execute": "qmp_capabilities"}"#);
    assert_eq!(
        error(&r),
        (
            "CommandNotFound".into(),
            "Capabilities negotiation is already complete, command ignored".into()
        )
    );
    // oob was not negotiated: exec-oob is an unknown member.
    let r = c.ask(r#"{"exec-oob": "yank", "id": "y"}"#);
    assert_eq!(error(&r).1, "QMP input member 'exec-oob' is unexpected");
    assert_eq!(r["id"], "y");
    let r = c.ask(r#"{"execute": "no-such"}"#);
    assert_eq!(
        error(&r),
        (
            "CommandNotFound".into(),
            "The command no-such has not been found".into()
        )
    );
    let r = c.ask(r#"[1]"#);
    assert_eq!(error(&r).1, "QMP input must be a JSON object");
    let r = c.ask(r#"{"execute": "query-status", "arguments": []}"#);
    assert_eq!(
        error(&r).1,
        "QMP input member 'arguments' must be an object"
    );
    // query-qmp-schema is answered from the schema.
    let r = c.ask(r#"{"execute": "query-qmp-schema"}"#);
    assert!(r["return"].as_array().unwrap().len() > 500);
}

#[test]
fn exec_oob_once_negotiated() {
    let fake = Fake::qmp();
    fake.on_raw("yank", |args| {
        assert_eq!(args["instances"], json!([]));
        Ok(Value::Null)
    });
    let (s, _server) = fake.pair();
    let mut c = Line::new(s);
    c.read();
    c.ask(r#"{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}"#);
    let r = c.ask(r#"{"exec-oob": "yank", "arguments": {"instances": []}, "id": 3}"#);
    assert_eq!(r, json!({"return": {}, "id": 3}));
    let r = c.ask(r#"{"exec-oob": "query-status", "id": 4}"#);
    assert_eq!(error(&r).1, "The command query-status does not support OOB");
    let r = c.ask(r#"{"exec-oob": "yank", "execute": "yank"}"#);
    assert_eq!(
        error(&r).1,
        "QMP input member 'execute' clashes with 'exec-oob'"
    );
}

#[test]
fn arguments_checked_as_qemu_does() {
    let fake = Fake::qmp();
    fake.on_raw("blockdev-add", |_| Ok(Value::Null));
    let (q, _server) = qmp(&fake);
    let cases = [
        (
            "blockdev-add",
            json!({"driver": "qcow2", "node-name": "d", "file": {"filename": "x"}}),
            "Parameter 'file.driver' is missing",
        ),
        (
            "blockdev-add",
            json!({"driver": "raw", "node-name": "d", "file": "f", "size": "1G"}),
            "Invalid parameter type for 'size', expected: integer",
        ),
        (
            "blockdev-add",
            json!({"driver": "no-such", "node-name": "d"}),
            "Parameter 'driver' does not accept value 'no-such'",
        ),
        (
            "blockdev-add",
            json!({"driver": "null-co", "node-name": "d", "colour": "red"}),
            "Parameter 'colour' is unexpected",
        ),
        (
            "blockdev-add",
            json!({"driver": "file", "node-name": "d", "filename": "f", "cache": {"direct": 1}}),
            "Invalid parameter type for 'cache.direct', expected: boolean",
        ),
        (
            "query-status",
            json!({"verbose": true}),
            "Parameter 'verbose' is unexpected",
        ),
        (
            "block-dirty-bitmap-merge",
            json!({"node": "n", "target": "t", "bitmaps": [{"node": "n"}]}),
            "Parameter 'bitmaps[0].name' is missing",
        ),
    ];
    for (cmd, args, desc) in cases {
        let (class, got) = qmp_error(q.execute_raw(cmd, Some(&args)));
        assert_eq!(
            (class.as_str(), got.as_str()),
            ("GenericError", desc),
            "{cmd} {args}"
        );
    }
    // Valid: handed to the handler.
    let ok = json!({"driver": "null-co", "node-name": "d", "size": 1024});
    assert_eq!(q.execute_raw("blockdev-add", Some(&ok)).unwrap(), json!({}));
    // Valid but nobody answers it: said so, never a success.
    let (_, desc) = qmp_error(q.execute_raw("query-block", None));
    assert!(
        desc.contains("no handler for command query-block"),
        "{desc}"
    );
}

#[test]
fn typed_handlers_state_and_returns_checked() {
    let fake = Fake::qmp();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c2 = calls.clone();
    fake.on::<QueryStatus>(move |QueryStatus {}| {
        c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(StatusInfo {
            running: false,
            status: RunState::Prelaunch,
        })
    });
    // A raw handler that returns what the schema does not allow.
    fake.on_raw("query-version", |_| Ok(json!({"qemu": {"major": "ten"}})));
    let (q, server) = qmp(&fake);
    let st = q.execute(&QueryStatus {}).unwrap();
    assert_eq!(st.status, RunState::Prelaunch);
    q.execute(&QueryStatus {}).unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    match q.execute(&QueryVersion {}) {
        Err(Error::Qmp(e)) => assert_eq!(
            e.desc,
            "fake QEMU: the handler of query-version returned a value the schema rejects: \
             Invalid parameter type for 'qemu.major', expected: integer"
        ),
        other => panic!("{other:?}"),
    }
    // A handler's own error goes to the client as it is.
    fake.on_raw("query-block", |_| Err(QmpError::generic("no block today")));
    assert_eq!(
        qmp_error(q.execute_raw("query-block", None)).1,
        "no block today"
    );
    assert_eq!(
        server.handle().commands(),
        [
            "qmp_capabilities",
            "query-status",
            "query-status",
            "query-version",
            "query-block"
        ]
    );
}

#[test]
fn events_with_timestamps() {
    let fake = Fake::qmp();
    let (q, _server) = qmp(&fake);
    let sub = q.subscribe();
    fake.emit_raw("STOP", Value::Null).unwrap();
    fake.emit_raw(
        "DEVICE_DELETED",
        json!({"device": "d0", "path": "/machine/peripheral/d0"}),
    )
    .unwrap();
    // Checked against the schema.
    let e = fake
        .emit_raw("DEVICE_DELETED", json!({"device": "d0"}))
        .unwrap_err();
    assert!(e.desc.ends_with("Parameter 'path' is missing"), "{e}");
    assert!(fake.emit_raw("NO_SUCH_EVENT", Value::Null).is_err());
    let mut got = Vec::new();
    while got.len() < 2 {
        if let qapi_types::EventItem::Event(e) = sub.recv_timeout(Duration::from_secs(10)).unwrap()
        {
            got.push(e);
        }
    }
    assert_eq!(got[0].name, "STOP");
    assert_eq!(got[1].name, "DEVICE_DELETED");
    assert_eq!(got[1].data["device"], "d0");
    assert!(
        got[1].timestamp.seconds > 1_600_000_000,
        "{:?}",
        got[1].timestamp
    );
}

#[test]
fn guest_agent_mode() {
    let fake = Fake::guest_agent();
    fake.on_raw("guest-get-host-name", |_| {
        Ok(json!({"host-name": "fakehost"}))
    });
    let (s, _server) = fake.pair();
    // The 0xFF delimiter before guest-sync-delimited's reply.
    let mut raw = s.try_clone().unwrap();
    // The client's 0xFF first resets the parser, silently: the first
    // byte back is the reply's delimiter, not an error.
    raw.write_all(b"{\"half\": \xff").unwrap();
    raw.write_all(br#"{"execute": "guest-sync-delimited", "arguments": {"id": 42}}"#)
        .unwrap();
    let mut b = [0u8; 1];
    raw.read_exact(&mut b).unwrap();
    assert_eq!(b[0], 0xFF);
    let mut line = String::new();
    BufReader::new(&raw).read_line(&mut line).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&line).unwrap(),
        json!({"return": 42})
    );
    let ga = GuestAgent::start(s.into(), &Options::default()).unwrap();
    let v = ga.execute_raw("guest-get-host-name", None).unwrap();
    assert_eq!(v["host-name"], "fakehost");
    let (_, desc) = qmp_error(ga.execute_raw("guest-exec", Some(&json!({"arg": ["x"]}))));
    assert_eq!(desc, "Parameter 'path' is missing");
}

fn short() -> Options {
    let mut o = Options::default();
    o.command_timeout = Some(Duration::from_millis(300));
    o
}

#[test]
fn faults_on_demand() {
    let fake = Fake::qmp();
    fake.on::<QueryStatus>(|_| {
        Ok(StatusInfo {
            running: true,
            status: RunState::Running,
        })
    });
    let start = || {
        let (s, server) = fake.pair();
        (Qmp::start(s.into(), &short()).unwrap(), server)
    };
    // A delay within the limit, then one beyond it.
    let (q, _s) = start();
    fake.fault("query-status", Fault::Delay(Duration::from_millis(20)));
    q.execute(&QueryStatus {}).unwrap();
    fake.fault("query-status", Fault::NeverAnswer);
    assert!(matches!(
        q.execute(&QueryStatus {}),
        Err(Error::Timeout { .. })
    ));
    // Out of order: the first reply comes after the second.
    let (q, _s) = start();
    fake.fault("query-status", Fault::OutOfOrder);
    std::thread::scope(|sc| {
        let a = sc.spawn(|| q.execute(&QueryStatus {}));
        std::thread::sleep(Duration::from_millis(50));
        let b = q.execute(&QueryStatus {});
        assert!(b.is_ok() && a.join().unwrap().is_ok());
    });
    // A reply cut in half, then the line closed.
    let (q, _s) = start();
    fake.fault("*", Fault::CutReply);
    assert!(q.execute(&QueryStatus {}).is_err());
    // Garbage instead of a reply.
    let (q, _s) = start();
    fake.fault("query-status", Fault::Garbage(b"}}not json\r\n".to_vec()));
    assert!(q.execute(&QueryStatus {}).is_err());
    // Hang up.
    let (q, _s) = start();
    fake.fault("query-status", Fault::HangUp);
    assert!(matches!(
        q.execute(&QueryStatus {}),
        Err(Error::Disconnected)
    ));
}

/// Garbage, requests cut off by a hang-up, absurd nesting: each client
/// gets errors or nothing, the fake keeps serving, and 1,000 clients one
/// after another each get their answer.
#[test]
fn bad_input_never_breaks_the_fake() {
    let dir = std::env::temp_dir().join(format!("qapi-fake-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fake.sock");
    let fake = Fake::qmp();
    fake.on::<QueryStatus>(|_| {
        Ok(StatusInfo {
            running: true,
            status: RunState::Running,
        })
    });
    let server = fake.serve_unix(&path).unwrap();
    let garbage: [&[u8]; 8] = [
        b"\xff\xfe\x00garbage\n",
        b"}]]}\n",
        b"{\"execute\": \"qmp_capabilities\"\n",
        b"\"unterminated string\n",
        &[b'['; 5000],
        b"{\"execute\": 1e999}\n",
        b"{\"execute\": \"query-status\", \"id\": \xc3\x28}\n",
        b"nul\x00l true false 1 -\n",
    ];
    for (i, g) in garbage.iter().enumerate() {
        let mut s = UnixStream::connect(&path).unwrap();
        s.write_all(g).unwrap();
        if i % 2 == 0 {
            // Hang up mid-request.
            drop(s);
            continue;
        }
        s.write_all(b"\n}]\"\n{\"execute\": \"qmp_capabilities\"}\n")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.contains("\"QMP\""), "{line}");
    }
    // A huge message is refused, with an error, and the client served on.
    {
        let mut c = Line::new(UnixStream::connect(&path).unwrap());
        c.read();
        let big = format!("{{\"execute\": \"{}\"}}", "x".repeat(17 << 20));
        c.w.write_all(big.as_bytes()).unwrap();
        let r = c.read();
        assert_eq!(error(&r).1, "JSON token size limit exceeded");
    }
    for i in 0..1000 {
        let q = Qmp::connect_unix(&path).unwrap_or_else(|e| panic!("client {i}: {e}"));
        if i % 100 == 0 {
            assert!(q.execute(&QueryStatus {}).unwrap().running);
        }
    }
    drop(server);
    assert!(!path.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
