//! The generated surface as users write it: construction naming only
//! what is set, free-form arguments, glob imports, event decoding errors
//! and per-connection strictness. Every value is checked against the
//! QMP JSON it becomes.
#![cfg(feature = "qmp")]
#![deny(warnings)]

// Both glob imports together must compile, and `String`, `Option` and
// `Result` must still be the prelude's.
use qapi_types::qmp::commands::*;
use qapi_types::qmp::events::*;
use qapi_types::qmp::*;
use serde::Deserialize;
use serde_json::json;

fn wire(v: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).expect("serializes")
}

#[test]
fn prelude_names_are_never_shadowed() {
    let s: String = String::from("still std's");
    let o: Option<u8> = Some(1);
    let r: Result<u8, ()> = Ok(1);
    assert_eq!((s.len(), o, r), (11, Some(1), Ok(1)));
    // QAPI's own `String` type is there under another name.
    assert_eq!(wire(&QapiString::new("x")), json!({"str": "x"}));
}

#[test]
fn a_qcow2_node_over_a_file_node_names_only_what_it_sets() {
    // Three drivers share `BlockdevOptionsFile`, so its branch is named.
    let file = BlockdevOptions::new(BlockdevOptionsBranch::File(BlockdevOptionsFile::new(
        "/tmp/disk.qcow2",
    )))
    .node_name("file0");
    assert_eq!(
        wire(&BlockdevAdd::from(file)),
        json!({"driver": "file", "node-name": "file0", "filename": "/tmp/disk.qcow2"})
    );
    let qcow2 = BlockdevOptions::from(BlockdevOptionsQcow2::new("file0"))
        .node_name("disk0")
        .read_only(false);
    assert_eq!(
        wire(&BlockdevAdd(qcow2)),
        json!({"driver": "qcow2", "node-name": "disk0", "read-only": false, "file": "file0"})
    );
    // A nested definition instead of a reference: the alternate converts.
    let inline = BlockdevOptionsQcow2::new(BlockdevOptions::new(BlockdevOptionsBranch::File(
        BlockdevOptionsFile::new("/d"),
    )));
    assert_eq!(
        wire(&inline)["file"],
        json!({"driver": "file", "filename": "/d"})
    );
}

/// Unsigned numbers, booleans and enums are taken as their own type, so
/// a plain literal is a `u64` size (an `impl Into<u64>` parameter would
/// have made it an `i32`, which does not convert); strings, references,
/// `int` and `number` still take anything that converts (a `u32` for an
/// `int`, an integer for a `number`).
#[test]
fn plain_literals_fill_unsigned_members() {
    let speed: u32 = 1 << 20;
    assert_eq!(
        wire(&BlockJobSetSpeed::new("job0", speed)),
        json!({"device": "job0", "speed": 1048576})
    );
    assert_eq!(wire(&DisplayGtk::default().scale(2)), json!({"scale": 2.0}));
    let create = BlockdevCreateOptionsQcow2::new("file0", 64 << 20)
        .cluster_size(65536)
        .refcount_bits(16)
        .lazy_refcounts(true)
        .preallocation(PreallocMode::Metadata)
        .backing_file(String::from("base.qcow2"));
    assert_eq!(
        wire(&create),
        json!({"file": "file0", "size": 67108864, "cluster-size": 65536, "refcount-bits": 16,
               "lazy-refcounts": true, "preallocation": "metadata", "backing-file": "base.qcow2"})
    );
}

#[test]
fn structs_without_required_members_are_default() {
    assert_eq!(wire(&QueryNamedBlockNodes::default()), json!({}));
    assert_eq!(
        wire(&QueryNamedBlockNodes::default().flat(true)),
        json!({"flat": true})
    );
    assert_eq!(wire(&QueryBlockstats::default()), json!({}));
}

#[test]
fn commands_with_many_optionals_take_their_required_members() {
    let mirror = BlockdevMirror::new("disk0", "target0", MirrorSyncMode::Full).job_id("m0");
    assert_eq!(
        wire(&mirror),
        json!({"job-id": "m0", "device": "disk0", "target": "target0", "sync": "full"})
    );
}

#[test]
fn a_deprecated_member_never_set_is_never_named() {
    // `BlockdevOpenTray.device` is deprecated: building the command
    // without it compiles under `deny(warnings)`.
    assert_eq!(
        wire(&BlockdevOpenTray::default().id("cd0")),
        json!({"id": "cd0"})
    );
}

#[test]
fn device_add_carries_properties_of_any_type() {
    let add = DeviceAdd::new("virtio-blk-pci")
        .id("vd0")
        .bus("root0")
        .prop("drive", "disk0")
        .prop("num-queues", 2)
        .prop("share-rw", true);
    assert_eq!(
        wire(&add),
        json!({"driver": "virtio-blk-pci", "bus": "root0", "id": "vd0",
               "drive": "disk0", "num-queues": 2, "share-rw": true})
    );
    // Decoding puts what is not typed back into the properties.
    let back: DeviceAdd = serde_json::from_value(wire(&add)).unwrap();
    assert_eq!(back, add);
    // A property that is also a typed argument is refused, not sent twice.
    let twice = DeviceAdd::new("e1000").prop("driver", "virtio-net-pci");
    assert!(serde_json::to_value(&twice).is_err());
}

