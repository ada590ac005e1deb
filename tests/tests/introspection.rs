//! Introspection generated from the IR against a live QEMU: for
//! `storage-daemon/qapi/qapi-schema.json` of QEMU 10.0.2, the bindings'
//! embedded `SCHEMA_INFO`, resolved for the configuration of Debian's
//! build, must equal what `/usr/bin/qemu-storage-daemon` answers to
//! `query-qmp-schema` (masked names, order and all).
//!
//! The bindings of `qapi-qemu-bindings-check` exist only in the live
//! tier (`QAPI_LIVE=1`, which sets `cfg(qapi_live)`): without it each
//! test is a stub that says it was skipped.

#[cfg(qapi_live)]
use qapi_qemu_bindings_check::v10_0_2::storage_daemon::SCHEMA_INFO;
#[cfg(qapi_live)]
use qapi_tests::live::storage_daemon;
#[cfg(qapi_live)]
use qapi_types::blocking::Qmp;
#[cfg(qapi_live)]
use qapi_types::introspect::{differences, resolve};
#[cfg(qapi_live)]
use serde_json::Value;

/// The configuration symbols the storage daemon's schema tests that
/// Debian's qemu-utils 10.0.2 build defines: all but CONFIG_BLKIO and
/// CONFIG_BLKIO_VHOST_VDPA_FD (Debian builds without libblkio) and
/// CONFIG_WIN32.
#[cfg(qapi_live)]
const DEBIAN_10_0_2: &[&str] = &[
    "CONFIG_BRLAPI",
    "CONFIG_DBUS_DISPLAY",
    "CONFIG_FUSE",
    "CONFIG_LIBPMEM",
    "CONFIG_LINUX",
    "CONFIG_LINUX_IO_URING",
    "CONFIG_POSIX",
    "CONFIG_REPLICATION",
    "CONFIG_SECRET_KEYRING",
    "CONFIG_SPICE",
    "CONFIG_SPICE_PROTOCOL",
    "CONFIG_VDUSE_BLK_EXPORT",
    "CONFIG_VHOST_CRYPTO",
    "CONFIG_VHOST_USER_BLK_SERVER",
    "CONFIG_ZSTD",
    "HAVE_CHARDEV_PARALLEL",
    "HAVE_CHARDEV_SERIAL",
    "HAVE_HOST_BLOCK_DEVICE",
    "HAVE_IPPROTO_MPTCP",
];

#[cfg(not(qapi_live))]
#[test]
fn storage_daemon_introspection_matches_the_live_daemon() {
    qapi_tests::require_live!(bindings, "no QEMU");
}

#[cfg(qapi_live)]
#[test]
fn storage_daemon_introspection_matches_the_live_daemon() {
    qapi_tests::require_live!(bindings, "no QEMU");
    let d = storage_daemon(&[]);
    let qmp = Qmp::connect_unix(d.sock()).unwrap();
    let theirs = qmp.execute_raw("query-qmp-schema", None).unwrap();
    let annotated: Value = serde_json::from_str(SCHEMA_INFO).unwrap();
    let ours = resolve(&annotated, &|s| DEBIAN_10_0_2.contains(&s));
    let d = differences(&ours, &theirs);
    assert!(d.is_empty(), "{}", d.join("\n"));
    // Entry by entry, masked numbers and order included.
    let (a, b) = (ours.as_array().unwrap(), theirs.as_array().unwrap());
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x, y);
    }

    // The comparison can fail: a build without CONFIG_LINUX differs, and
    // says where.
    let other = resolve(&annotated, &|s| {
        s != "CONFIG_LINUX" && DEBIAN_10_0_2.contains(&s)
    });
    assert_ne!(other, theirs);
    let d = differences(&other, &theirs);
    assert!(d.iter().any(|l| l.contains("only on the server")), "{d:?}");
}

/// Between two releases (QEMU 7.2's and 10.0.2's QMP introspection, for
/// one configuration), a difference in a type that several commands
/// reach is reported under each: `blockdev-add`'s arguments are
/// `BlockdevOptions`, and `blockdev-reopen` takes a list of them, so
/// every difference below the one is also below the other.
#[cfg(qapi_live)]
#[test]
fn differences_between_releases_are_reported_everywhere() {
    qapi_tests::require_live!(bindings, SOURCES);
    use qapi_qemu_bindings_check::{v10_0_2, v7_2};
    let resolved = |text: &str| {
        let v: Value = serde_json::from_str(text).unwrap();
        resolve(&v, &|s| DEBIAN_10_0_2.contains(&s))
    };
    let (new, old) = (
        resolved(v10_0_2::qmp::SCHEMA_INFO),
        resolved(v7_2::qmp::SCHEMA_INFO),
    );
    let d = differences(&new, &old);
    let add = "command blockdev-add arg-type";
    let below_add: Vec<&String> = d.iter().filter(|l| l.starts_with(add)).collect();
    assert!(!below_add.is_empty(), "{}", d.join("\n"));
    for line in below_add {
        let reopen = line.replacen(add, "command blockdev-reopen arg-type.options[]", 1);
        assert!(d.contains(&reopen), "{line}, but not: {reopen}");
    }
}

#[cfg(not(qapi_live))]
#[test]
fn differences_between_releases_are_reported_everywhere() {
    qapi_tests::require_live!(bindings, SOURCES);
}

/// What the bindings of `qapi-qemu-bindings-check` are generated from.
const SOURCES: &str = "needs QEMU 10.0.2's and 7.2's sources";
