//! Every construct through serde and back, against literal QMP JSON.

use qapi_example_downstream::commands::{DriveResize, QueryDrives};
use qapi_example_downstream::events::{Event, EventMessage};
use qapi_example_downstream::*;
use qapi_runtime::Command;
use serde_json::json;

fn roundtrip<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
    v: T,
    wire: serde_json::Value,
) {
    assert_eq!(serde_json::to_value(&v).unwrap(), wire, "serialize");
    assert_eq!(serde_json::from_value::<T>(wire).unwrap(), v, "deserialize");
}

#[test]
fn enums_keep_wire_names_and_unknown_values() {
    roundtrip(DriveBus::Virtio, json!("virtio"));
    roundtrip(DriveBus::Other("nvme".into()), json!("nvme"));
    assert_eq!(DriveBus::from_wire("ide"), DriveBus::Ide);
    assert_eq!(DriveBus::ALL.len(), 3);
}

#[test]
fn structs_inline_base_members_and_skip_absent_optionals() {
    let d = DriveInfo {
        id: "d0".into(),
        bus: DriveBus::Ide,
        size: 1 << 30,
        read_only: None,
        tags: Some(vec!["boot".into()]),
    };
    roundtrip(
        d,
        json!({"id": "d0", "bus": "ide", "size": 1073741824u64, "tags": ["boot"]}),
    );
    // Unknown members from a newer QEMU are ignored.
    let v: DriveInfo =
        serde_json::from_value(json!({"id": "d", "bus": "scsi", "size": 1, "new-thing": true}))
            .unwrap();
    assert_eq!(v.bus, DriveBus::Scsi);
    // A missing required member is an error.
    assert!(serde_json::from_value::<DriveInfo>(json!({"id": "d", "size": 1})).is_err());
}

#[test]
fn unions_flatten_and_keep_unknown_branches() {
    let c = Console {
        id: "c0".into(),
        branch: ConsoleBranch::Vnc(ConsoleVnc { port: 5900 }),
    };
    assert_eq!(c.branch.tag(), "vnc");
    roundtrip(c, json!({"id": "c0", "kind": "vnc", "port": 5900}));
    let unknown = json!({"id": "c1", "kind": "spice", "addr": "::1"});
    let c: Console = serde_json::from_value(unknown.clone()).unwrap();
    assert!(matches!(&c.branch, ConsoleBranch::Other { tag, .. } if tag == "spice"));
    assert_eq!(c.branch.tag(), "spice");
    assert_eq!(serde_json::to_value(&c).unwrap(), unknown);
}

#[test]
fn alternates_choose_by_json_type() {
    roundtrip(SizeOrName::Bytes(4096), json!(4096));
    roundtrip(SizeOrName::Preset(SizePreset::Large), json!("large"));
    assert!(serde_json::from_value::<SizeOrName>(json!(true)).is_err());
}

#[test]
fn commands_carry_wire_names_arguments_and_return_types() {
    assert_eq!(DriveResize::NAME, "drive-resize");
    let allow_oob = DriveResize::ALLOW_OOB;
    assert!(!allow_oob);
    let args = DriveResize {
        id: "d0".into(),
        size: SizeOrName::Bytes(1),
    };
    assert_eq!(
        serde_json::to_value(&args).unwrap(),
        json!({"id": "d0", "size": 1})
    );
    DriveResize::decode_return(json!({})).unwrap();
    let drives = QueryDrives::decode_return(json!([{"id": "a", "bus": "ide", "size": 2}])).unwrap();
    assert_eq!(drives[0].id, "a");
    assert_eq!(serde_json::to_value(QueryDrives {}).unwrap(), json!({}));
}

#[test]
fn events_decode_known_and_keep_unknown() {
    let m: EventMessage = serde_json::from_value(json!({
        "event": "DRIVE_RESIZED", "data": {"id": "d0", "size": 10},
        "timestamp": {"seconds": 1, "microseconds": 2}
    }))
    .unwrap();
    assert!(matches!(&m.event, Event::DriveResized(e) if e.size == 10));
    assert_eq!(m.event.name(), "DRIVE_RESIZED");
    let m: EventMessage = serde_json::from_value(json!({
        "event": "NEW_EVENT", "data": {"x": 1}, "timestamp": {"seconds": 1, "microseconds": 2}
    }))
    .unwrap();
    assert!(matches!(&m.event, Event::Other { name, .. } if name == "NEW_EVENT"));
}
