//! Bindings generated from a newer release with `Config::older_schema`:
//! replies and events of the older release, which lack the members the
//! newer one added, decode; what the newer release sends is unchanged;
//! command arguments and types the older release lacks keep their
//! required members.

use qapi_example_downstream::compat::{self, commands, events};
use qapi_types::Command;
use serde_json::json;

#[test]
fn older_replies_decode_with_the_added_members_absent() {
    // Strict mode too: nothing unknown here, only members left out.
    qapi_types::set_strict(true);
    let old = json!({"id": "a", "name": "n"});
    let info = commands::QueryInfo::decode_return(old.clone()).unwrap();
    assert_eq!(info.generation, None);
    assert_eq!(info.acpi, None);
    assert_eq!(info.extra, None);
    // Serialized back, it is what the older release sent.
    assert_eq!(serde_json::to_value(&info).unwrap(), old);

    let whole = commands::QueryWhole::decode_return(json!({"parts": [{"size": 1}]})).unwrap();
    assert_eq!(whole.parts[0].unit, None);

    let ev = events::Event::decode("CHANGED", json!({"name": "x"})).unwrap();
    let events::Event::Changed(c) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(c.reason, None);
    qapi_types::set_strict(false);
}

#[test]
fn newer_replies_are_unchanged() {
    let new = json!({"id": "a", "generation": 3, "name": "n", "acpi": true});
    let info = commands::QueryInfo::decode_return(new.clone()).unwrap();
    assert_eq!(info.generation, Some(3));
    assert_eq!(info.acpi, Some(true));
    assert_eq!(serde_json::to_value(&info).unwrap(), new);
}

#[test]
fn arguments_and_new_types_keep_required_members() {
    // Settings is only sent: its new member stays required (a newer QEMU
    // requires it of callers).
    let s = compat::Settings {
        level: 1,
        mode: "m".into(),
    };
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        json!({"level": 1, "mode": "m"})
    );
    assert!(serde_json::from_value::<compat::Settings>(json!({"level": 1})).is_err());
    // Fresh is not in the older release at all.
    let f: compat::Fresh = serde_json::from_value(json!({"value": 2})).unwrap();
    assert_eq!(f.value, 2);
    assert!(serde_json::from_value::<compat::Fresh>(json!({})).is_err());
}

#[test]
fn a_struct_that_became_a_union_decodes_without_its_discriminator() {
    let old = json!({"enabled": true, "policy": 7});
    let g = commands::QueryGuest::decode_return(old.clone()).unwrap();
    assert!(g.enabled);
    let compat::GuestBranch::Untagged { members } = &g.branch else {
        panic!("{g:?}")
    };
    assert_eq!(members["policy"], 7);
    assert_eq!(g.branch.tag(), "");
    assert_eq!(serde_json::to_value(&g).unwrap(), old);
    // The newer release's replies pick their branch as before.
    let new = json!({"enabled": true, "kind": "plain", "policy": 7});
    let g = commands::QueryGuest::decode_return(new.clone()).unwrap();
    assert_eq!(
        g.branch,
        compat::GuestBranch::Plain(compat::GuestPlain { policy: 7 })
    );
    assert_eq!(serde_json::to_value(&g).unwrap(), new);
}
