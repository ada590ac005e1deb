//! `cargo xtask bench-decode`: four real QEMU replies, captured here
//! from running QEMUs (10.0.2), decoded bytes to typed values by
//! qapi-types' bindings (the way the clients do it,
//! `qapi_types::decode_reply`: routed by a look at the message's ends,
//! then read once where it lies: the message's UTF-8 checked in one
//! go, then `return`'s text straight into the command's type) and by the
//! incumbent's serde-derived types (qapi-qmp 0.15, one `from_slice` of
//! the whole reply, which checks each string's UTF-8 as it reads it).
//! Both sides run interleaved, in one process, a sample being as many
//! calls in a row as take 20 µs; medians and MB/s of the whole reply.
//! The clients copy nothing either for a reply of 64 KiB or more (the
//! last two: they hand their read buffer over to its caller); a smaller
//! one (the first two) they copy out of it, which is not measured here.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use qapi_types::qmp::commands as ours;
use qapi_types::Command;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// A QMP connection that keeps replies as the bytes QEMU sent.
struct Raw {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Raw {
    fn connect(sock: &std::path::Path) -> Raw {
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(sock) {
                Ok(s) => break s,
                Err(e) if start.elapsed() < Duration::from_secs(20) => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("cannot connect to {}: {e}", sock.display()),
            }
        };
        let mut raw = Raw {
            reader: BufReader::new(stream.try_clone().expect("socket")),
            writer: stream,
        };
        raw.line(); // greeting
        raw.call(r#"{"execute": "qmp_capabilities"}"#);
        raw
    }

    fn line(&mut self) -> Vec<u8> {
        let mut buf = Vec::new();
        let n = self.reader.read_until(b'\n', &mut buf).expect("read");
        assert!(n > 0, "QEMU closed the connection");
        buf
    }

