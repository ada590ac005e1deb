//! QEMU 10.0.2's system emulator (unpacked from bookworm-backports by
//! `qemu_bin::ensure_qemu10`, started by `live::system_emulator10_in`)
//! as a q35 machine with devices, so that the block, PCI, USB, memory,
//! network and QOM queries have something to say: a qcow2 disk on
//! virtio-blk-pci (behind a PCIe root port, in an iothread), an empty
//! CD drive, a virtio-net-pci NIC on user networking, a USB controller
//! with a tablet, a DIMM, a balloon, a VM generation id, a ring-buffer
//! chardev and a VNC server on a socket.
//!
//! Every argument-free query the emulator has (its `query-commands`),
//! and a few queries that take an argument, go through the code path
//! `live_qemu72_strict` uses (`strict_queries`): each reply decodes
//! strictly with 10.0.2's own bindings, with the shipped bindings
//! (QEMU 10.2.0's, folding 10.0 in) in the default mode, and strictly
//! with the shipped bindings once what only 10.0 has (per its schema,
//! vendored in `schema/older/10.0`) is taken out and listed.
//!
//! The bindings of `qapi-qemu-bindings-check` exist only in the live
//! tier (`QAPI_LIVE=1`, which sets `cfg(qapi_live)`): without it the
//! test is a stub that says it was skipped.

#[cfg(qapi_live)]
mod strict_queries;

#[cfg(qapi_live)]
use qapi_qemu_bindings_check::v10_0_2;
#[cfg(qapi_live)]
use qapi_tests::live::{system_emulator10_in, temp_dir};
#[cfg(qapi_live)]
use qapi_types::blocking::Qmp;
#[cfg(qapi_live)]
use qapi_types::qmp::commands::QueryStatus;
#[cfg(qapi_live)]
use qapi_types::qmp::RunState;
#[cfg(qapi_live)]
use qapi_types::Options;
#[cfg(qapi_live)]
use serde_json::json;
#[cfg(qapi_live)]
use strict_queries::{qmp_commands, run, Release};

/// The devices, `{dir}` being the process's folder (where the disk
/// image is made first).
#[cfg(qapi_live)]
const DEVICES: &[&str] = &[
    "-m",
    "128M,slots=1,maxmem=512M",
    "-object",
    "memory-backend-ram,id=mem1,size=128M",
    "-device",
    "pc-dimm,id=dimm1,memdev=mem1",
    "-object",
    "iothread,id=io0",
    "-device",
    "pcie-root-port,id=root0,chassis=1",
    "-device",
    "pcie-root-port,id=root1,chassis=2",
    "-blockdev",
    "driver=file,filename={dir}/disk.qcow2,node-name=file0",
    "-blockdev",
    "driver=qcow2,file=file0,node-name=disk0",
    "-device",
    "virtio-blk-pci,drive=disk0,id=vblk0,bus=root0,iothread=io0",
    "-device",
    "ide-cd,id=cd0,bus=ide.0",
    "-netdev",
    "user,id=net0",
    "-device",
    "virtio-net-pci,netdev=net0,id=nic0,bus=root1",
    "-device",
    "qemu-xhci,id=xhci",
    "-device",
    "usb-tablet,id=tablet0,bus=xhci.0",
    "-device",
    "virtio-balloon-pci,id=balloon0",
    "-device",
    "vmgenid,id=vmgenid0",
    "-chardev",
    "ringbuf,id=rb0",
    "-vnc",
    "unix:{dir}/vnc.sock",
];

#[cfg(not(qapi_live))]
#[test]
fn every_query_of_qemu10_decodes_strictly_with_the_10_2_bindings() {
    qapi_tests::require_live!(bindings, "no QEMU");
}

#[cfg(qapi_live)]
#[test]
fn every_query_of_qemu10_decodes_strictly_with_the_10_2_bindings() {
    qapi_tests::require_live!(bindings, "no QEMU");
    let dir = temp_dir();
    let image = dir.join("disk.qcow2");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&image)
        .arg("64M")
        .status()
        .expect("qemu-img");
    assert!(made.success(), "qemu-img create: {made}");
    let vm = system_emulator10_in(dir, DEVICES);

    let release = Release::qmp("10.0.2", "10.0", |name, v| {
        v10_0_2::qmp::commands::check_return(name, v)
    });
    // The connection decodes strictly too (`Options::strict`).
    let qmp = Qmp::connect_unix_with(vm.sock(), &Options::new().strict(true)).unwrap();
    assert_eq!(qmp.greeting().version, (10, 0, 2));
    let status = qmp.execute(&QueryStatus {}).unwrap();
    // Started without -S: the machine runs (TCG, SeaBIOS found).
    assert_eq!(status.status, RunState::Running);
    assert!(status.running);

    let peripheral = "/machine/peripheral";
    let available = qmp_commands(qmp.execute_raw("query-commands", None).unwrap());
    let execute = |n: &str, a: Option<&_>| qmp.execute_raw(n, a);
    let s = run(
        &execute,
        &available,
        "-machine q35 with devices",
        &release,
        &[
            ("qom-list", json!({"path": peripheral})),
            ("qom-list-properties", json!({"typename": "virtio-blk-pci"})),
            (
                "device-list-properties",
                json!({"typename": "virtio-net-pci"}),
            ),
            (
                "x-query-virtio-status",
                json!({"path": format!("{peripheral}/vblk0/virtio-backend")}),
            ),
            (
                "x-query-virtio-queue-status",
                json!({"path": format!("{peripheral}/nic0/virtio-backend"), "queue": 0}),
            ),
            (
                "query-cpu-model-expansion",
                json!({"type": "full", "model": {"name": "qemu64"}}),
            ),
        ],
    );

    assert!(s.asked >= 60, "only {} queries", s.asked);
    // The devices are in the replies that decoded strictly.
    s.assert_has(&[
        ("query-block", "vblk0"),
        ("query-block", "cd0"),
        ("query-named-block-nodes", "\"qcow2\""),
        ("query-blockstats", "disk0"),
        ("query-pci", "nic0"),
        ("query-pci", "xhci"),
        ("query-rx-filter", "nic0"),
        ("query-iothreads", "io0"),
        ("query-memory-devices", "dimm1"),
        ("query-memdev", "mem1"),
        ("query-chardev", "rb0"),
        ("query-balloon", "actual"),
        ("query-vm-generation-id", "guid"),
        ("query-vnc-servers", "vnc.sock"),
        ("x-query-usb", "Tablet"),
        ("qom-list {\"path\":\"/machine/peripheral\"}", "tablet0"),
    ]);
    // Every reply the shipped bindings have a type for decodes strictly
    // once the parts only 10.0 has are out: none fails on what 10.0
    // cannot send.
    assert!(s.explained.is_empty(), "{:?}", s.explained);
    // Four in five decode strictly; the rest are QEMU's refusals (no
    // KVM, SEV, SGX, …) and commands 10.2 dropped.
    assert!(
        s.decoded.len() * 5 >= s.asked * 4,
        "{} of {}",
        s.decoded.len(),
        s.asked
    );
}
