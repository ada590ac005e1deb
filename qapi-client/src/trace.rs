//! What the clients tell `tracing` (feature `tracing`): the hooks the
//! protocol core and the clients call, one line at each site.  Without
//! the feature every hook is an empty inline function, so nothing of it
//! is compiled in.
//!
//! What is logged, and the rule that keeps secrets out, are in the
//! crate documentation ("Tracing").

#[cfg(feature = "tracing")]
pub(crate) use on::*;

#[cfg(not(feature = "tracing"))]
pub(crate) use off::*;

/// Whether a member's name says it holds a secret.
#[cfg(any(feature = "tracing", test))]
fn secret_member(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "cookie",
    ]
    .iter()
    .any(|w| n.contains(w))
}

#[cfg(any(feature = "tracing", test))]
const REDACTED: &str = "<redacted>";

/// Redact the secret members of `v`, at any depth; whether any was.
#[cfg(any(feature = "tracing", test))]
fn redact_members(v: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    // Every member is visited (no short cut once one was redacted).
    let mut changed = false;
    match v {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if secret_member(k) {
                    *v = Value::String(REDACTED.into());
                    changed = true;
                } else {
                    changed |= redact_members(v);
                }
            }
        }
        Value::Array(a) => {
            for v in a {
                changed |= redact_members(v);
            }
        }
        _ => {}
    }
    changed
}

