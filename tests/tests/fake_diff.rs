//! The fake QEMU against real QEMU 10.0.2 (the storage daemon and the
//! system emulator): generated requests, verdicts compared
//! (`qapi_tests::fake_diff`; `cargo xtask fake-diff` prints the same).

#[test]
fn fake_agrees_with_qemu() {
    let report = qapi_tests::fake_diff::run().unwrap();
    eprintln!("{}", report.summary());
    eprintln!("per kind: {:?}", report.kinds);
    for d in &report.differences {
        eprintln!("{d}");
    }
    assert!(report.requests >= 300, "{}", report.summary());
    for kind in [
        "valid",
        "missing",
        "unexpected",
        "wrong-type",
        "enum",
        "branch",
        "no-arguments",
    ] {
        assert!(
            report.kinds.get(kind).copied().unwrap_or(0) >= 5,
            "few {kind}: {:?}",
            report.kinds
        );
    }
    assert!(
        report.same * 100 >= report.requests * 99,
        "{} ({} differences listed above)",
        report.summary(),
        report.differences.len()
    );
}