    /// Send `request` and return the reply's bytes (events skipped).
    fn call(&mut self, request: &str) -> Vec<u8> {
        self.writer.write_all(request.as_bytes()).expect("write");
        loop {
            let line = self.line();
            if line.starts_with(b"{\"event\"") {
                continue;
            }
            assert!(
                !line.starts_with(b"{\"error\""),
                "{request}: {}",
                String::from_utf8_lossy(&line)
            );
            return line;
        }
    }
}

/// The incumbent's reply: derived, one pass.
#[derive(Deserialize)]
struct Reply<T> {
    #[serde(rename = "return")]
    ret: T,
}

fn theirs<T: DeserializeOwned>(bytes: &[u8]) -> T {
    match serde_json::from_slice::<Reply<T>>(bytes) {
        Ok(r) => r.ret,
        Err(e) => panic!("the incumbent's types: {e}"),
    }
}

/// What the clients do with a reply: `decode_reply` is their route and
/// the one-pass decoding into the command's type, from the bytes where
/// they lie.
fn ours<C: Command>(bytes: &[u8]) -> C::Returns {
    qapi_types::decode_reply::<C>(bytes).unwrap_or_else(|e| panic!("{}: {e}", C::NAME))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Time `k` calls of `f` in a row, keeping their results alive until
/// the clock stops (room for them is made before it starts); the time
/// of one call.
fn once<T>(f: &dyn Fn() -> T, k: usize) -> f64 {
    let mut kept = Vec::with_capacity(k);
    let t = Instant::now();
    for _ in 0..k {
        kept.push(f());
    }
    let s = t.elapsed().as_secs_f64();
    drop(std::hint::black_box(kept));
    s / k as f64
}

struct Row {
    name: &'static str,
    bytes: usize,
    ours: f64,
    theirs: f64,
}

fn bench<O, T>(
    name: &'static str,
    bytes: &[u8],
    ours: &dyn Fn() -> O,
    theirs: &dyn Fn() -> T,
) -> Row {
    // A sample is enough calls in a row to take 20 µs (one call of a
    // large reply; a few hundred of query-status, whose decoding takes
    // about as long as reading the clock twice).  Each side about 0.5 s
    // at most, at least 15 samples, interleaved.
    let one = once(ours, 1).max(once(theirs, 1)).max(1e-8);
    let k = ((20e-6 / one).ceil() as usize).clamp(1, 1000);
    let rounds = ((0.5 / (one * k as f64)) as usize).clamp(15, 2001);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        if i % 2 == 0 {
            a.push(once(ours, k));
            b.push(once(theirs, k));
        } else {
            b.push(once(theirs, k));
            a.push(once(ours, k));
        }
    }
    Row {
        name,
        bytes: bytes.len(),
        ours: median(a),
        theirs: median(b),
    }
}

/// The four replies, captured from running QEMUs: query-status and
/// query-cpu-definitions from QEMU 10.0.2's system emulator,
/// query-qmp-schema and the block graph from its storage daemon.
fn capture() -> [Vec<u8>; 4] {
    let (status, cpus) = {
        let vm = qapi_tests::live::system_emulator10(&[]);
        let mut c = Raw::connect(&vm.sock());
        (
            c.call(r#"{"execute": "query-status", "id": 1}"#),
            c.call(r#"{"execute": "query-cpu-definitions", "id": 2}"#),
        )
    };
    let sd = qapi_tests::live::storage_daemon(&[]);
    let mut c = Raw::connect(&sd.sock());
    let schema = c.call(r#"{"execute": "query-qmp-schema", "id": 3}"#);
    // 3,000 nodes in chains of ten: a null-co node under nine raw ones.
    for chain in 0..300 {
        c.call(&format!(
            r#"{{"execute": "blockdev-add", "arguments": {{"driver": "null-co", "node-name": "c{chain}n0", "size": 1048576}}}}"#
        ));
        for n in 1..10 {
            c.call(&format!(
                r#"{{"execute": "blockdev-add", "arguments": {{"driver": "raw", "node-name": "c{chain}n{n}", "file": "c{chain}n{}"}}}}"#,
                n - 1
            ));
        }
    }
    let nodes = c.call(r#"{"execute": "query-named-block-nodes", "id": 4}"#);
    [status, cpus, schema, nodes]
}

/// With `QAPI_BENCH_DECODE_REPLIES=DIR`, the replies are kept in `DIR`
/// and read from there on the next run (for profiling one decoder
/// without starting QEMU each time); without it, captured afresh.
fn replies() -> [Vec<u8>; 4] {
    let Some(dir) = std::env::var_os("QAPI_BENCH_DECODE_REPLIES") else {
        return capture();
    };
    let dir = std::path::PathBuf::from(dir);
    let names = ["status", "cpus", "schema", "nodes"].map(|n| dir.join(format!("{n}.json")));
    if let Ok(kept) = names
        .iter()
        .map(std::fs::read)
        .collect::<Result<Vec<_>, _>>()
    {
        eprintln!(
            "replies read from {} (kept by an earlier run)",
            dir.display()
        );
        return kept.try_into().expect("four replies");
    }
    let fresh = capture();
    std::fs::create_dir_all(&dir).expect("the replies' folder");
    for (name, bytes) in names.iter().zip(&fresh) {
        std::fs::write(name, bytes).expect("write a reply");
    }
    fresh
}

fn main() {
    let [status, cpus, schema, nodes] = replies();

    // Both sides must decode every reply, and see the same amount.
    assert_eq!(ours::<ours::QueryNamedBlockNodes>(&nodes).len(), 3000);
    assert_eq!(theirs::<Vec<qapi_qmp::BlockDeviceInfo>>(&nodes).len(), 3000);

    let rows = [
        bench(
            "query-status (QEMU 10.0.2 system emulator)",
            &status,
            &|| ours::<ours::QueryStatus>(&status),
            &|| theirs::<qapi_qmp::StatusInfo>(&status),
        ),
        bench(
            "query-cpu-definitions (QEMU 10.0.2 system emulator)",
            &cpus,
            &|| ours::<ours::QueryCpuDefinitions>(&cpus),
            &|| theirs::<Vec<qapi_qmp::CpuDefinitionInfo>>(&cpus),
        ),
        bench(
            "query-qmp-schema (storage daemon 10.0.2)",
            &schema,
            &|| ours::<ours::QueryQmpSchema>(&schema),
            &|| theirs::<Vec<qapi_qmp::SchemaInfo>>(&schema),
        ),
        bench(
            "query-named-block-nodes, 3,000 nodes (storage daemon 10.0.2)",
            &nodes,
            &|| ours::<ours::QueryNamedBlockNodes>(&nodes),
            &|| theirs::<Vec<qapi_qmp::BlockDeviceInfo>>(&nodes),
        ),
    ];
    println!("decoding real replies, bytes to typed values; medians, same run (release build)");
    println!(
        "{:<62} {:>10} {:>11} {:>11} {:>9} {:>9} {:>7}",
        "reply", "bytes", "ours", "derived", "ours", "derived", "ratio"
    );
    let mut met = true;
    for r in &rows {
        let mbs = |t: f64| r.bytes as f64 / t / 1e6;
        let ratio = r.ours / r.theirs;
        met &= ratio <= 1.0;
        println!(
            "{:<62} {:>10} {:>9.1}µs {:>9.1}µs {:>5.0}MB/s {:>5.0}MB/s {:>7.2}",
            r.name,
            r.bytes,
            r.ours * 1e6,
            r.theirs * 1e6,
            mbs(r.ours),
            mbs(r.theirs),
            ratio
        );
    }
    println!(
        "target: ours / derived at most 1.00 on every reply: {}",
        if met { "met" } else { "NOT met" }
    );
}
