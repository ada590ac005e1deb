//! The crate guide's six stories, against QEMU 10.0.2's system emulator
//! (q35, TCG, no guest OS): connect and read the run state; a qcow2 disk
//! over a file node; hot-plug it as virtio-blk-pci on a PCIe root port;
//! mirror it to a new node and complete the job, reporting its events;
//! migrate to a file and wait for completion; hot-unplug a device and
//! wait for `DEVICE_DELETED`.
//!
//! Each story is a file in `qapi-types/src/stories/`, included here and
//! in the guide (`qapi-types/src/lib.rs`, where each one is a doc test
//! that compiles), so what the guide shows is what runs here.  The
//! README shows stories 2 to 4 with the same text, checked below.  No
//! raw JSON, no `#[allow(deprecated)]`, no member named that is not set.

use qapi_tests::live::system_emulator10;
use qapi_types::qmp::commands::QueryStatus;
use qapi_types::qmp::{JobStatus, MigrationStatus, RunState};

mod connect {
    include!("../../qapi-types/src/stories/connect.rs");
}
mod qcow2_disk {
    include!("../../qapi-types/src/stories/qcow2_disk.rs");
}
mod hotplug {
    include!("../../qapi-types/src/stories/hotplug.rs");
}
mod mirror {
    include!("../../qapi-types/src/stories/mirror.rs");
}
mod migrate {
    include!("../../qapi-types/src/stories/migrate.rs");
}
mod unplug {
    include!("../../qapi-types/src/stories/unplug.rs");
}

#[test]
fn the_six_stories() {
    qapi_tests::require_live!();
    let vm = system_emulator10(&[
        "-device",
        "pcie-root-port,id=root0,chassis=1",
        "-device",
        "qemu-xhci,id=xhci",
    ]);
    let path = |name: &str| vm.dir.join(name).display().to_string();

    let qmp = connect::connect(&vm.sock()).expect("(1) connect");
    let status = qmp.execute(&QueryStatus {}).expect("query-status");
    assert_eq!(status.status, RunState::Running);

    qcow2_disk::add_qcow2_disk(&qmp, &path("disk.qcow2"), "disk0").expect("(2) qcow2 disk");

    hotplug::hotplug(&qmp, "disk0", "vd0", "root0").expect("(3) device_add");

    qcow2_disk::add_qcow2_disk(&qmp, &path("copy.qcow2"), "copy0").expect("the mirror's target");
    let seen = mirror::mirror(&qmp, "disk0", "copy0").expect("(4) mirror");
    for status in [JobStatus::Ready, JobStatus::Concluded, JobStatus::Null] {
        assert!(seen.contains(&status), "{status} in {seen:?}");
    }

    let saved = path("vm.state");
    let end = migrate::migrate_to_file(&qmp, &saved).expect("(5) migration");
    assert_eq!(end, MigrationStatus::Completed);
    assert!(std::fs::metadata(&saved).expect("the state file").len() > 0);

    unplug::unplug(&qmp, "xhci.0").expect("(6) kbd0 deleted");
}

/// The README shows stories 2 to 4 as they are in the files above: a
/// change to one is a change to the other.
#[test]
fn the_readme_shows_stories_2_to_4_as_they_run() {
    let readme = include_str!("../../README.md");
    for story in [
        include_str!("../../qapi-types/src/stories/qcow2_disk.rs"),
        include_str!("../../qapi-types/src/stories/hotplug.rs"),
        include_str!("../../qapi-types/src/stories/mirror.rs"),
    ] {
        let block = format!("```rust,no_run\n{story}```\n");
        assert!(
            readme.contains(&block),
            "README.md lacks this story, as a code block:\n{block}"
        );
    }
}
