//! QEMU 10.0.2's system emulator (unpacked from bookworm-backports by
//! `qemu_bin::ensure_qemu10`) starts as `live::system_emulator10` starts
//! it, and answers the typed client.

use qapi_types::blocking::Qmp;
use qapi_types::qmp::commands::QueryStatus;
use qapi_types::qmp::RunState;

#[test]
fn query_status_and_version() {
    let p = qapi_tests::live::system_emulator10(&[]);
    let qmp = Qmp::connect_unix(p.sock()).unwrap();
    assert_eq!(qmp.greeting().version, (10, 0, 2));
    let status = qmp.execute(&QueryStatus {}).unwrap();
    // Started without -S: the machine runs (TCG, SeaBIOS found).
    assert_eq!(status.status, RunState::Running);
    assert!(status.running);
}
