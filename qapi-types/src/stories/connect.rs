use std::path::Path;

use qapi_types::blocking::Qmp;
use qapi_types::qmp::commands::QueryStatus;

/// Connects to the QMP socket at `socket` (QEMU started with `-qmp
/// unix:PATH,server=on,wait=off`) and prints the run state.
pub fn connect(socket: &Path) -> qapi_types::Result<Qmp> {
    // Reads the greeting and negotiates capabilities.
    let qmp = Qmp::connect_unix(socket)?;
    let status = qmp.execute(&QueryStatus {})?; // a typed StatusInfo
    println!("run state: {}", status.status);
    Ok(qmp)
}
