//! A fake server that is correct but as unhelpful as the protocol
//! allows: it answers commands out of order, splits replies at random
//! bytes across writes, pretty-prints some, and slips events in between.
//! Many threads (or tasks) call at once; every caller must get its own
//! reply and the subscriber every event, in order.  Then the same
//! server breaks off at a random byte: every pending call must end in a
//! typed error, none may hang.  Seeded, so a failure repeats.

mod common;

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qapi_types::{Error, EventItem, IdPolicy, Options};
use serde_json::{json, Value};

use common::rng::Rng;

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 99}, "package": ""}, "capabilities": []}}"#;

/// Callers at once, and calls each.
const CALLERS: u64 = 8;
const CALLS: u64 = 100;

/// What the server does after `break_after` replies (if set).
#[derive(Clone, Copy, Debug)]
enum Break {
    /// Close the connection in the middle of the next reply.
    Hangup,
    /// Send bytes that are not JSON in the middle of the next reply.
    Garbage,
}

struct Server {
    path: PathBuf,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(self.path.parent().unwrap());
    }
}

/// Start the server.  `done` answers with the number of events sent.
fn server(seed: u64, breaks: Option<(usize, Break)>) -> Server {
    let (listener, path) = common::listen("qapi-chaos");
    let thread = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        serve(s, seed, breaks);
    });
    Server {
        path,
        thread: Some(thread),
    }
}

