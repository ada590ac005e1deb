//! Generating the token stream (no formatting) for QEMU 10.0.2's full
//! QMP schema; the schema is read once, outside the timing.

use criterion::{criterion_group, criterion_main, Criterion};
use qapi_parser::{Options, Schema};

fn codegen(c: &mut Criterion) {
    let tree = qapi_tests::qemu_src::ensure("10.0.2").expect("QEMU sources");
    let schema = Schema::from_file(tree.join("qapi/qapi-schema.json"), Options::default())
        .unwrap_or_else(|f| panic!("{f}"));
    let config = qapi_codegen::Config::new();
    c.bench_function("tokens/qmp-10.0.2", |b| b.iter(|| config.tokens(&schema)));
}

criterion_group!(benches, codegen);
criterion_main!(benches);
