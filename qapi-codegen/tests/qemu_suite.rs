//! QEMU 10.2.0's front-end test suite (`tests/qapi-schema`), run through
//! `qapi-gen dump` from that folder: every schema its `meson.build` lists.
//!
//! * A good schema (empty `.err`): exit 0, stdout equal to `NAME.out`
//!   byte for byte.
//! * A bad schema: non-zero exit, nothing on stdout, and the first
//!   `FILE:LINE[:COL]: ` line of stderr names the same place as the first
//!   such line of `NAME.err` (the wording is our own).
//!
//! Prints one line per failure and `N passed, M failed`.

use std::path::Path;
use std::process::{Command, ExitCode};

/// The `FILE:LINE[:COL]` of the first line shaped `FILE:LINE[:COL]: …`.
fn first_place(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let mut parts = line.splitn(4, ':');
        let file = parts.next()?;
        let line_no = parts.next()?;
        if file.is_empty()
            || file.contains(' ')
            || line_no.is_empty()
            || !line_no.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let third = parts.next()?;
        match parts.next() {
            Some(_) if !third.is_empty() && third.bytes().all(|b| b.is_ascii_digit()) => {
                Some(format!("{file}:{line_no}:{third}"))
            }
            _ if third.starts_with(' ') => Some(format!("{file}:{line_no}")),
            _ => None,
        }
    })
}

/// The schemas `meson.build` lists, plus the intentionally missing one.
fn listed_schemas(dir: &Path) -> Vec<String> {
    let meson = std::fs::read_to_string(dir.join("meson.build")).expect("meson.build");
    let mut names: Vec<String> = meson
        .lines()
        .skip_while(|l| !l.starts_with("schemas = ["))
        .skip(1)
        .take_while(|l| !l.starts_with(']'))
        .filter_map(|l| {
            let t = l.trim().trim_end_matches(',');
            t.strip_prefix('\'')?.strip_suffix('\'').map(str::to_string)
        })
        .collect();
    if meson.contains("'missing-schema.json'") {
        names.push("missing-schema.json".to_string());
    }
    names
}

fn main() -> ExitCode {
    // The extract in the shared folder beside the workspace (no download).
    let tree = match qapi_tests::qemu_src::ensure("10.2.0") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot get QEMU 10.2.0's sources: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dir = tree.join("tests/qapi-schema");
    let schemas = listed_schemas(&dir);
    assert!(
        schemas.len() > 200,
        "meson.build lists {} schemas",
        schemas.len()
    );
    let (mut passed, mut failed) = (0, 0);
    for schema in &schemas {
        let stem = schema.trim_end_matches(".json");
        let want_out = std::fs::read_to_string(dir.join(format!("{stem}.out"))).unwrap_or_default();
        let want_err = std::fs::read_to_string(dir.join(format!("{stem}.err"))).unwrap_or_default();
        let run = Command::new(env!("CARGO_BIN_EXE_qapi-gen"))
            .current_dir(&dir)
            .args(["dump", schema])
            .output()
            .expect("run qapi-gen");
        let out = String::from_utf8_lossy(&run.stdout);
        let err = String::from_utf8_lossy(&run.stderr);
        let problem = if want_err.is_empty() {
            if !run.status.success() {
                Some(format!("good schema rejected: {}", err.trim_end()))
            } else if out != want_out {
                let line = out
                    .lines()
                    .zip(want_out.lines())
                    .position(|(a, b)| a != b)
                    .map_or(out.lines().count().min(want_out.lines().count()), |i| i)
                    + 1;
                Some(format!("dump differs from {stem}.out from line {line}"))
            } else {
                None
            }
        } else if run.status.success() {
            Some("bad schema accepted".to_string())
        } else if !out.is_empty() {
            Some("bad schema printed on stdout".to_string())
        } else if first_place(&err) != first_place(&want_err) {
            Some(format!(
                "error at {:?}, QEMU at {:?}: {}",
                first_place(&err),
                first_place(&want_err),
                err.trim_end()
            ))
        } else {
            None
        };
        match problem {
            None => passed += 1,
            Some(p) => {
                failed += 1;
                println!("FAIL {schema}: {p}");
            }
        }
    }
    println!("qapi-schema: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
