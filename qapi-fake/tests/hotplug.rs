//! The guide's example (README, "Testing with the fake QEMU"): a VM
//! manager's function that swaps a VM's disk, tested against the fake.
//!
//! `replace_disk` unplugs the old disk, waits for QEMU to say the device
//! is gone (`DEVICE_DELETED`: deleting its block node before that fails
//! on a real QEMU), deletes the node, then hot-plugs the new disk
//! (`blockdev-add`, `device_add`).

use std::time::Duration;

use qapi_fake::{Fake, QmpError, QmpErrorExt};
use qapi_types::blocking::Qmp;
use qapi_types::{EventItem, Options};
use serde_json::{json, Value};

/// A disk image to plug.
pub struct Disk<'a> {
    pub id: &'a str,
    pub file: &'a str,
    /// The image format (`qcow2`, `raw`).
    pub format: &'a str,
}

/// The function under test.
pub fn replace_disk(qmp: &Qmp, old_id: &str, new: &Disk) -> qapi_types::Result<()> {
    let events = qmp.subscribe();
    qmp.execute_raw("device_del", Some(&json!({ "id": old_id })))?;
    loop {
        match events.recv_timeout(Duration::from_secs(5))? {
            EventItem::Event(e) if e.name == "DEVICE_DELETED" && e.data["device"] == old_id => {
                break
            }
            _ => continue,
        }
    }
    qmp.execute_raw(
        "blockdev-del",
        Some(&json!({ "node-name": format!("{old_id}-node") })),
    )?;
    let node = format!("{}-node", new.id);
    qmp.execute_raw(
        "blockdev-add",
        Some(&json!({
            "driver": new.format,
            "node-name": node,
            "file": { "driver": "file", "filename": new.file },
        })),
    )?;
    qmp.execute_raw(
        "device_add",
        Some(&json!({ "driver": "virtio-blk-pci", "id": new.id, "drive": node })),
    )?;
    Ok(())
}

/// A fake VM with one disk, `disk0`: its handlers keep the devices and
/// nodes QEMU would, and unplugging sends `DEVICE_DELETED` as the guest
/// would let QEMU do.
fn fake_vm() -> Fake {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};
    let fake = Fake::qmp();
    let devices = Arc::new(Mutex::new(BTreeSet::from(["disk0".to_string()])));
    let nodes = Arc::new(Mutex::new(BTreeSet::from(["disk0-node".to_string()])));
    let (d, events) = (devices.clone(), fake.clone());
    fake.on_raw("device_del", move |args| {
        let id = args["id"].as_str().unwrap_or_default();
        if !d.lock().unwrap().remove(id) {
            return Err(QmpError::generic(format!("Device '{id}' not found")));
        }
        events.emit_raw(
            "DEVICE_DELETED",
            json!({ "device": id, "path": format!("/machine/peripheral/{id}") }),
        )?;
        Ok(Value::Null)
    });
    let n = nodes.clone();
    fake.on_raw("blockdev-del", move |args| {
        let name = args["node-name"].as_str().unwrap_or_default();
        match n.lock().unwrap().remove(name) {
            true => Ok(Value::Null),
            false => Err(QmpError::generic(format!(
                "Failed to find node with node-name='{name}'"
            ))),
        }
    });
    let n = nodes.clone();
    fake.on_raw("blockdev-add", move |args| {
        n.lock()
            .unwrap()
            .insert(args["node-name"].as_str().unwrap_or_default().into());
        Ok(Value::Null)
    });
    fake.on_raw("device_add", move |args| {
        let drive = args["drive"].as_str().unwrap_or_default();
        if !nodes.lock().unwrap().contains(drive) {
            return Err(QmpError::generic(format!(
                "Property 'virtio-blk-pci.drive' can't find value '{drive}'"
            )));
        }
        devices
            .lock()
            .unwrap()
            .insert(args["id"].as_str().unwrap_or_default().into());
        Ok(Value::Null)
    });
    fake
}

fn connect(fake: &Fake) -> (Qmp, qapi_fake::Server) {
    let (stream, server) = fake.pair();
    (
        Qmp::start(stream.into(), &Options::default()).unwrap(),
        server,
    )
}

#[test]
fn replaces_the_disk() {
    let fake = fake_vm();
    let (qmp, _server) = connect(&fake);
    let new = Disk {
        id: "disk1",
        file: "/images/new.qcow2",
        format: "qcow2",
    };
    replace_disk(&qmp, "disk0", &new).unwrap();
    assert_eq!(
        fake.commands(),
        [
            "qmp_capabilities",
            "device_del",
            "blockdev-del",
            "blockdev-add",
            "device_add"
        ]
    );
    assert_eq!(
        fake.requests()[3]["arguments"]["file"]["filename"],
        "/images/new.qcow2"
    );
}

/// A mock that accepts anything would let this through; QEMU would not,
/// and neither does the fake: the format is checked against the schema's
/// `BlockdevDriver` values, with QEMU's words, and the device is never
/// plugged.
#[test]
fn a_request_qemu_would_reject_is_rejected() {
    let fake = fake_vm();
    let (qmp, _server) = connect(&fake);
    let new = Disk {
        id: "disk1",
        file: "/images/new.img",
        format: "img",
    };
    match replace_disk(&qmp, "disk0", &new) {
        Err(qapi_types::Error::Qmp(e)) => {
            assert_eq!(e.class, "GenericError");
            assert_eq!(e.desc, "Parameter 'driver' does not accept value 'img'");
        }
        other => panic!("expected QEMU's error, got {other:?}"),
    }
    assert!(!fake.commands().contains(&"device_add".to_string()));
}
