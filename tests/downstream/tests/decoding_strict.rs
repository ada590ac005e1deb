//! Strict decoding from bytes: every unknown member, wherever it is
//! (a struct, a union's branch, before a union's discriminator, inside a
//! nested union), is an error naming it. (Its own test binary: the
//! switch is global to the process.)

use qapi_example_downstream::unions::Nested;
use qapi_example_downstream::{Console, DriveBus, DriveInfo};

fn err<T: serde::de::DeserializeOwned + std::fmt::Debug>(text: &str) -> String {
    serde_json::from_str::<T>(text).unwrap_err().to_string()
}

#[test]
fn strict_mode_names_every_unknown_member() {
    qapi_runtime::set_strict(true);
    let e = err::<DriveInfo>(r#"{"id": "d", "new": 1, "bus": "ide", "size": 1}"#);
    assert!(e.contains("DriveInfo: unknown member 'new'"), "{e}");
    let e = err::<Console>(r#"{"kind": "vnc", "id": "c", "port": 1, "gl": true}"#);
    assert!(e.contains("unknown member 'gl'"), "{e}");
    let e = err::<Console>(r#"{"gl": true, "kind": "vnc", "id": "c", "port": 1}"#);
    assert!(e.contains("unknown member 'gl'"), "{e}");
    let e = err::<Nested>(r#"{"id": "n", "outer": "a", "inner": "x", "size": 1, "z": 0}"#);
    assert!(e.contains("unknown member 'z'"), "{e}");
    let e = err::<Console>(r#"{"kind": "spice", "id": "c"}"#);
    assert!(e.contains("unknown value or branch 'spice'"), "{e}");
    let e = err::<DriveBus>(r#""nvme""#);
    assert!(e.contains("unknown value or branch 'nvme'"), "{e}");
    // What the bindings know still decodes.
    serde_json::from_str::<Console>(r#"{"port": 1, "id": "c", "kind": "vnc"}"#).unwrap();
    serde_json::from_str::<Nested>(r#"{"id": "n", "outer": "a", "inner": "x", "size": 1}"#)
        .unwrap();
    qapi_runtime::set_strict(false);
}
