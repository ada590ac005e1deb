//! Memory under a hostile peer: a fake server that answers a command
//! with a message that never ends.  The connection must end in
//! [`Error::TooLarge`] having held no more than the message limit plus
//! a small constant, measured by a counting global allocator (every
//! allocation of this test binary goes through it).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use qapi_types::{Error, Options};

/// Counts the bytes allocated and not yet freed, and the most ever.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, Ordering::SeqCst) + n;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: every call is passed on to the system allocator unchanged;
// the counters only watch.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
    }

    /// Counted as the change in size: glibc moves large blocks with
    /// mremap, so old and new are never both held.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::SeqCst);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const GREETING: &[u8] = br#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 99}, "package": ""}, "capabilities": []}}
"#;

/// The message limit the clients are given.
const LIMIT: usize = 16 << 20;
/// What a connection may hold beyond the limit.
const SLACK: usize = 256 << 10;

/// Serve one connection: greet, accept the negotiation, then answer the
/// next request with a `return` string that never ends, until the
/// client hangs up.  Allocates nothing while streaming.
fn endless_peer() -> (std::path::PathBuf, std::thread::JoinHandle<u64>) {
    let (listener, path) = common::listen("qapi-memory");
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 512];
        // Each request is one object, ended by its closing brace.
        let mut read_request = |s: &mut std::os::unix::net::UnixStream| {
            let mut depth = 0i32;
            loop {
                let n = s.read(&mut buf[..1]).unwrap();
                assert_eq!(n, 1, "the client hung up early");
                match buf[0] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            return;
                        }
                    }
                    _ => {}
                }
            }
        };
        s.write_all(GREETING).unwrap();
        read_request(&mut s);
        // Alone in flight: the clients' default sends it without an id.
        s.write_all(b"{\"return\": {}}\n").unwrap();
        read_request(&mut s);
        s.write_all(b"{\"return\": \"").unwrap();
        let chunk = [b'a'; 64 << 10];
        let mut sent = 0u64;
        while s.write_all(&chunk).is_ok() {
            sent += chunk.len() as u64;
        }
        sent
    });
    (path, server)
}

/// Run `call` and return the most it held at once beyond what was held
/// before, and what it returned.
fn held_during<T>(call: impl FnOnce() -> T) -> (usize, T) {
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let r = call();
    (PEAK.load(Ordering::SeqCst).saturating_sub(base), r)
}

fn check(client: &str, held: usize, sent: u64, r: Result<serde_json::Value, Error>) {
    eprintln!(
        "{client}: the peer sent {sent} bytes; the connection held at most {held} bytes more \
         than before (limit {LIMIT}, limit + slack {})",
        LIMIT + SLACK
    );
    assert!(
        matches!(r, Err(Error::TooLarge { limit: LIMIT })),
        "{client}: {r:?}"
    );
    assert!(
        sent >= LIMIT as u64,
        "{client}: stopped before the limit ({sent})"
    );
    assert!(
        held <= LIMIT + SLACK,
        "{client}: held {held} bytes for a limit of {LIMIT}"
    );
}

/// One test for both clients: the counters are process-wide, so the two
/// must not run at once.
#[test]
fn an_endless_message_costs_at_most_the_limit() {
    let opts = Options::default().max_message(LIMIT);

    let (path, server) = endless_peer();
    let qmp = qapi_types::blocking::Qmp::connect_unix_with(&path, &opts).unwrap();
    let (held, r) = held_during(|| qmp.execute_raw("query-version", None));
    drop(qmp);
    check("blocking", held, server.join().unwrap(), r);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (path, server) = endless_peer();
    let qmp = rt
        .block_on(qapi_types::tokio::Qmp::connect_unix_with(&path, &opts))
        .unwrap();
    let (held, r) = held_during(|| rt.block_on(qmp.execute_raw("query-version", None)));
    drop(qmp);
    drop(rt);
    check("tokio", held, server.join().unwrap(), r);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
