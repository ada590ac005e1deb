//! Commands per second against `/usr/bin/qemu-storage-daemon`, in one
//! run: a minimal raw loop (write a pre-serialized `query-version`, read
//! a line), the blocking client one at a time, the tokio client one at a
//! time, and the tokio client with 8 commands in flight.  The clients
//! decode each reply into the generated `VersionInfo`.
//!
//! Run with `cargo bench -p qapi-tests --bench transport` (or `cargo
//! xtask bench-transport`).  The variants take short turns, round after
//! round, on the same daemon (QEMU serves one monitor client at a time,
//! so each turn is a fresh connection).  Each variant's rate is compared
//! with the raw loop's in the same round and the median of those ratios
//! is reported: the machines here are shared and their speed drifts by
//! tens of percent within seconds, which ratios taken a moment apart
//! cancel.  `QAPI_BENCH_SECONDS` sets the length of one turn (default
//! 0.25), `QAPI_BENCH_ROUNDS` the number of rounds (default 40);
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
    raw(sock, turn, b"{\"execute\":\"query-version\"}\n", false)
}

/// The raw loop on a connection that enabled `oob`, as the clients do
/// when QEMU offers it.
fn raw_loop_oob(sock: &Path, turn: Duration) -> f64 {
    raw(sock, turn, b"{\"execute\":\"query-version\"}\n", true)
}

/// The raw loop sending the very bytes the clients send with an id on
/// every command (no newline: the closing brace ends a request): what
/// QEMU itself spends on reading the id, without any client.
fn raw_loop_with_id(sock: &Path, turn: Duration) -> f64 {
    raw(
        sock,
        turn,
        b"{\"execute\":\"query-version\",\"id\":1}",
        true,
    )
}

fn raw(sock: &Path, turn: Duration, request: &[u8], oob: bool) -> f64 {
    let s = UnixStream::connect(sock).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let negotiate: &[u8] = if oob {
        b"{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"oob\"]}}\n"
    } else {
        b"{\"execute\":\"qmp_capabilities\"}\n"
    };
    w.write_all(negotiate).unwrap();
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
        .unwrap_or(0.25);
    let turn = Duration::from_secs_f64(secs);
    let rounds: usize = std::env::var("QAPI_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
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
    // `Options::default()` (ids only when needed) is what the targets
    // are for; an id on every command is measured beside it.
    let defaults = Options::default();
    let always = Options::default().ids(IdPolicy::Always);
    // The first is the reference; the targets' verdicts below index this
    // list by name.
    let variants: Vec<(&str, Run)> = vec![
        ("raw loop", Box::new(raw_loop)),
        ("raw loop, oob negotiated", Box::new(raw_loop_oob)),
        (
            "raw loop, the clients' bytes with id",
            Box::new(raw_loop_with_id),
        ),
        (
            "blocking (defaults)",
            client(blocking_one, defaults.clone()),
        ),
        (
            "blocking, id on every command",
            client(blocking_one, always.clone()),
        ),
        ("tokio (defaults)", client(tokio_one, defaults.clone())),
        ("tokio, id on every command", client(tokio_one, always)),
        (
            "tokio, 8 in flight (defaults)",
            client(in_flight8, defaults),
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
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        let this: Vec<f64> = variants.iter().map(|(_, f)| f(&sock, turn)).collect();
        for (i, r) in this.iter().enumerate() {
            rates[i].push(*r);
            ratios[i].push(r / this[0]);
        }
    }
    let rate: Vec<f64> = rates.iter().map(|r| median(&mut r.clone())).collect();
    let ratio: Vec<f64> = ratios.iter().map(|r| median(&mut r.clone())).collect();
    println!(
        "query-version against qemu-storage-daemon 10.0.2, {rounds} rounds of {secs} s turns \
         (rate: median; ratio: median of the ratios to the raw loop in the same round):"
    );
    for (i, (name, _)) in variants.iter().enumerate() {
        println!(
            "  {name:<38} {:>7.0} commands/s  {:.3} of the raw loop",
            rate[i], ratio[i]
        );
    }
    println!(
        "(one at a time unless it says in flight; the clients negotiate oob, which this \
         daemon offers; the raw loop does not)"
    );
    if only.is_some() {
        return;
    }
    let of = |name: &str| {
        let i = variants
            .iter()
            .position(|(n, _)| *n == name)
            .expect("a variant");
        ratio[i]
    };
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "targets with Options::default() (ids only when needed): blocking one at a time >= 0.95 \
         of the raw loop: {}; tokio one at a time >= 0.95: {}; tokio 8 in flight >= the raw \
         loop: {}",
        verdict(of("blocking (defaults)") >= 0.95),
        verdict(of("tokio (defaults)") >= 0.95),
        verdict(of("tokio, 8 in flight (defaults)") >= 1.0),
    );
    println!(
        "the same with an id on every command: blocking >= 0.95: {}; tokio: {}",
        verdict(of("blocking, id on every command") >= 0.95),
        verdict(of("tokio, id on every command") >= 0.95),
    );
    // What the clients themselves cost: against the raw loop sending the
    // same bytes (ids on every command), round by round.
    let same_bytes = |name: &str| {
        let at = |n: &str| {
            variants
                .iter()
                .position(|(v, _)| *v == n)
                .expect("a variant")
        };
        let (c, r) = (at(name), at("raw loop, the clients' bytes with id"));
        let mut v: Vec<f64> = rates[c].iter().zip(&rates[r]).map(|(c, r)| c / r).collect();
        median(&mut v)
    };
    println!(
        "the clients against the raw loop sending the same bytes: blocking {:.3}, tokio {:.3}",
        same_bytes("blocking, id on every command"),
        same_bytes("tokio, id on every command"),
    );
}
