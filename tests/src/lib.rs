//! Helpers for the cross-crate tests: QEMU's sources (fetched and cached
//! by [`qemu_src::ensure`]) and running QEMU's reference front end.

pub mod examples;
pub mod extracts;
pub mod live;
pub mod qemu_bin;
pub mod qemu_src;
pub mod shared;

use std::path::Path;
use std::process::Command;

/// What QEMU's own front end (`scripts/qapi`, run by python3) prints as
/// the test dump of `schema`, run from `cwd`: `Ok(stdout)` or
/// `Err(stderr)`.
pub fn reference_dump(qemu_tree: &Path, cwd: &Path, schema: &str) -> Result<String, String> {
    // Loads QEMU's test-qapi.py as a module and calls its dump function.
    const DRIVER: &str = "\
import sys, importlib.util
tree, schema = sys.argv[1], sys.argv[2]
sys.path.insert(0, tree + '/scripts')
spec = importlib.util.spec_from_file_location('tq', tree + '/tests/qapi-schema/test-qapi.py')
tq = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tq)
from qapi.error import QAPIError
try:
    tq.test_frontend(schema)
except QAPIError as e:
    sys.stdout.flush()
    print(e, file=sys.stderr)
    sys.exit(1)
";
    let out = Command::new("python3")
        .current_dir(cwd)
        .arg("-c")
        .arg(DRIVER)
        .arg(qemu_tree)
        .arg(schema)
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The commands and events QEMU's own front end (`scripts/qapi`, run by
/// python3 from `qemu_tree`) defines in `schema`: `("command", name)` or
/// `("event", name)`, in its visiting order.  The visitor takes only the
/// name, which every release passes first.
pub fn reference_commands_and_events(
    qemu_tree: &Path,
    schema: &str,
) -> Result<Vec<(String, String)>, String> {
    const DRIVER: &str = "\
import sys
tree, schema = sys.argv[1], sys.argv[2]
sys.path.insert(0, tree + '/scripts')
from qapi.schema import QAPISchema, QAPISchemaVisitor
class Names(QAPISchemaVisitor):
    def visit_command(self, name, *rest):
        print('command', name)
    def visit_event(self, name, *rest):
        print('event', name)
QAPISchema(schema).visit(Names())
";
    let out = Command::new("python3")
        .current_dir(qemu_tree)
        .arg("-c")
        .arg(DRIVER)
        .arg(qemu_tree)
        .arg(schema)
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .map(|l| match l.split_once(' ') {
            Some((kind, name)) => Ok((kind.to_string(), name.to_string())),
            None => Err(format!("unexpected line from QEMU's front end: {l}")),
        })
        .collect()
}