#[test]
fn unions_and_alternates_convert_from_their_branches() {
    let unix = SocketAddressLegacy::from(UnixSocketAddress::new("/run/vm.sock"));
    assert_eq!(
        wire(&unix),
        json!({"type": "unix", "data": {"path": "/run/vm.sock"}})
    );
    assert_eq!(wire(&BlockdevRef::from("node")), json!("node"));
    assert_eq!(
        wire(&BlockdevRefOrNull::from(qapi_types::Null)),
        json!(null)
    );
    assert_eq!(
        wire(&SocketAddress::from(InetSocketAddress::new(
            "localhost",
            "4444"
        ))),
        json!({"type": "inet", "host": "localhost", "port": "4444"})
    );
}

#[test]
fn commands_that_are_their_argument_type_are_one_type() {
    // `drive-mirror`'s arguments are the type `DriveMirror`: the command
    // is that type, reachable from both modules.
    fn command<C: qapi_types::Command>(_: &C) -> &'static str {
        C::NAME
    }
    let m = DriveMirror::new("d0", "/t.qcow2", MirrorSyncMode::Top);
    assert_eq!(command(&m), "drive-mirror");
    let via_module: qapi_types::qmp::commands::DriveMirror = m.clone();
    assert_eq!(via_module, m);
    // `stop` and `STOP` no longer share a name.
    assert_eq!(command(&Stop {}), "stop");
    assert_eq!(<StopEvent as qapi_types::Event>::NAME, "STOP");
}

#[test]
fn events_tell_unknown_from_undecodable() {
    let ok = Event::decode("STOP", json!({})).unwrap();
    assert_eq!(ok.name(), "STOP");
    let unknown = Event::decode("FROM_THE_FUTURE", json!({"x": 1})).unwrap();
    assert!(matches!(unknown, Event::Other { .. }));
    let bad = Event::decode("DEVICE_DELETED", json!({"path": 7})).unwrap_err();
    assert_eq!(bad.name, "DEVICE_DELETED");
    assert_eq!(bad.data, json!({"path": 7}));
    assert!(bad.to_string().contains("DEVICE_DELETED"), "{bad}");
}

#[test]
fn strictness_is_chosen_per_decoding() {
    let json = json!({"running": true, "status": "running", "newer": 1});
    let lenient = qapi_types::with_strict(Some(false), || {
        serde_json::from_value::<StatusInfo>(json.clone())
    });
    assert!(lenient.is_ok());
    let strict = qapi_types::with_strict(Some(true), || {
        serde_json::from_value::<StatusInfo>(json.clone())
    });
    assert!(strict.unwrap_err().to_string().contains("newer"));
    // Nested: the inner choice wins, and the outer one comes back.
    qapi_types::with_strict(Some(true), || {
        qapi_types::with_strict(Some(false), || {
            assert!(!qapi_types::strict());
        });
        assert!(qapi_types::strict());
    });
    assert!(!qapi_types::strict());
}

/// A union's members that come before its discriminator are held until
/// it comes (from serde_json's bytes as their text, from a `Value` or a
/// reader otherwise) and decode the same every way; in strict mode an
/// unknown member inside them is still an error naming it, and a value
/// of the wrong type one naming the member.
#[test]
fn members_before_the_discriminator_decode_every_way() {
    let text = r#"[{"name": "0", "members": [{"name": "a\"b", "type": "int", "default": [1.5, null, {"x": "y"}]}, {"name": "c", "type": "str", "features": ["f"]}], "meta-type": "object", "features": ["g"]},
                  {"name": "q", "ret-type": "1", "meta-type": "command", "arg-type": "0"}]"#;
    let from_bytes: Vec<SchemaInfo> = serde_json::from_slice(text.as_bytes()).unwrap();
    let value: serde_json::Value = serde_json::from_str(text).unwrap();
    let from_value = Vec::<SchemaInfo>::deserialize(&value).unwrap();
    let from_owned: Vec<SchemaInfo> = serde_json::from_value(value.clone()).unwrap();
    let from_reader: Vec<SchemaInfo> = serde_json::from_reader(text.as_bytes()).unwrap();
    assert_eq!(from_bytes, from_value);
    assert_eq!(from_bytes, from_owned);
    assert_eq!(from_bytes, from_reader);
    assert_eq!(wire(&from_bytes), value);
    let SchemaInfoBranch::Object(o) = &from_bytes[0].branch else {
        panic!("an object: {from_bytes:?}")
    };
    assert_eq!(o.members[0].name, "a\"b");
    assert_eq!(o.members[0].default, Some(json!([1.5, null, {"x": "y"}])));

    let unknown = r#"{"name": "0", "members": [{"name": "a", "type": "int", "newer": 1}], "meta-type": "object"}"#;
    assert!(serde_json::from_str::<SchemaInfo>(unknown).is_ok());
    let e = qapi_types::with_strict(Some(true), || {
        serde_json::from_str::<SchemaInfo>(unknown).unwrap_err()
    })
    .to_string();
    assert!(e.contains("unknown member 'newer'"), "{e}");
    assert_eq!(e.matches(" at line ").count(), 1, "{e}");
    let wrong = r#"{"name": "0", "members": [{"name": 7, "type": "int"}], "meta-type": "object"}"#;
    let e = serde_json::from_str::<SchemaInfo>(wrong)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("member 'members': member 'name': invalid type: integer `7`"),
        "{e}"
    );
    assert_eq!(e.matches(" at line ").count(), 1, "{e}");
}
