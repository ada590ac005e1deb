//! The transport for QEMU's machine protocol (QMP) and guest agent
//! (QGA): one I/O-free protocol core ([`proto`]) and two thin drivers
//! over it, [`blocking`] (std only) and `tokio` (feature `tokio`);
//! probing a running QEMU's schema ([`probe`]); waiting for jobs,
//! unplugs and fd sets (feature `qmp`, the one module that names
//! generated commands); tracing (feature `tracing`); and the [`Error`]
//! every call ends in.
//!
//! The clients know commands and events only through
//! `qapi_runtime`'s [`Command`] and [`Event`] traits, so bindings
//! generated from any schema work with them.  Most programs use this
//! crate through `qapi-types`, which adds QEMU's own bindings under
//! the same names; the guide is there.

#![cfg_attr(docsrs, feature(doc_cfg))]

use qapi_runtime::{Command, Event};

mod api;
pub mod blocking;
mod conn;
mod error;
mod message;
mod options;
pub mod probe;
pub mod proto;
mod sys;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;
mod trace;
#[cfg(feature = "qmp")]
mod wait;

pub use error::{Error, Result, Unsupported};
pub use message::{MessageError, QmpError, Request, ServerMessage};
pub use options::Options;
pub use proto::{EventItem, Greeting, IdPolicy, RawEvent};
#[cfg(feature = "qmp")]
pub use wait::FdSetInfo;

