//! qapi-types' `tracing` feature against qemu-storage-daemon 10.0.2,
//! captured with the tools' `-v` subscriber writing into a buffer: a
//! command's span, the raw JSON, an event, a lagging subscriber, a reply
//! that does not decode, the connection closing, and a secret that never
//! appears.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qapi_tests::live::storage_daemon;
use qapi_tools::verbose::Printer;
use qapi_types::blocking::Qmp;
use qapi_types::qmp::commands::QueryVersion;
use qapi_types::{Command, EventItem, Options};
use serde_json::json;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// `query-version` whose reply is wrongly said to be a string: a reply
/// that does not decode, from a real server.
#[derive(serde::Serialize)]
struct VersionAsText {}

impl Command for VersionAsText {
    const NAME: &'static str = "query-version";
    const ALLOW_OOB: bool = false;
    const SUCCESS_RESPONSE: bool = true;
    type Returns = String;
    fn decode_return<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        <String as serde::Deserialize>::deserialize(d)
    }
}

#[test]
fn commands_events_decode_failures_and_no_secrets() {
    qapi_tests::require_live!();
    let mut d = storage_daemon(&[
        "--blockdev",
        "null-co,node-name=src,size=1048576",
        "--blockdev",
        "null-co,node-name=dst,size=1048576",
    ]);
    let buf = Buffer::default();
    let printer = Printer::new(tracing::Level::TRACE, buf.clone());
    tracing::subscriber::with_default(printer, || {
        // Ids on every command, so the spans show them.
        let opts = Options::default()
            .event_buffer(1)
            .ids(qapi_types::IdPolicy::Always);
        let qmp = Qmp::connect_unix_with(d.sock(), &opts).unwrap();
        qmp.execute(&QueryVersion {}).unwrap();
        qmp.execute_raw(
            "object-add",
            Some(&json!({"qom-type": "secret", "id": "s0", "data": "hunter2-pw"})),
        )
        .unwrap();
        // A QEMU error is an outcome too.
        qmp.execute_raw("object-del", Some(&json!({"id": "nonexistent"})))
            .unwrap_err();
        let e = qmp.execute(&VersionAsText {}).unwrap_err();
        assert!(matches!(e, qapi_types::Error::Decode { .. }), "{e}");
        // A job: its events, more than the one-event queue holds.
        let events = qmp.subscribe();
        qmp.execute_raw(
            "blockdev-backup",
            Some(&json!({"job-id": "j0", "device": "src", "target": "dst", "sync": "full"})),
        )
        .unwrap();
        let mut concluded = false;
        for _ in 0..200 {
            let jobs = qmp.execute_raw("query-jobs", None).unwrap();
            if jobs.to_string().contains("concluded") || jobs == json!([]) {
                concluded = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(concluded);
        assert!(matches!(
            events.recv_timeout(Duration::from_secs(5)).unwrap(),
            EventItem::Lagged(_)
        ));
        let _ = d.child().kill();
        let _ = d.child().wait();
        assert!(qmp.execute(&QueryVersion {}).is_err());
    });
    let text = buf.text();
    let has = |want: &str| {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    };
    has(" INFO greeting read server=QEMU 10.0.2");
    has(" INFO capabilities negotiated oob=true");
    has("DEBUG qmp.command{name=query-version id=");
    has("}: done elapsed_us=");
    has(" outcome=ok");
    has("TRACE qmp.command{name=query-version id=");
    has("}: sent json={\"execute\":\"query-version\"");
    // Received messages are logged as QEMU wrote them.
    has("TRACE qmp.command{name=query-version id=1}: received json={\"return\": {");
    has("outcome=error class=GenericError desc=");
    has(" WARN the reply did not decode command=query-version error=invalid type: map, expected a string");
    has("reply={\"package\":");
    // (read while a command waited, so shown in its span)
    has(": event name=JOB_STATUS_CHANGE data={\"id\":\"j0\",\"status\":\"created\"}");
    has(" WARN a subscriber lagged: events were dropped subscriber=");
    has("connection closed");
    // The secret object was created, and its secret is nowhere.
    has("\"qom-type\":\"secret\"");
    has("\"data\":\"<redacted>\"");
    assert!(!text.contains("hunter2"), "a secret was logged:\n{text}");
}
