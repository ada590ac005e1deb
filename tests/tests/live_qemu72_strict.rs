//! The bindings against QEMU 7.2's `qemu-system-x86_64 -machine none`
//! and `-machine pc`: every argument-free query 7.2 has is run, and each
//! reply decodes strictly with bindings generated from 7.2's own schema,
//! with the shipped bindings (QEMU 10.2.0's, which fold 7.2 in as an
//! older release: members that later releases added and require are
//! `Option`s there) in the default mode, and strictly with the shipped
//! bindings once what only 7.2 has is taken out (`strict_queries`, the
//! code path `live_qemu10` shares).

mod strict_queries;

use qapi_qemu_bindings_check::v7_2;
use qapi_tests::qemu_bin::ensure_qemu72;
use qapi_types::blocking::Qmp;
use strict_queries::{newest, run, Release};

#[test]
fn every_query_of_qemu72_decodes_strictly_on_what_it_shares_with_10_2() {
    let newer = newest();
    let release = Release::vendored("7.2", "7.2", |name, v| {
        v7_2::qmp::commands::check_return(name, v)
    });
    let q = ensure_qemu72().unwrap();
    for machine in ["none", "pc"] {
        let d = q.spawn_system(machine);
        let qmp = Qmp::connect_unix(d.sock()).unwrap();
        let s = run(&qmp, machine, &newer, &release, &[]);
        // Two thirds decode strictly (the rest is QEMU's refusals:
        // nothing may fail to decode).
        assert!(
            s.decoded.len() * 3 >= s.asked * 2,
            "{} of {}",
            s.decoded.len(),
            s.asked
        );
    }
}