/// A message as it may be logged: as it was on the wire, or, when it
/// holds a secret, re-encoded with the secrets redacted (see the crate
/// documentation).
#[cfg(any(feature = "tracing", test))]
fn redacted(bytes: &[u8]) -> String {
    use serde_json::Value;
    let Ok(mut v) = serde_json::from_slice::<Value>(bytes) else {
        return format!("({} bytes, not JSON)", bytes.len());
    };
    let command = v
        .get("execute")
        .or_else(|| v.get("exec-oob"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut changed = false;
    if let (Some(c), Some(args)) = (command, v.get_mut("arguments")) {
        let secret_object = args
            .get("qom-type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.starts_with("secret"));
        let mut redact = |v: &mut Value| {
            *v = Value::String(REDACTED.into());
            changed = true;
        };
        match c.as_str() {
            "set_password" | "change-vnc-password" | "guest-set-user-password" => redact(args),
            "object-add" if secret_object => {
                if let Some(m) = args.as_object_mut() {
                    for (k, v) in m.iter_mut() {
                        if k != "qom-type" && k != "id" {
                            redact(v);
                        }
                    }
                }
            }
            "qom-set" => {
                let property = args.get("property").and_then(Value::as_str);
                if property.is_some_and(secret_member) {
                    if let Some(value) = args.get_mut("value") {
                        redact(value);
                    }
                }
            }
            "human-monitor-command" => {
                if let Some(line) = args.get_mut("command-line") {
                    let l = line.as_str().unwrap_or_default().to_ascii_lowercase();
                    if l.contains("pass") || l.contains("secret") {
                        redact(line);
                    }
                }
            }
            _ => {}
        }
    }
    if redact_members(&mut v) || changed {
        v.to_string()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

#[cfg(feature = "tracing")]
mod on {
    use std::time::Instant;

    use tracing::{debug, info, trace, warn};

    use crate::error::Error;

    /// Run one command's exchange inside its span, then log how it
    /// ended and how long it took.
    pub(crate) fn command<T>(name: &str, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
        let span = span(name);
        let start = Instant::now();
        let r = span.in_scope(f);
        done(&span, start, &r);
        r
    }

    /// [`command`] for a future.
    #[cfg(feature = "tokio")]
    pub(crate) async fn command_async<T>(
        name: &str,
        f: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        use tracing::Instrument;
        let span = span(name);
        let start = Instant::now();
        let r = f.instrument(span.clone()).await;
        done(&span, start, &r);
        r
    }

    fn span(name: &str) -> tracing::Span {
        tracing::debug_span!(target: "qapi_types::command", "qmp.command", name, id = tracing::field::Empty)
    }

    fn done<T>(span: &tracing::Span, start: Instant, r: &Result<T, Error>) {
        let elapsed_us = start.elapsed().as_micros() as u64;
        let _e = span.enter();
        match r {
            Ok(_) => debug!(target: "qapi_types::command", elapsed_us, outcome = "ok", "done"),
            Err(Error::Qmp(e)) => debug!(
                target: "qapi_types::command",
                elapsed_us,
                outcome = "error",
                class = %e.class,
                desc = %e.desc,
                "done"
            ),
            Err(e) if e.is_fatal() => {
                warn!(target: "qapi_types::command", elapsed_us, outcome = "failed", error = %e, "done")
            }
            Err(e) => {
                debug!(target: "qapi_types::command", elapsed_us, outcome = "failed", error = %e, "done")
            }
        }
    }

    /// The id the current command goes out with.
    pub(crate) fn command_id(id: Option<u64>) {
        if let Some(id) = id {
            tracing::Span::current().record("id", id);
        }
    }

    /// A request about to be written.
    pub(crate) fn sent(bytes: &[u8]) {
        if tracing::enabled!(target: "qapi_types::wire", tracing::Level::TRACE) {
            trace!(target: "qapi_types::wire", json = %super::redacted(bytes), "sent");
        }
    }

    /// A whole message read.
    pub(crate) fn received(bytes: &[u8]) {
        if tracing::enabled!(target: "qapi_types::wire", tracing::Level::TRACE) {
            trace!(target: "qapi_types::wire", json = %super::redacted(bytes), "received");
        }
    }

    pub(crate) fn event(name: &str, data: &serde_json::Value) {
        if tracing::enabled!(target: "qapi_types::event", tracing::Level::DEBUG) {
            let mut data = data.clone();
            let _ = super::redact_members(&mut data);
            debug!(target: "qapi_types::event", name = %name, data = %data, "event");
        }
    }

    pub(crate) fn lagged(subscriber: u64, lost: u64) {
        warn!(target: "qapi_types::event", subscriber, lost, "a subscriber lagged: events were dropped");
    }

    pub(crate) fn greeting(g: &dyn std::fmt::Display) {
        info!(target: "qapi_types::connection", server = %g, "greeting read");
    }

    pub(crate) fn ready(oob: bool) {
        info!(target: "qapi_types::connection", oob, "capabilities negotiated");
    }

    pub(crate) fn synced() {
        debug!(target: "qapi_types::connection", "guest agent synchronised");
    }

    pub(crate) fn closed(why: &Error) {
        match why {
            Error::Disconnected => info!(target: "qapi_types::connection", "connection closed"),
            e => warn!(target: "qapi_types::connection", error = %e, "connection closed"),
        }
    }

    pub(crate) fn decode_failed(command: &str, error: &serde_json::Error, raw: &serde_json::Value) {
        let mut raw = raw.clone();
        let _ = super::redact_members(&mut raw);
        warn!(target: "qapi_types::command", command, %error, reply = %raw, "the reply did not decode");
    }
}

#[cfg(not(feature = "tracing"))]
mod off {
    use crate::error::Error;

    #[inline(always)]
    pub(crate) fn command<T>(_: &str, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
        f()
    }
    #[cfg(feature = "tokio")]
    #[inline(always)]
    pub(crate) async fn command_async<T>(
        _: &str,
        f: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        f.await
    }
    #[inline(always)]
    pub(crate) fn command_id(_: Option<u64>) {}
    #[inline(always)]
    pub(crate) fn sent(_: &[u8]) {}
    #[inline(always)]
    pub(crate) fn received(_: &[u8]) {}
    #[inline(always)]
    pub(crate) fn event(_: &str, _: &serde_json::Value) {}
    #[inline(always)]
    pub(crate) fn lagged(_: u64, _: u64) {}
    #[inline(always)]
    pub(crate) fn greeting(_: &dyn std::fmt::Display) {}
    #[inline(always)]
    pub(crate) fn ready(_: bool) {}
    #[inline(always)]
    pub(crate) fn synced() {}
    #[inline(always)]
    pub(crate) fn closed(_: &Error) {}
    #[inline(always)]
    pub(crate) fn decode_failed(_: &str, _: &serde_json::Error, _: &serde_json::Value) {}
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_redacted() {
        let r = super::redacted(
            br#"{"execute":"object-add","arguments":{"qom-type":"secret","id":"s0","data":"hunter2"}}"#,
        );
        assert!(!r.contains("hunter2") && r.contains("\"id\":\"s0\""), "{r}");
        let r = super::redacted(
            br#"{"execute":"set_password","arguments":{"protocol":"vnc","password":"hunter2"}}"#,
        );
        assert_eq!(r, r#"{"arguments":"<redacted>","execute":"set_password"}"#);
        let r = super::redacted(
            br#"{"execute":"blockdev-add","arguments":{"driver":"luks","node-name":"n","key-secret":"sec0","file":{"x":[{"password":"p"}]}}}"#,
        );
        assert!(
            !r.contains("sec0") && !r.contains("\"p\"") && r.contains("luks"),
            "{r}"
        );
        let r = super::redacted(
            br#"{"execute":"human-monitor-command","arguments":{"command-line":"set_password vnc hunter2"}}"#,
        );
        assert!(!r.contains("hunter2"), "{r}");
        assert_eq!(super::redacted(b"{nope"), "(5 bytes, not JSON)");
        // Without a secret, the message is logged as it was sent.
        let plain = br#"{"execute":"query-version", "id":1}"#;
        assert_eq!(super::redacted(plain), String::from_utf8_lossy(plain));
    }
}
