//! One tokio process connected to many `qemu-storage-daemon` monitors
//! at once (200 by default), every connection subscribed to
//! `JOB_STATUS_CHANGE` while commands run on all of them.
//!
//! Each daemon runs on its own socket in its own temporary folder; all
//! are stopped when the benchmark ends, however it ends (each is a
//! `live::Process`, killed on drop, unwinding included).  While every
//! connection runs `query-version` in a loop, each daemon also runs
//! `blockdev-create` jobs (a file in its own folder) to their end with
//! `run_job`; their ids name the daemon, so the check can tell an event
//! that went to the wrong connection from one that was lost.
//!
//! Reported: memory per connection (the process's RSS after connecting
//! and subscribing, less before, over the connections; and after the
//! load), commands per second across all connections, and the events:
//! each job must give exactly created, running, waiting, pending,
//! concluded, null on its own daemon's connection.
//!
//! `cargo xtask bench-scale` (or `cargo bench -p qapi-tests --bench
//! scale`); `QAPI_SCALE_DAEMONS` (default 200), `QAPI_SCALE_SECONDS`
//! (the load's length, default 5), `QAPI_SCALE_JOBS` (jobs per daemon,
//! default 3).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qapi_tests::live::{storage_daemon, Process};
use qapi_types::qmp::commands::{BlockdevCreate, QueryVersion};
use qapi_types::tokio::{Qmp, Subscription};
use qapi_types::{EventItem, Options};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The process's resident memory, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// The statuses one `blockdev-create` job goes through, dismissed.
const JOB_LIFE: [&str; 6] = [
    "created",
    "running",
    "waiting",
    "pending",
    "concluded",
    "null",
];

fn create(daemon: &Process, i: usize, k: u64) -> BlockdevCreate {
    let file = daemon.dir.join(format!("job{k}.img"));
    serde_json::from_value(serde_json::json!({
        "job-id": format!("d{i}-j{k}"),
        "options": { "driver": "file", "filename": file, "size": 1 << 20 },
    }))
    .expect("a blockdev-create command")
}

struct Tally {
    received: usize,
    misrouted: usize,
    lagged: u64,
    wrong_life: usize,
}

