//! Bindings generated from a newer release with `Config::older_schema`:
//! replies and events of the older release, which lack the members the
//! newer one added, decode; what the newer release sends is unchanged;
//! command arguments and types the older release lacks keep their
//! required members.

use qapi_example_downstream::compat::{self, commands, events};
use qapi_runtime::Command;
use serde_json::json;

#[test]
fn older_replies_decode_with_the_added_members_absent() {
    // Strict mode too: nothing unknown here, only members left out.
    qapi_runtime::set_strict(true);
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
    qapi_runtime::set_strict(false);
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

#[test]
fn a_member_whose_type_changed_takes_both_forms() {
    // Stats was Counters in both older releases, with an integer count
    // and no unit: matched along query-stats, not by name.
    // Either mode (another test here turns strict decoding on).
    let old = json!({"count": 3, "label": "l"});
    let s = commands::QueryStats::decode_return(old.clone()).unwrap();
    assert_eq!(s.count, qapi_runtime::Compat::Older(3));
    assert_eq!(s.count.current(), None);
    assert_eq!(s.unit, None);
    // A string was always a StrOrNull: no change there.
    assert_eq!(s.label, compat::StrOrNull::S("l".into()));
    assert_eq!(serde_json::to_value(&s).unwrap(), old);

    let new = json!({"count": "3", "label": null, "unit": "u"});
    let s = commands::QueryStats::decode_return(new.clone()).unwrap();
    assert_eq!(s.count, qapi_runtime::Compat::Current("3".into()));
    assert_eq!(s.label, compat::StrOrNull::N(qapi_runtime::Null));
    assert_eq!(serde_json::to_value(&s).unwrap(), new);

    // Neither form: the current form's error.
    let e = commands::QueryStats::decode_return(json!({"count": true, "label": "l"}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("count") && e.contains("string"), "{e}");
}

#[test]
fn availability_constants_answer_by_release() {
    use qapi_runtime::{Event, QemuVersion};
    let v = QemuVersion::new;
    assert_eq!(compat::RELEASES, &[v(0, 5), v(1, 0), v(2, 0)]);
    let a = commands::QueryWhole::AVAILABILITY;
    assert_eq!(a.has(v(0, 5)), Some(false));
    assert_eq!(a.has(v(1, 0)), Some(true));
    assert_eq!(a.has(v(2, 0)), Some(true));
    assert_eq!(a.since(), Some(v(1, 0)));
    // In 0.5, dropped in 1.0, back in 2.0.
    let b = commands::QueryBack::AVAILABILITY;
    assert_eq!(b.has(v(0, 5)), Some(true));
    assert_eq!(b.has(v(1, 0)), Some(false));
    assert_eq!(b.likely(v(1, 5)), Some(false));
    assert_eq!(b.since(), Some(v(2, 0)));
    assert_eq!(commands::QueryFresh::AVAILABILITY.since(), Some(v(2, 0)));
    assert_eq!(events::Changed::AVAILABILITY.since(), Some(v(0, 5)));
}
