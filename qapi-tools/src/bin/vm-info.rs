//! vm-info: basic facts about a running QEMU, as a readable table.
//!
//! ```text
//! vm-info [-v] SOCKET|HOST:PORT
//! ```
//!
//! `-v` shows the client's tracing on standard error (`-v -v`: the raw
//! JSON too).
//!
//! Prints the QEMU version, run state, name, UUID, CPUs, block devices
//! and block nodes.  What the server does not have (a storage daemon has
//! no CPUs) is shown as `-`.  Replies decode into the generated types;
//! block information is read field by field, so it shows on QEMU
//! releases whose block types differ from the bindings' (7.2 lacks
//! members 10.0.2 requires).

use std::process::ExitCode;

use qapi_types::blocking::Qmp;
use qapi_types::qmp::commands::{QueryCpusFast, QueryName, QueryStatus, QueryUuid, QueryVersion};
use qapi_types::{Command, Error};
use serde_json::Value;

/// A command's reply, `None` when the server does not have it; a lost
/// connection ends the program.
fn ask<C: Command>(qmp: &Qmp, c: &C) -> Result<Option<C::Returns>, Error> {
    match qmp.execute(c) {
        Ok(v) => Ok(Some(v)),
        Err(Error::Qmp(_)) | Err(Error::Decode { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn raw(qmp: &Qmp, name: &str, args: Option<Value>) -> Result<Option<Value>, Error> {
    match qmp.execute_raw(name, args.as_ref()) {
        Ok(v) => Ok(Some(v)),
        Err(Error::Qmp(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Columns padded to their widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        format!("  {}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn report(qmp: &Qmp) -> Result<String, Error> {
    let mut out = String::new();
    let version = ask(qmp, &QueryVersion {})?
        .map(|v| {
            let q = v.qemu;
            format!("{}.{}.{} {}", q.major, q.minor, q.micro, v.package.trim())
        })
        .unwrap_or_else(|| "-".into());
    let state = ask(qmp, &QueryStatus {})?
        .map(|s| s.status.as_str().to_string())
        .unwrap_or_else(|| "-".into());
    let name = ask(qmp, &QueryName {})?
        .and_then(|n| n.name)
        .unwrap_or_else(|| "-".into());
    let uuid = ask(qmp, &QueryUuid {})?
        .map(|u| u.uuid)
        .unwrap_or_else(|| "-".into());
    for (k, v) in [
        ("QEMU", version),
        ("Run state", state),
        ("Name", name),
        ("UUID", uuid),
    ] {
        out.push_str(&format!("{k:<10} {v}\n"));
    }
    match ask(qmp, &QueryCpusFast {})? {
        Some(cpus) => {
            out.push_str(&format!("CPUs       {}\n", cpus.len()));
            let rows: Vec<Vec<String>> = cpus
                .iter()
                .map(|c| {
                    vec![
                        c.cpu_index.to_string(),
                        c.thread_id.to_string(),
                        c.branch.tag().to_string(),
                        c.qom_path.clone(),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                out.push_str(&table(&["INDEX", "THREAD", "TARGET", "QOM PATH"], &rows));
            }
        }
        None => out.push_str("CPUs       -\n"),
    }
    match raw(qmp, "query-block", None)? {
        Some(Value::Array(devs)) => {
            out.push_str(&format!("Block devices: {}\n", devs.len()));
            let rows: Vec<Vec<String>> = devs
                .iter()
                .map(|d| {
                    let ins = &d["inserted"];
                    vec![
                        text(&d["device"]),
                        text(&d["qdev"]),
                        if ins.is_null() {
                            "-".into()
                        } else {
                            text(&ins["node-name"])
                        },
                        if ins.is_null() {
                            "(empty)".into()
                        } else {
                            text(&ins["drv"])
                        },
                        if ins.is_null() {
                            "-".into()
                        } else {
                            text(&ins["file"])
                        },
                        if ins["ro"] == true {
                            "ro".into()
                        } else {
                            "rw".into()
                        },
                    ]
                })
                .collect();
            if !rows.is_empty() {
                out.push_str(&table(
                    &["DEVICE", "QDEV", "NODE", "DRIVER", "FILE", "MODE"],
                    &rows,
                ));
            }
        }
        _ => out.push_str("Block devices: -\n"),
    }
    match raw(
        qmp,
        "query-named-block-nodes",
        Some(serde_json::json!({"flat": true})),
    )? {
        Some(Value::Array(nodes)) => {
            out.push_str(&format!("Block nodes: {}\n", nodes.len()));
            let rows: Vec<Vec<String>> = nodes
                .iter()
                .map(|n| {
                    vec![
                        text(&n["node-name"]),
                        text(&n["drv"]),
                        n["image"]["virtual-size"]
                            .as_i64()
                            .map_or("-".into(), human_size),
                        text(&n["file"]),
                        if n["ro"] == true {
                            "ro".into()
                        } else {
                            "rw".into()
                        },
                    ]
                })
                .collect();
            if !rows.is_empty() {
                out.push_str(&table(&["NODE", "DRIVER", "SIZE", "FILE", "MODE"], &rows));
            }
        }
        _ => out.push_str("Block nodes: -\n"),
    }
    Ok(out)
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let before = args.len();
    args.retain(|a| a != "-v");
    let verbose = before - args.len();
    let [address] = args.as_slice() else {
        eprintln!("usage: vm-info [-v] SOCKET|HOST:PORT");
        return ExitCode::from(2);
    };
    if let Some(level) = qapi_tools::verbose::level(verbose) {
        qapi_tools::verbose::install(level);
    }
    match qapi_tools::connect(address).and_then(|q| report(&q)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vm-info: {address}: {e}");
            ExitCode::FAILURE
        }
    }
}
