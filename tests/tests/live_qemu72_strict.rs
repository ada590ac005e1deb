//! The bindings against QEMU 7.2's `qemu-system-x86_64 -machine none`
//! and `-machine pc`, and its `qemu-ga`: every argument-free query 7.2
//! has is run, and each reply decodes strictly with bindings generated
//! from 7.2's own schema, with the shipped bindings (QEMU 10.2.0's,
//! which fold 7.2 in as an older release: members that later releases
//! added and require are `Option`s there) in the default mode, and
//! strictly with the shipped bindings once what only 7.2 has is taken
//! out (`strict_queries`, the code path `live_qemu10` shares).
//!
//! The bindings of `qapi-qemu-bindings-check` exist only in the live
//! tier (`QAPI_LIVE=1`, which sets `cfg(qapi_live)`): without it each
//! test is a stub that says it was skipped.

#[cfg(qapi_live)]
mod strict_queries;

#[cfg(qapi_live)]
use qapi_qemu_bindings_check::v7_2;
#[cfg(qapi_live)]
use qapi_tests::qemu_bin::ensure_qemu72;
#[cfg(qapi_live)]
use qapi_types::blocking::{GuestAgent, Qmp};
#[cfg(qapi_live)]
use strict_queries::{qga_commands, qmp_commands, run, Release};

#[cfg(not(qapi_live))]
#[test]
fn every_query_of_qemu72_decodes_strictly_on_what_it_shares_with_10_2() {
    qapi_tests::require_live!(bindings, "no QEMU");
}

#[cfg(qapi_live)]
#[test]
fn every_query_of_qemu72_decodes_strictly_on_what_it_shares_with_10_2() {
    qapi_tests::require_live!(bindings, "no QEMU");
    let release = Release::qmp("7.2", "7.2", |name, v| {
        v7_2::qmp::commands::check_return(name, v)
    });
    let q = ensure_qemu72().unwrap();
    for machine in ["none", "pc"] {
        let d = q.spawn_system(machine);
        let qmp = Qmp::connect_unix(d.sock()).unwrap();
        let available = qmp_commands(qmp.execute_raw("query-commands", None).unwrap());
        let execute = |n: &str, a: Option<&_>| qmp.execute_raw(n, a);
        let what = format!("-machine {machine}");
        let s = run(&execute, &available, &what, &release, &[]);
        assert!(s.asked >= 30, "only {} queries", s.asked);
        // Two thirds decode strictly (the rest are QEMU's refusals,
        // commands 10.2 dropped, and replies that only fail on what 7.2
        // alone has: nothing else may fail to decode).
        assert!(
            s.decoded.len() * 3 >= s.asked * 2,
            "{} of {}",
            s.decoded.len(),
            s.asked
        );
    }
}

/// The agent runs on this machine rather than in a guest: what it
/// reads is the host's (its users, file systems, network interfaces).
#[cfg(qapi_live)]
#[test]
fn every_query_of_the_72_agent_decodes_strictly_on_what_it_shares_with_10_2() {
    qapi_tests::require_live!(bindings, "no QEMU");
    let release = Release::qga("7.2", "7.2", |name, v| {
        v7_2::qga::commands::check_return(name, v)
    });
    let d = qapi_tests::live::guest_agent72();
    let ga = GuestAgent::connect_unix(d.sock()).unwrap();
    let available = qga_commands(ga.execute_raw("guest-info", None).unwrap());
    let execute = |n: &str, a: Option<&_>| ga.execute_raw(n, a);
    let s = run(&execute, &available, "qemu-ga", &release, &[]);
    assert!(s.asked >= 10, "only {} queries", s.asked);
    s.assert_has(&[
        ("guest-info", "guest-ping"),
        ("guest-network-get-interfaces", "\"lo\""),
    ]);
    assert!(
        s.decoded.len() * 3 >= s.asked * 2,
        "{} of {}",
        s.decoded.len(),
        s.asked
    );
}

#[cfg(not(qapi_live))]
#[test]
fn every_query_of_the_72_agent_decodes_strictly_on_what_it_shares_with_10_2() {
    qapi_tests::require_live!(bindings, "no QEMU");
}
