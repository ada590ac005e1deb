//! `qapi-gen`: check or dump a QAPI schema.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use qapi_parser::{DocMode, Options, Schema};

const USAGE: &str = "\
usage: qapi-gen check [--lenient-docs] [--snippets] FILE
       qapi-gen dump [--lenient-docs] [--snippets] FILE

  check   read and check the schema; print nothing when it is good
  dump    print the checked schema in the format of QEMU's
          tests/qapi-schema/*.out files

  --lenient-docs  accept the documentation style of older QEMU releases
                  (definitions are read the same either way)
  --snippets      show the source line under each error
";

/// Run the command with `args` (without the program name).  Errors go
/// to stderr; the exit code is 0 on success, 1 for a bad schema and 2
/// for bad usage.
pub fn run(args: &[String]) -> ExitCode {
    let mut lenient = false;
    let mut snippets = false;
    let mut rest = Vec::new();
    for a in args {
        match a.as_str() {
            "--lenient-docs" => lenient = true,
            "--snippets" => snippets = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => rest.push(a.as_str()),
        }
    }
    let (cmd, file) = match rest.as_slice() {
        [cmd @ ("check" | "dump"), file] => (*cmd, *file),
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let options = Options {
        doc_mode: if lenient {
            DocMode::Lenient
        } else {
            DocMode::Strict
        },
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
