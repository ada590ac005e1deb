//! Strict decoding turns what is normally tolerated into errors. (Its
//! own test binary: the switch is global to the process.)

use qapi_example_downstream::{Console, DriveBus, DriveInfo};
use serde_json::json;

#[test]
fn strict_mode_rejects_what_lenient_decoding_keeps() {
    let extra = json!({"id": "d", "bus": "ide", "size": 1, "new-member": true});
    let unknown_enum = json!("nvme");
    let unknown_branch = json!({"id": "c", "kind": "spice"});

    assert!(serde_json::from_value::<DriveInfo>(extra.clone()).is_ok());
    assert!(serde_json::from_value::<DriveBus>(unknown_enum.clone()).is_ok());
    assert!(serde_json::from_value::<Console>(unknown_branch.clone()).is_ok());

    qapi_runtime::set_strict(true);
    let e = serde_json::from_value::<DriveInfo>(extra).unwrap_err();
    assert!(e.to_string().contains("new-member"), "{e}");
    assert!(serde_json::from_value::<DriveBus>(unknown_enum).is_err());
    assert!(serde_json::from_value::<Console>(unknown_branch).is_err());
    // What the bindings know still decodes.
    assert!(
        serde_json::from_value::<DriveInfo>(json!({"id": "d", "bus": "ide", "size": 1})).is_ok()
    );
    qapi_runtime::set_strict(false);
}