/// Decode one reply message to command `C` the way the clients do: the
/// same quick look at its first and last members routes it (QEMU's
/// `{"return": …, "id": N}`; anything else, such as an `error` reply,
/// is read in full first), then read once where it lies, `return`
/// straight into `C::Returns` with the process-wide strictness and `id`
/// checked against the routing: no copy, as the clients do with a large
/// reply (they hand their read buffer over to its caller; a reply under
/// 64 KiB they copy).  Any `id` is accepted.  An `error` reply is
/// [`Error::Qmp`].  For a transport of your own, and for `cargo xtask
/// bench-decode`, which measures exactly this.
pub fn decode_reply<C: Command>(bytes: &[u8]) -> Result<C::Returns, Error> {
    proto::decode_any_reply::<C>(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use qapi_runtime::with_strict;
    use serde::{Deserialize, Serialize};
    use serde_json::Value;

    #[derive(Serialize)]
    struct QueryStatus {}

    #[derive(Deserialize, Debug, PartialEq)]
    struct StatusInfo {
        running: bool,
        status: String,
    }

    impl Command for QueryStatus {
        const NAME: &'static str = "query-status";
        const ALLOW_OOB: bool = false;
        const SUCCESS_RESPONSE: bool = true;
        type Returns = StatusInfo;
        fn decode_return<'de, D: serde::Deserializer<'de>>(d: D) -> Result<StatusInfo, D::Error> {
            StatusInfo::deserialize(d)
        }
    }

    #[test]
    fn requests_serialize_as_qmp_expects() {
        let r = Request::from((&QueryStatus {}, Some(7), false));
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"execute":"query-status","arguments":{},"id":7}"#
        );
        let r = Request::from((&QueryStatus {}, None, true));
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"exec-oob":"query-status","arguments":{}}"#
        );
    }

    /// `decode_reply`: QEMU's replies by the route, any other reply by
    /// the full parse, errors as the clients report them.
    #[test]
    fn decode_reply_reads_any_reply() {
        let want = StatusInfo {
            running: true,
            status: "running".into(),
        };
        let ret = r#"{"running": true, "status": "running"}"#;
        for msg in [
            format!(r#"{{"return": {ret}, "id": 3}}"#),
            format!("{{\"return\": {ret}, \"id\": 3}}\r\n"),
            format!(r#"{{"return": {ret}}}"#),
            format!(r#"{{"return": {ret}, "x": 1, "id": "a"}}"#),
            format!(r#"{{"id": 3, "return": {ret}}}"#),
        ] {
            assert_eq!(
                decode_reply::<QueryStatus>(msg.as_bytes()).unwrap(),
                want,
                "{msg}"
            );
        }
        let r = decode_reply::<QueryStatus>(
            br#"{"error": {"class": "GenericError", "desc": "no"}, "id": 3}"#,
        );
        assert!(
            matches!(r, Err(Error::Qmp(ref e)) if e.desc == "no"),
            "{r:?}"
        );
        let r = decode_reply::<QueryStatus>(br#"{"return": {"running": 1}, "id": 3}"#);
        assert!(
            matches!(r, Err(Error::Decode { ref raw, .. }) if raw["running"] == 1),
            "{r:?}"
        );
        // The id's tail is inside `return`, whose object is not closed.
        let r = decode_reply::<QueryStatus>(
            br#"{"return": {"running": true, "status": "running", "id": 3}"#,
        );
        assert!(
            matches!(r, Err(Error::Protocol(ref m)) if m.contains("not JSON")),
            "{r:?}"
        );
        // Text that is not UTF-8, in `return` and in the envelope: not
        // JSON, and the error says where.
        for (msg, column) in [
            (
                &b"{\"return\": {\"running\": true, \"status\": \"ru\xffn\"}, \"id\": 3}"[..],
                43,
            ),
            (
                b"{\"return\": {\"running\": true, \"status\": \"run\"}, \"i\xc3\": 3}",
                50,
            ),
        ] {
            let r = decode_reply::<QueryStatus>(msg);
            assert!(
                matches!(r, Err(Error::Protocol(ref m))
                    if m.contains("not JSON") && m.contains(&format!("column {column}"))),
                "{r:?}"
            );
        }
        // With the generated types, and wherever the bytes are: in
        // `return`, in a member `return`'s type skips, in one the
        // envelope skips, on the quick route or not.
        for msg in [
            &b"{\"return\": {\"running\": true, \"status\": \"ru\xffn\"}, \"id\": 3}"[..],
            b"{\"return\": {\"running\": true, \"status\": \"running\", \"zz\": \"\xff\"}, \"id\": 3}",
            b"{\"return\": {\"running\": true, \"status\": \"running\"}, \"x\": \"\xff\", \"id\": 3}",
            b"{\"id\": 3, \"return\": {\"running\": true, \"status\": \"running\"}, \"x\": \"\xff\"}",
        ] {
            let r = with_strict(Some(false), || {
                decode_reply::<qapi_qemu::qmp::commands::QueryStatus>(msg)
            });
            assert!(
                matches!(r, Err(Error::Protocol(ref m))
                    if m.contains("not JSON") && m.contains("invalid unicode code point")),
                "{}: {r:?}",
                String::from_utf8_lossy(msg)
            );
        }
        // Text in other scripts decodes as it is.
        let msg = "{\"return\": {\"name\": \"é€😀\"}, \"id\": 3}";
        let r = decode_reply::<qapi_qemu::qmp::commands::QueryName>(msg.as_bytes()).unwrap();
        assert_eq!(r.name.as_deref(), Some("é€😀"));
    }

    #[test]
    fn server_messages_are_classified() {
        let m = ServerMessage::parse(
            br#"{"return": {"running": true, "status": "running", "new": 1}, "id": 3}"#,
        )
        .unwrap();
        let ServerMessage::Return { value, id } = m else {
            panic!()
        };
        assert_eq!(id, Some(Value::from(3)));
        let s: StatusInfo = serde_json::from_str(value.get()).unwrap();
        assert_eq!(
            s,
            StatusInfo {
                running: true,
                status: "running".into()
            }
        );

        let m =
            ServerMessage::parse(br#"{"error": {"class": "GenericError", "desc": "no"}}"#).unwrap();
        assert!(
            matches!(m, ServerMessage::Error { ref error, .. } if error.class == "GenericError")
        );

        let m = ServerMessage::parse(
            br#"{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}"#,
        )
        .unwrap();
        assert!(matches!(m, ServerMessage::Event { ref name, .. } if name == "STOP"));

        assert!(matches!(
            ServerMessage::parse(b"{\"what\": 1}"),
            Err(MessageError::Shape(_))
        ));
        assert!(matches!(
            ServerMessage::parse(b"{garbage"),
            Err(MessageError::Json(_))
        ));
    }
}
