//! Commands per second against `/usr/bin/qemu-storage-daemon`, in one
//! run: a minimal raw loop (write a pre-serialized `query-version`, read
//! a line), the blocking client one at a time, the tokio client one at a
//! time, and the tokio client with 8 commands in flight.  The clients
//! decode each reply into the generated `VersionInfo`.
//!
//! Run with `cargo bench -p qapi-tests --bench transport` (or `cargo
//! xtask bench-transport`).  The variants take turns for several rounds
//! on the same daemon (QEMU serves one monitor client at a time, so each
//! turn is a fresh connection) and the median rate of each is reported,
//! so drift in the machine's speed hits all of them alike.
//! `QAPI_BENCH_SECONDS` sets the length of one turn (default 1),
//! `QAPI_BENCH_ROUNDS` the number of turns of each (default 7);
//! `QAPI_BENCH_ONLY=tokio` runs only the variants whose name has `tokio`
//! (and the raw loop).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qapi_types::qmp::commands::QueryVersion;
use qapi_types::{IdPolicy, Options};

fn raw_loop(sock: &Path, turn: Duration) -> f64 {
    raw(sock, turn, b"{\"execute\":\"query-version\"}\n")
}

/// The raw loop with an id in each request, as the clients send: what
/// QEMU itself spends on reading and echoing the id.
fn raw_loop_with_id(sock: &Path, turn: Duration) -> f64 {
    raw(
        sock,
        turn,
        b"{\"execute\":\"query-version\",\"id\":12345}\n",
    )
}

fn raw(sock: &Path, turn: Duration, request: &[u8]) -> f64 {
    let s = UnixStream::connect(sock).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
        .unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < turn {
        w.write_all(request).unwrap();
        line.clear();
        r.read_line(&mut line).unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn blocking_one(sock: &Path, turn: Duration, opts: &Options) -> f64 {
    let qmp = qapi_types::blocking::Qmp::connect_unix_with(sock, opts).unwrap();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < turn {
        let v = qmp.execute(&QueryVersion {}).unwrap();
        assert_eq!(v.qemu.major, 10);
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    qmp.close();
    rate
}

fn tokio_one(sock: &Path, turn: Duration, opts: &Options) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let qmp = qapi_types::tokio::Qmp::connect_unix_with(sock, opts)
            .await
            .unwrap();
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < turn {
            let v = qmp.execute(&QueryVersion {}).await.unwrap();
            assert_eq!(v.qemu.major, 10);
            n += 1;
        }
        let rate = n as f64 / start.elapsed().as_secs_f64();
        qmp.close().await;
        rate
    })
}

fn tokio_in_flight(sock: &Path, turn: Duration, tasks: usize, opts: &Options) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let qmp = qapi_types::tokio::Qmp::connect_unix_with(sock, opts)
            .await
            .unwrap();
        let count = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let (qmp, count, stop) = (qmp.clone(), count.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let v = qmp.execute(&QueryVersion {}).await.unwrap();
                        assert_eq!(v.qemu.major, 10);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        tokio::time::sleep(turn).await;
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.await.unwrap();
        }
        let rate = count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
        qmp.close().await;
        rate
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: do nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let secs: f64 = std::env::var("QAPI_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let turn = Duration::from_secs_f64(secs);
    let rounds: usize = std::env::var("QAPI_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let daemon = qapi_tests::live::spawn(
        "/usr/bin/qemu-storage-daemon",
        &[
            "--chardev",
            "socket,path={sock},server=on,wait=off,id=m",
            "--monitor",
            "chardev=m",
        ],
    );
    let sock = daemon.sock();
    // Wait for the socket.
    drop(qapi_types::blocking::Qmp::connect_unix(&sock).unwrap());
    type Run = Box<dyn Fn(&Path, Duration) -> f64>;
    fn client(f: fn(&Path, Duration, &Options) -> f64, o: Options) -> Run {
        Box::new(move |s, t| f(s, t, &o))
    }
    fn in_flight8(s: &Path, t: Duration, o: &Options) -> f64 {
        tokio_in_flight(s, t, 8, o)
    }
    let defaults = Options::default();
    let lone = Options::default().ids(IdPolicy::WhenNeeded);
    let lone_no_oob = lone.clone().oob(false);
    let variants: Vec<(&str, Run)> = vec![
        ("raw loop", Box::new(raw_loop)),
        ("raw loop with ids (for scale)", Box::new(raw_loop_with_id)),
        ("blocking", client(blocking_one, defaults.clone())),
        (
            "blocking, ids when needed",
            client(blocking_one, lone.clone()),
        ),
        (
            "blocking, ids when needed, no oob",
            client(blocking_one, lone_no_oob.clone()),
        ),
        ("tokio", client(tokio_one, defaults.clone())),
        ("tokio, ids when needed", client(tokio_one, lone)),
        (
            "tokio, ids when needed, no oob",
            client(tokio_one, lone_no_oob),
        ),
        ("tokio, 8 in flight", client(in_flight8, defaults.clone())),
        (
            "tokio, 8 in flight, no oob",
            client(in_flight8, defaults.oob(false)),
        ),
    ];
    // QAPI_BENCH_ONLY=text runs only the variants whose name has it (and
    // the raw loop), for profiling one path.
    let only = std::env::var("QAPI_BENCH_ONLY").ok();
    let variants: Vec<(&str, Run)> = variants
        .into_iter()
        .enumerate()
        .filter(|(i, (n, _))| *i == 0 || only.as_deref().is_none_or(|o| n.contains(o)))
        .map(|(_, v)| v)
        .collect();
    // Warm up every path once.
    for (_, f) in &variants {
        f(&sock, Duration::from_millis(200));
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in variants.iter().enumerate() {
            rates[i].push(f(&sock, turn));
        }
    }
    let medians: Vec<f64> = rates.iter_mut().map(|r| median(r)).collect();
    let raw = medians[0];
    println!(
        "query-version against qemu-storage-daemon 10.0.2, median of {rounds} turns of {secs} s:"
    );
    for ((name, _), m) in variants.iter().zip(&medians) {
        println!(
            "  {name:<36} {m:>9.0} commands/s  ({:.3} of the raw loop)",
            m / raw
        );
    }
    println!("(one at a time unless it says in flight; oob is negotiated unless it says no oob)");
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    if only.is_some() {
        return;
    }
    println!(
        "targets with default options: blocking one at a time >= 0.95 of the raw loop: {}; \
         tokio one at a time: {}; 8 in flight >= the raw loop: {}",
        verdict(medians[2] >= 0.95 * raw),
        verdict(medians[5] >= 0.95 * raw),
        verdict(medians[8] >= raw),
    );
}