/// Check what one connection's subscriber received: every event one of
/// its own daemon's jobs, each job's whole life in order.
fn tally(i: usize, jobs: u64, sub: &mut Subscription) -> Tally {
    let mut t = Tally {
        received: 0,
        misrouted: 0,
        lagged: 0,
        wrong_life: 0,
    };
    let mut lives: Vec<Vec<String>> = vec![Vec::new(); jobs as usize];
    let prefix = format!("d{i}-j");
    while let Some(item) = sub.try_recv() {
        match item {
            EventItem::Lagged(n) => t.lagged += n,
            EventItem::Event(ev) => {
                t.received += 1;
                let id = ev.data["id"].as_str().unwrap_or_default();
                match id
                    .strip_prefix(&prefix)
                    .and_then(|k| k.parse::<usize>().ok())
                {
                    Some(k) if k < lives.len() => {
                        lives[k].push(ev.data["status"].as_str().unwrap_or("?").to_string())
                    }
                    _ => t.misrouted += 1,
                }
            }
        }
    }
    t.wrong_life = lives.iter().filter(|l| *l != &JOB_LIFE).count();
    t
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: do nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n = env("QAPI_SCALE_DAEMONS", 200) as usize;
    let load = Duration::from_secs(env("QAPI_SCALE_SECONDS", 5));
    let jobs = env("QAPI_SCALE_JOBS", 3);

    let started = Instant::now();
    let daemons: Vec<Process> = (0..n).map(|_| storage_daemon(&[])).collect();
    let daemons = Arc::new(daemons);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        // Settled before measuring: the runtime's threads exist.
        tokio::task::yield_now().await;
        let before = rss_kib();
        let opts = Options::default().connect_timeout(Some(Duration::from_secs(120)));
        let connecting: Vec<_> = (0..n)
            .map(|i| {
                let (daemons, opts) = (daemons.clone(), opts.clone());
                tokio::spawn(async move {
                    let qmp = Qmp::connect_unix_with(daemons[i].sock(), &opts)
                        .await
                        .unwrap_or_else(|e| panic!("daemon {i}: {e}"));
                    let sub = qmp.subscribe_filter(|e| e.name == "JOB_STATUS_CHANGE");
                    (qmp, sub)
                })
            })
            .collect();
        let mut conns = Vec::with_capacity(n);
        for c in connecting {
            conns.push(c.await.expect("a connection"));
        }
        let connected = rss_kib();
        println!(
            "{n} qemu-storage-daemon 10.0.2 monitors connected and subscribed in {:.1} s \
             (daemons started in the same time)",
            started.elapsed().as_secs_f64()
        );

        let commands = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let t0 = Instant::now();
        let mut work = Vec::new();
        for (i, (qmp, _)) in conns.iter().enumerate() {
            let (qmp2, commands2, stop2) = (qmp.clone(), commands.clone(), stop.clone());
            work.push(tokio::spawn(async move {
                while !stop2.load(Ordering::Relaxed) {
                    let v = qmp2.execute(&QueryVersion {}).await.expect("query-version");
                    assert_eq!(v.qemu.major, 10);
                    commands2.fetch_add(1, Ordering::Relaxed);
                }
            }));
            let (qmp, commands, daemons) = (qmp.clone(), commands.clone(), daemons.clone());
            work.push(tokio::spawn(async move {
                for k in 0..jobs {
                    qmp.run_job(&create(&daemons[i], i, k), Some(Duration::from_secs(120)))
                        .await
                        .unwrap_or_else(|e| panic!("daemon {i}, job {k}: {e}"));
                    // blockdev-create, query-jobs, job-dismiss.
                    commands.fetch_add(3, Ordering::Relaxed);
                }
            }));
        }
        tokio::time::sleep(load).await;
        stop.store(true, Ordering::Relaxed);
        for w in work {
            w.await.expect("a worker");
        }
        let elapsed = t0.elapsed().as_secs_f64();
        let loaded = rss_kib();
        let total = commands.load(Ordering::Relaxed);

        let mut received = 0;
        let mut misrouted = 0;
        let mut lagged = 0;
        let mut wrong = 0;
        for (i, (_, sub)) in conns.iter_mut().enumerate() {
            let t = tally(i, jobs, sub);
            received += t.received;
            misrouted += t.misrouted;
            lagged += t.lagged;
            wrong += t.wrong_life;
        }
        let expected = n * jobs as usize * JOB_LIFE.len();
        let per = |kib: u64| kib.saturating_sub(before) as f64 / n as f64;
        println!(
            "memory: RSS {before} KiB before connecting, {connected} KiB connected and \
             subscribed, {loaded} KiB after the load: {:.1} KiB per connection idle, {:.1} KiB \
             after the load",
            per(connected),
            per(loaded)
        );
        println!(
            "commands: {total} in {elapsed:.2} s across {n} connections: {:.0} commands/s \
             (query-version in a loop on every connection, plus {jobs} blockdev-create jobs \
             each run to their end)",
            total as f64 / elapsed
        );
        println!(
            "events: {received} JOB_STATUS_CHANGE received, {expected} expected \
             ({n} daemons x {jobs} jobs x {} statuses); {misrouted} on the wrong connection, \
             {wrong} jobs whose statuses were missing or out of order, {lagged} dropped \
             (lagged)",
            JOB_LIFE.len()
        );
        let ok = received == expected && misrouted == 0 && wrong == 0 && lagged == 0;
        println!(
            "verdict: {}",
            if ok {
                "no event lost or misrouted"
            } else {
                "EVENTS LOST OR MISROUTED"
            }
        );
        for (qmp, _) in &conns {
            qmp.close().await;
        }
        assert!(ok, "events lost or misrouted");
    });
    drop(rt);
    // Every daemon is stopped and its folder removed here (and on a
    // panic above, as the stack unwinds).
    drop(daemons);
}
