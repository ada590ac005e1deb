//! `qapi-gen`: check, dump or compare QAPI schemas, or write Rust.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use qapi_parser::{Failure, Options, Rules, Schema};

const USAGE: &str = "\
usage: qapi-gen check [--lenient] [--snippets] FILE
       qapi-gen dump [--lenient] [--snippets] FILE
       qapi-gen diff [--lenient | --strict] [--snippets] OLD NEW
       qapi-gen rust [--lenient | --strict] [--runtime PATH] [--cfg]
                     [--no-docs] [--older RELEASE=FILE]... [--release REL]
                     FILE -o OUT.rs

  check   read and check the schema; print nothing when it is good
  dump    print the checked schema in the format of QEMU's
          tests/qapi-schema/*.out files
  diff    print what changed for users from schema OLD to schema NEW
          (commands, events, types, their members, values and
          branches), one line each, then a count; both are read as
          'rust' reads them

  rust    write Rust bindings for the schema (see qapi_codegen::Config)

  --lenient       read other QEMU releases' schemas: their documentation
                  style, and the language before 6.2 (simple unions,
                  C conditions, old pragma names); 'rust' and 'diff'
                  fall back to it by themselves, with a note, unless
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

/// The command line, parsed.
struct Args<'a> {
    rules: Option<Rules>,
    snippets: bool,
    config: crate::Config,
    out: Option<&'a str>,
    older: Vec<(&'a str, &'a str)>,
    rest: Vec<&'a str>,
}

/// Run the command with `args` (without the program name).  Errors go
/// to stderr; the exit code is 0 on success, 1 for a bad schema and 2
/// for bad usage.
pub fn run(args: &[String]) -> ExitCode {
    let mut a = match parse(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if let Some(r) = a.rules {
        a.config.rules(r);
    }
    match a.rest.as_slice() {
        ["rust", file] if a.out.is_some() => rust(&a, file),
        ["diff", old, new] => diff(&a, old, new),
        [cmd @ ("check" | "dump"), file] => check(&a, cmd, file),
        _ => {
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn parse(args: &[String]) -> Result<Args<'_>, ExitCode> {
    let mut a = Args {
        rules: None,
        snippets: false,
        config: crate::Config::new(),
        out: None,
        older: Vec::new(),
        rest: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--lenient" | "--lenient-docs" => a.rules = Some(Rules::Lenient),
            "--strict" | "--strict-docs" => a.rules = Some(Rules::Strict),
            "--snippets" => a.snippets = true,
            "--cfg" => {
                a.config.cfg_conditions(true);
            }
            "--no-docs" => {
                a.config.docs(false);
            }
            "--runtime" | "-o" | "--older" | "--release" => {
                let Some(v) = it.next() else {
                    eprint!("{USAGE}");
                    return Err(ExitCode::from(2));
                };
                if arg == "-o" {
                    a.out = Some(v.as_str());
                } else if arg == "--older" {
                    let Some(pair) = v.split_once('=') else {
                        eprint!("--older takes RELEASE=FILE\n{USAGE}");
                        return Err(ExitCode::from(2));
                    };
                    a.older.push(pair);
                } else if arg == "--release" {
                    a.config.release(v.as_str());
                } else {
                    a.config.runtime_path(v.as_str());
                }
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                return Err(ExitCode::SUCCESS);
            }
            _ => a.rest.push(arg.as_str()),
        }
    }
    Ok(a)
}

/// Print a schema's problem; exit code 1.
fn failed(failure: &Failure, snippets: bool) -> ExitCode {
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

fn error(e: crate::Error, snippets: bool) -> ExitCode {
    match e {
        crate::Error::Schema(failure) => failed(&failure, snippets),
        e => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

/// Write `text` to stdout; exit code 1 if it cannot be written.
fn print_out(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}

fn rust(a: &Args, file: &str) -> ExitCode {
    let mut config = a.config.clone();
    for (release, path) in &a.older {
        // An older release's documentation predates today's rules.
        let lenient = Options {
            rules: Rules::Lenient,
        };
        match Schema::from_file(Path::new(path), lenient) {
            Ok(s) => {
                config.older_schema(*release, &s);
            }
            Err(failure) => {
                eprint!("{}", failure.render());
                return ExitCode::from(1);
            }
        }
    }
    match config.generate_string(file) {
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
            let path = Path::new(a.out.expect("checked by run"));
            match crate::write_if_changed(path, &text) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(1)
                }
            }
        }
        Err(e) => error(e, a.snippets),
    }
}

fn check(a: &Args, cmd: &str, file: &str) -> ExitCode {
    let options = Options {
        rules: a.rules.unwrap_or(Rules::Strict),
    };
    match Schema::from_file(Path::new(file), options) {
        Ok(schema) if cmd == "dump" => print_out(&qapi_parser::dump::dump(&schema)),
        Ok(_) => ExitCode::SUCCESS,
        Err(failure) => failed(&failure, a.snippets),
    }
}

/// `diff OLD NEW`: each file read as `rust` reads it (strict, else
/// lenient with a note), the changes one a line, then their count.
fn diff(a: &Args, old: &str, new: &str) -> ExitCode {
    let mut schemas = Vec::new();
    for file in [old, new] {
        match a.config.read_schema(file) {
            Ok((schema, note)) => {
                if let Some(n) = note {
                    eprintln!("note: {n}");
                }
                schemas.push(schema);
            }
            Err(e) => return error(e, a.snippets),
        }
    }
    let changes = crate::diff::changes(&schemas[0], &schemas[1]);
    let mut text = String::new();
    for c in &changes {
        text.push_str(&format!("{c}\n"));
    }
    text.push_str(&crate::diff::summary(&changes));
    text.push('\n');
    print_out(&text)
}
