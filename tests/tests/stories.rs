//! The guide's stories with the typed API, against QEMU 10.0.2's system
//! emulator (q35, TCG, no guest OS): connect and read the run state; a
//! qcow2 disk over a file node; hot-plug it as virtio-blk-pci on a PCIe
//! root port; mirror it to a new node and complete the job, reporting
//! its events; migrate to a file and wait for completion; hot-unplug a
//! device and wait for `DEVICE_DELETED`. No raw JSON, no
//! `#[allow(deprecated)]`, no member named that is not set.
//!
//! The unplugged device is a USB one: a PCIe device leaves only when the
//! guest's OS lets it go (QEMU presses the slot's attention button and
//! waits), and this machine runs no guest.

use std::time::Duration;

use qapi_tests::live::system_emulator10;
use qapi_types::blocking::Qmp;
use qapi_types::qmp::commands::{
    BlockdevAdd, BlockdevCreate, BlockdevMirror, DeviceAdd, Migrate, MigrateSetCapabilities,
    QueryStatus,
};
use qapi_types::qmp::events::{JobStatusChange, Migration};
use qapi_types::qmp::{
    BlockdevCreateOptionsFile, BlockdevCreateOptionsQcow2, BlockdevOptions, BlockdevOptionsBranch,
    BlockdevOptionsFile, BlockdevOptionsQcow2, JobStatus, MigrationCapability,
    MigrationCapabilityStatus, MigrationStatus, MirrorSyncMode, RunState,
};
use qapi_types::EventItem;

const LIMIT: Option<Duration> = Some(Duration::from_secs(60));

#[test]
fn the_six_stories() {
    let vm = system_emulator10(&[
        "-device",
        "pcie-root-port,id=root0,chassis=1",
        "-device",
        "qemu-xhci,id=xhci",
    ]);
    let image = vm.dir.join("disk.qcow2").display().to_string();
    let saved = vm.dir.join("vm.state").display().to_string();

    // (1) Connect and print the run state.
    let qmp = Qmp::connect_unix(vm.sock()).expect("connect");
    let status = qmp.execute(&QueryStatus {}).expect("query-status");
    println!("run state: {}", status.status);
    assert_eq!(status.status, RunState::Running);

    // (2) A qcow2 disk over a file node: the image created by two jobs,
    // then the two nodes added.
    let file = BlockdevCreateOptionsFile::new(image.as_str(), 0u64);
    qmp.run_job(&BlockdevCreate::new("create-file", file), LIMIT)
        .expect("file created");
    let file0 = BlockdevOptionsBranch::File(BlockdevOptionsFile::new(image.as_str()));
    qmp.execute(&BlockdevAdd(BlockdevOptions::new(file0).node_name("file0")))
        .expect("file node");
    let format = BlockdevCreateOptionsQcow2::new("file0", 64u64 << 20);
    qmp.run_job(&BlockdevCreate::new("format", format), LIMIT)
        .expect("qcow2 formatted");
    let disk0 = BlockdevOptions::from(BlockdevOptionsQcow2::new("file0")).node_name("disk0");
    qmp.execute(&BlockdevAdd(disk0)).expect("qcow2 node");

    // (3) Hot-plug it as a virtio-blk-pci device on the root port.
    let disk = DeviceAdd::new("virtio-blk-pci")
        .id("vd0")
        .bus("root0")
        .prop("drive", "disk0");
    qmp.execute(&disk).expect("device_add");

    // (4) Mirror it to a new node and complete the job, reporting its
    // events as they come.
    let target = vm.dir.join("copy.qcow2").display().to_string();
    let copy = BlockdevCreateOptionsFile::new(target.as_str(), 0u64);
    qmp.run_job(&BlockdevCreate::new("create-copy", copy), LIMIT)
        .expect("copy's file created");
    let copy_file = BlockdevOptionsBranch::File(BlockdevOptionsFile::new(target.as_str()));
    qmp.execute(&BlockdevAdd(
        BlockdevOptions::new(copy_file).node_name("copy-file"),
    ))
    .expect("copy's file node");
    let format = BlockdevCreateOptionsQcow2::new("copy-file", 64u64 << 20);
    qmp.run_job(&BlockdevCreate::new("format-copy", format), LIMIT)
        .expect("copy formatted");
    let copy0 = BlockdevOptions::from(BlockdevOptionsQcow2::new("copy-file")).node_name("copy0");
    qmp.execute(&BlockdevAdd(copy0)).expect("copy node");
    let events = qmp.subscribe_filter(|e| e.name == "JOB_STATUS_CHANGE");
    let mirror = BlockdevMirror::new("disk0", "copy0", MirrorSyncMode::Full).job_id("mirror0");
    qmp.run_job(&mirror, LIMIT).expect("mirror completed");
    let mut seen = Vec::new();
    while let Some(EventItem::Event(raw)) = events.try_recv() {
        if let Some(Ok(e)) = raw.decode::<JobStatusChange>() {
            if e.id == "mirror0" {
                println!("mirror0: {}", e.status);
                seen.push(e.status);
            }
        }
    }
    for status in [JobStatus::Ready, JobStatus::Concluded, JobStatus::Null] {
        assert!(seen.contains(&status), "{status} in {seen:?}");
    }

    // (5) Migrate to a file and wait for completion (QEMU sends
    // `MIGRATION` events once the `events` capability is on).
    let events_on = MigrationCapabilityStatus::new(MigrationCapability::Events, true);
    qmp.execute(&MigrateSetCapabilities::new(vec![events_on]))
        .expect("events capability");
    let migration = qmp.subscribe_filter(|e| e.name == "MIGRATION");
    qmp.execute(&Migrate::default().uri(format!("file:{saved}")))
        .expect("migrate");
    let done = migration
        .wait_event::<Migration>(Duration::from_secs(120), |m| {
            m.status == MigrationStatus::Completed
        })
        .expect("migration completed");
    println!("migration: {}", done.status);
    assert!(std::fs::metadata(&saved).expect("the state file").len() > 0);

    // (6) Hot-unplug a device and wait for its DEVICE_DELETED.
    qmp.execute(&DeviceAdd::new("usb-kbd").id("kbd0").bus("xhci.0"))
        .expect("usb-kbd plugged");
    qmp.device_del("kbd0", LIMIT).expect("kbd0 deleted");
}