fn serve(mut s: UnixStream, seed: u64, breaks: Option<(usize, Break)>) {
    let mut rng = Rng(seed);
    // Requests are read on their own thread, so the writer can hold
    // replies back while more requests come.
    let (tx, rx) = mpsc::channel::<Value>();
    let reader = BufReader::new(s.try_clone().unwrap());
    std::thread::spawn(move || {
        for v in serde_json::Deserializer::from_reader(reader).into_iter::<Value>() {
            let Ok(v) = v else { break };
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let _ = s.write_all(format!("{GREETING}\n").as_bytes());
    let mut events = 0u64;
    let mut replies = 0usize;
    let mut pending: Vec<Value> = Vec::new();
    loop {
        // Gather what comes within a moment, then answer in any order.
        match rx.recv_timeout(Duration::from_millis(if pending.is_empty() {
            10_000
        } else {
            3
        })) {
            Ok(req) => {
                pending.push(req);
                if rng.below(3) != 0 {
                    continue;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) if !pending.is_empty() => {}
            Err(_) => return,
        }
        while !pending.is_empty() {
            let req = pending.swap_remove(rng.below(pending.len() as u64) as usize);
            // An event first, sometimes (counted before `done` answers;
            // none before negotiation is done, as QEMU does).
            let negotiating = req["execute"] == "qmp_capabilities";
            let event = (rng.below(3) == 0 && !negotiating).then(|| {
                events += 1;
                json!({"event": "TICK", "data": {"n": events - 1},
                       "timestamp": {"seconds": 1, "microseconds": 2}})
            });
            let ret = match req["execute"].as_str() {
                Some("qmp_capabilities") => json!({}),
                Some("done") => json!(events),
                _ => req["arguments"].clone(),
            };
            let mut reply = json!({ "return": ret });
            if let Some(id) = req.get("id") {
                reply["id"] = id.clone();
            }
            let mut text = if rng.below(4) == 0 {
                serde_json::to_string_pretty(&reply).unwrap()
            } else {
                serde_json::to_string(&reply).unwrap()
            };
            text.push_str(["\n", "\r\n", "", " \n"][rng.below(4) as usize]);
            if let Some(ev) = event {
                text.insert_str(0, &format!("{ev}\n"));
            }
            let bytes = text.into_bytes();
            if let Some((after, how)) = breaks {
                if replies == after {
                    let cut = rng.below(bytes.len() as u64) as usize;
                    let _ = s.write_all(&bytes[..cut]);
                    if let Break::Garbage = how {
                        let _ = s.write_all(b"\x00garbage");
                    }
                    let _ = s.shutdown(std::net::Shutdown::Both);
                    return;
                }
            }
            // Random pieces, with a pause now and then.
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let n = (1 + rng.below(rest.len() as u64)) as usize;
                let _ = s.write_all(&rest[..n]);
                rest = &rest[n..];
                if rng.below(8) == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            replies += 1;
        }
    }
}

fn opts(policy: IdPolicy) -> Options {
    Options::new()
        .ids(policy)
        .command_timeout(Some(Duration::from_secs(20)))
        .event_buffer(100_000)
}

/// Check the events a subscriber saw: 0, 1, 2, … `sent` - 1.
fn check_events(seen: &[u64], sent: u64) {
    assert_eq!(seen.len() as u64, sent, "every event arrives");
    assert!(
        seen.iter().enumerate().all(|(i, &n)| n == i as u64),
        "in order"
    );
}

#[test]
fn blocking_callers_get_their_own_replies_from_a_chaotic_server() {
    for (seed, policy) in [
        (0x1234_5678_9abc_def1, IdPolicy::Always),
        (0x0fed_cba9_8765_4321, IdPolicy::WhenNeeded),
        (0x5555_aaaa_3333_cccc, IdPolicy::Always),
    ] {
        let srv = server(seed, None);
        let qmp = Arc::new(
            qapi_types::blocking::Qmp::connect_unix_with(&srv.path, &opts(policy)).unwrap(),
        );
        let sub = qmp.subscribe();
        let callers: Vec<_> = (0..CALLERS)
            .map(|t| {
                let qmp = qmp.clone();
                std::thread::spawn(move || {
                    for k in 0..CALLS {
                        let args = json!({"t": t, "k": k});
                        let r = qmp.execute_raw("echo", Some(&args)).unwrap();
                        assert_eq!(r, args, "caller {t} got another's reply");
                    }
                })
            })
            .collect();
        for c in callers {
            c.join().expect("a caller failed");
        }
        let sent = qmp.execute_raw("done", None).unwrap().as_u64().unwrap();
        let mut seen = Vec::new();
        while let Some(item) = sub.try_recv() {
            match item {
                EventItem::Event(e) => seen.push(e.data["n"].as_u64().unwrap()),
                other => panic!("{other:?}"),
            }
        }
        check_events(&seen, sent);
        qmp.close();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_callers_get_their_own_replies_from_a_chaotic_server() {
    for (seed, policy) in [
        (0x2468_ace0_1357_9bdf, IdPolicy::Always),
        (0x9bdf_1357_ace0_2468, IdPolicy::WhenNeeded),
    ] {
        let srv = server(seed, None);
        let qmp = Arc::new(
            qapi_types::tokio::Qmp::connect_unix_with(&srv.path, &opts(policy))
                .await
                .unwrap(),
        );
        let sub = qmp.subscribe();
        let callers: Vec<_> = (0..CALLERS)
            .map(|t| {
                let qmp = qmp.clone();
                tokio::spawn(async move {
                    for k in 0..CALLS {
                        let args = json!({"t": t, "k": k});
                        let r = qmp.execute_raw("echo", Some(&args)).await.unwrap();
                        assert_eq!(r, args, "task {t} got another's reply");
                    }
                })
            })
            .collect();
        for c in callers {
            c.await.expect("a task failed");
        }
        let sent = qmp
            .execute_raw("done", None)
            .await
            .unwrap()
            .as_u64()
            .unwrap();
        let mut seen = Vec::new();
        while let Ok(item) = sub.recv_timeout(Duration::from_millis(1)).await {
            match item {
                EventItem::Event(e) => seen.push(e.data["n"].as_u64().unwrap()),
                other => panic!("{other:?}"),
            }
        }
        check_events(&seen, sent);
        qmp.close().await;
    }
}

#[test]
fn a_server_breaking_off_mid_reply_fails_every_call_promptly() {
    let mut rng = Rng(0x0bad_cafe_dead_beef);
    for round in 0..12 {
        let how = if round % 2 == 0 {
            Break::Hangup
        } else {
            Break::Garbage
        };
        // Reply 0 is the negotiation's; break somewhere among the calls.
        let after = 1 + rng.below(CALLERS * 3) as usize;
        let srv = server(rng.next(), Some((after, how)));
        let qmp = Arc::new(
            qapi_types::blocking::Qmp::connect_unix_with(&srv.path, &opts(IdPolicy::Always))
                .unwrap(),
        );
        let sub = qmp.subscribe();
        let start = Instant::now();
        let callers: Vec<_> = (0..CALLERS)
            .map(|t| {
                let qmp = qmp.clone();
                std::thread::spawn(move || {
                    let mut ok = 0;
                    for k in 0..CALLS {
                        let args = json!({"t": t, "k": k});
                        match qmp.execute_raw("echo", Some(&args)) {
                            Ok(r) => {
                                assert_eq!(r, args);
                                ok += 1;
                            }
                            Err(e) => {
                                assert!(
                                    matches!(e, Error::Disconnected | Error::Protocol(_)),
                                    "round {round}: {e:?}"
                                );
                                return ok;
                            }
                        }
                    }
                    ok
                })
            })
            .collect();
        let answered: u64 = callers.into_iter().map(|c| c.join().unwrap()).sum();
        // Command time limits are 20 s: ending well before shows the
        // failure was noticed, not waited out.
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "round {round}: took {:?}",
            start.elapsed()
        );
        assert!(
            answered < (after as u64),
            "round {round}: {answered} answered"
        );
        // The subscriber sees the end too.
        loop {
            match sub.recv_timeout(Duration::from_secs(5)) {
                Ok(EventItem::Event(_)) => continue,
                Err(e) => {
                    assert!(e.is_fatal(), "round {round}: {e:?}");
                    break;
                }
                Ok(other) => panic!("{other:?}"),
            }
        }
        // And later calls fail at once.
        let r = qmp.execute_raw("echo", None);
        assert!(r.as_ref().is_err_and(Error::is_fatal), "{r:?}");
    }
}
