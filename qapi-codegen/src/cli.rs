//! `qapi-gen`: check or dump a QAPI schema.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use qapi_parser::{Options, Rules, Schema};

const USAGE: &str = "\
usage: qapi-gen check [--lenient] [--snippets] FILE
       qapi-gen dump [--lenient] [--snippets] FILE
       qapi-gen rust [--lenient | --strict] [--runtime PATH] [--cfg]
                     [--no-docs] [--older RELEASE=FILE]... [--release REL]
                     FILE -o OUT.rs

  check   read and check the schema; print nothing when it is good
  dump    print the checked schema in the format of QEMU's
          tests/qapi-schema/*.out files

  rust    write Rust bindings for the schema (see qapi_codegen::Config)

  --lenient       read other QEMU releases' schemas: their documentation
                  style, and the language before 6.2 (simple unions,
                  C conditions, old pragma names); 'rust' falls back
                  to it by itself, with a note, unless
  --strict        (QEMU 10.2.0's rules) is given; --lenient-docs and
                  --strict-docs are their former names
  --snippets      show the source line under each error
  --runtime PATH  path of the runtime crate in generated code (::qapi_runtime)
  --cfg           turn 'if' conditions into #[cfg(qapi = \"CONFIG_...\")]
  --no-docs       leave the schema's documentation out
  --older RELEASE=FILE
                  also read replies of an older QEMU RELEASE whose schema
                  is FILE: members it lacks become Option (see
                  qapi_codegen::Config::older_schema); each definition's
                  documentation says which releases have it
  --release REL   the QEMU release FILE is from, the newest of those
";

/// Run the command with `args` (without the program name).  Errors go
/// to stderr; the exit code is 0 on success, 1 for a bad schema and 2
/// for bad usage.
pub fn run(args: &[String]) -> ExitCode {
    let mut rules = None;
    let mut snippets = false;
    let mut config = crate::Config::new();
    let mut out: Option<&str> = None;
    let mut older: Vec<(&str, &str)> = Vec::new();
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--lenient" | "--lenient-docs" => rules = Some(Rules::Lenient),
            "--strict" | "--strict-docs" => rules = Some(Rules::Strict),
            "--snippets" => snippets = true,
            "--cfg" => {
                config.cfg_conditions(true);
            }
            "--no-docs" => {
                config.docs(false);
            }
            "--runtime" | "-o" | "--older" | "--release" => {
                let Some(v) = it.next() else {
                    eprint!("{USAGE}");
                    return ExitCode::from(2);
                };
                if a == "-o" {
                    out = Some(v.as_str());
                } else if a == "--older" {
                    let Some(pair) = v.split_once('=') else {
                        eprint!("--older takes RELEASE=FILE\n{USAGE}");
                        return ExitCode::from(2);
                    };
                    older.push(pair);
                } else if a == "--release" {
                    config.release(v.as_str());
                } else {
                    config.runtime_path(v.as_str());
                }
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => rest.push(a.as_str()),
        }
    }
    if let Some(r) = rules {
        config.rules(r);
    }
    let (cmd, file) = match rest.as_slice() {
        ["rust", file] if out.is_some() => ("rust", *file),
        [cmd @ ("check" | "dump"), file] => (*cmd, *file),
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if cmd == "rust" {
        for (release, path) in older {
            // An older release's documentation predates today's rules.
            let lenient = Options {
                rules: Rules::Lenient,
            };
            match Schema::from_file(Path::new(path), lenient) {
                Ok(s) => {
                    config.older_schema(release, &s);
                }
                Err(failure) => {
                    eprint!("{}", failure.render());
                    return ExitCode::from(1);
                }
            }
        }
        return match config.generate_string(file) {
            Ok(crate::Generated {
                text,
                renames,
                notes,
                ..
            }) => {
                for n in &notes {
                    eprintln!("note: {n}");
                }
                for r in &renames {
                    eprintln!(
                        "note: in {}, '{}' is named {} to keep it apart from another name",
                        r.scope, r.qapi, r.rust
                    );
                }
                let path = Path::new(out.expect("checked above"));
                match crate::write_if_changed(path, &text) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("{e}");
                        ExitCode::from(1)
                    }
                }
            }
            Err(crate::Error::Schema(failure)) => {
                eprint!(
                    "{}",
                    if snippets {
                        failure.diagnostic.render_snippet(&failure.sources)
                    } else {
                        failure.render()
                    }
                );
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        };
    }
    let options = Options {
        rules: rules.unwrap_or(Rules::Strict),
    };
    match Schema::from_file(Path::new(file), options) {
        Ok(schema) => {
            if cmd == "dump" {
                let text = qapi_parser::dump::dump(&schema);
                let mut out = std::io::stdout().lock();
                if out
                    .write_all(text.as_bytes())
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    return ExitCode::from(1);
                }
            }
            ExitCode::SUCCESS
        }
        Err(failure) => {
            let text = if snippets {
                failure.diagnostic.render_snippet(&failure.sources)
            } else {
                failure.render()
            };
            eprint!("{text}");
            ExitCode::from(1)
        }
    }
}
