//! Reading and checking schemas.
//!
//! * `qmp-10.0.2`: QEMU 10.0.2's full QMP schema (`qapi/qapi-schema.json`
//!   and its includes), read from memory so only parsing and checking
//!   are timed.
//! * `scaling/N`: synthetic schemas of N definitions (documented enums,
//!   structs, unions, commands, events), reported as throughput: equal
//!   bytes per second at every size means time grows linearly.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use qapi_parser::{Options, Schema};

fn load_tree(root: &Path) -> HashMap<PathBuf, Vec<u8>> {
    let mut files = HashMap::new();
    for dir in ["qapi"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "json") {
                files.insert(e.path(), std::fs::read(e.path()).unwrap());
            }
        }
    }
    files
}

fn read(files: &HashMap<PathBuf, Vec<u8>>, main: &Path) -> Schema {
    let load = |p: &Path| -> std::io::Result<Vec<u8>> {
        files
            .get(p)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    };
    Schema::from_file_with(main, Options::default(), &load).unwrap_or_else(|f| panic!("{f}"))
}

/// A schema of `n` definitions, in groups of five kinds, all documented.
pub fn synthetic(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n / 5 {
        s.push_str(&format!(
            "##\n# @Mode{i}:\n#\n# How thing {i} runs.\n#\n# @fast: quickly\n#\n# @slow: carefully,\n#     over several lines\n#\n# Since: 1.{i}\n##\n\
             {{ 'enum': 'Mode{i}', 'data': [ 'fast', {{ 'name': 'slow', 'if': 'CONFIG_SLOW' }} ] }}\n\n\
             ##\n# @Thing{i}:\n#\n# A thing.\n#\n# @name: its name\n#\n# @how: how it runs\n#\n# @tags: labels\n##\n\
             {{ 'struct': 'Thing{i}',\n  'data': {{ 'name': 'str', '*how': 'Mode{i}', '*tags': ['str'] }} }}\n\n\
             ##\n# @Choice{i}:\n#\n# One of two.\n#\n# @mode: which\n##\n\
             {{ 'union': 'Choice{i}', 'base': {{ 'mode': 'Mode{i}' }},\n  'discriminator': 'mode',\n  'data': {{ 'fast': 'Thing{i}' }} }}\n\n\
             ##\n# @make-thing{i}:\n#\n# Make a thing.\n#\n# @thing: what to make\n#\n# @count: how many\n#\n\
             # Features:\n#\n# @deprecated: gone soon\n#\n# Returns: the thing\n#\n# Since: 2.0\n##\n\
             {{ 'command': 'make-thing{i}', 'data': {{ 'thing': 'Thing{i}', '*count': 'int' }},\n  'returns': 'Thing{i}', 'features': [ 'deprecated' ] }}\n\n\
             ##\n# @THING{i}_MADE:\n#\n# A thing was made.\n#\n# @thing: the thing\n##\n\
             {{ 'event': 'THING{i}_MADE', 'data': {{ 'thing': 'Thing{i}' }} }}\n\n"
        ));
    }
    s
}

fn qmp(c: &mut Criterion) {
    let tree = qapi_tests::qemu_src::ensure("10.0.2").expect("QEMU sources");
    let files = load_tree(&tree);
    let main = tree.join("qapi/qapi-schema.json");
    let bytes: usize = files.values().map(Vec::len).sum();
    let mut g = c.benchmark_group("parse+check");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("qmp-10.0.2", |b| b.iter(|| read(&files, &main)));
    g.finish();
}

fn scaling(c: &mut Criterion) {
    let mut g = c.benchmark_group("scaling");
    g.sample_size(20);
    for n in [500, 2_000, 8_000, 32_000] {
        let text = synthetic(n);
        let main = PathBuf::from("/synthetic/s.json");
        let files: HashMap<PathBuf, Vec<u8>> = [(main.clone(), text.clone().into_bytes())].into();
        // Make sure it is a valid schema before timing it.
        read(&files, &main);
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &files, |b, f| {
            b.iter(|| read(f, &main))
        });
    }
    g.finish();
}

criterion_group!(benches, qmp, scaling);
criterion_main!(benches);
