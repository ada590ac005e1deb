//! Bad input never crashes or hangs the reader: each case gets a clear
//! error with a place, or a correct result.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use qapi_parser::{Failure, Options, Schema};

/// Read `main` from an in-memory file system.
fn read(files: &[(&str, &[u8])], main: &str) -> Result<Schema, Failure> {
    let cwd = std::env::current_dir().unwrap();
    let map: HashMap<PathBuf, Vec<u8>> = files
        .iter()
        .map(|(n, b)| (cwd.join(n), b.to_vec()))
        .collect();
    let load = move |p: &Path| -> io::Result<Vec<u8>> {
        let abs = cwd.join(p);
        if abs.ends_with("a-folder") {
            return Err(io::Error::from_raw_os_error(21)); // EISDIR
        }
        map.get(&abs)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    };
    Schema::from_file_with(Path::new(main), Options::default(), &load)
}

fn error_text(files: &[(&str, &[u8])], main: &str) -> String {
    match read(files, main) {
        Ok(_) => panic!("{main}: accepted"),
        Err(f) => f.render(),
    }
}

#[test]
fn deep_nesting_is_an_error() {
    let src = format!("{{ 'struct': 'A', 'data': {}", "[".repeat(100_000));
    let e = error_text(&[("deep.json", src.as_bytes())], "deep.json");
    assert!(e.starts_with("deep.json:1:"), "{e}");
    assert!(e.contains("nesting deeper than"), "{e}");
}

#[test]
fn nesting_up_to_the_limit_is_read_in_a_small_stack() {
    // Test threads have 2 MiB of stack; the deepest nesting allowed must
    // fit in far less.
    let handle = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(|| {
            let depth = 250;
            let src = format!(
                "{{ 'struct': 'A', 'data': {{ 'a': {}'str'{} }} }}",
                "[".repeat(depth),
                "]".repeat(depth)
            );
            error_text(&[("d.json", src.as_bytes())], "d.json")
        })
        .unwrap();
    let e = handle.join().expect("no stack overflow");
    // An array of arrays is not valid QAPI; the point is that it is read.
    assert!(e.contains("d.json:1:"), "{e}");
}

#[test]
fn nul_byte_is_an_error_with_a_place() {
    let e = error_text(
        &[("nul.json", b"{ 'enum': 'A',\0 'data': [] }")],
        "nul.json",
    );
    assert!(e.starts_with("nul.json:1:15: unexpected"), "{e}");
    let e = error_text(
        &[("nul.json", b"{ 'enum': 'A\0', 'data': [] }")],
        "nul.json",
    );
    assert!(e.starts_with("nul.json:1:11:"), "{e}");
    assert!(e.contains("U+0000"), "{e}");
}

#[test]
fn invalid_utf8_is_an_error_with_a_place() {
    let e = error_text(
        &[("bad.json", b"# ok\n{ 'enum': 'A', \xff\xfe 'data': [] }")],
        "bad.json",
    );
    assert!(e.starts_with("bad.json:2:16: "), "{e}");
    assert!(e.contains("UTF-8"), "{e}");
}

/// Found by CI's random bytes: line ends were normalised after the bad
/// byte's place was taken, so a `\r\n` before it moved the place off a
/// character boundary and rendering the error panicked.
#[test]
fn invalid_utf8_after_crlf_is_an_error_with_a_place() {
    let e = error_text(
        &[(
            "bad.json",
            b"# ok\r\n\r\n{ 'enum': 'A', \xff\xfe 'data': [] }",
        )],
        "bad.json",
    );
    assert!(e.starts_with("bad.json:3:16: "), "{e}");
    assert!(e.contains("UTF-8"), "{e}");
    // The bad byte right after a lone CR, and as the very first byte.
    let e = error_text(&[("bad.json", b"\r\xe2\x82")], "bad.json");
    assert!(e.starts_with("bad.json:2:1: "), "{e}");
    let e = error_text(&[("bad.json", b"\xc3")], "bad.json");
    assert!(e.starts_with("bad.json:1:1: "), "{e}");
}

#[test]
fn including_a_folder_or_a_missing_file_is_an_error() {
    let e = error_text(&[("m.json", b"\n{ 'include': 'a-folder' }")], "m.json");
    assert!(
        e.starts_with("m.json:2: cannot read included file 'a-folder': Is a directory"),
        "{e}"
    );
    let e = error_text(&[("m.json", b"{ 'include': 'nope.json' }")], "m.json");
    assert!(
        e.starts_with("m.json:1: cannot read included file 'nope.json'"),
        "{e}"
    );
    let e = error_text(&[], "absent.json");
    assert!(
        e.starts_with("cannot read schema file 'absent.json'"),
        "{e}"
    );
}

#[test]
fn include_chain_is_shown() {
    let e = error_text(
        &[
            ("top.json", b"{ 'include': 'sub/mid.json' }"),
            ("sub/mid.json", b"# c\n{ 'include': 'leaf.json' }"),
            ("sub/leaf.json", b"{ 'enum': 'A' 'data': [] }"),
        ],
        "top.json",
    );
    assert_eq!(
        e.lines().collect::<Vec<_>>()[..3],
        [
            "In file included from top.json:1:",
            "In file included from sub/mid.json:2:",
            "sub/leaf.json:1:15: expected ',' or '}' here",
        ]
    );
}

#[test]
fn crlf_line_ends_read_like_lf() {
    let lf =
        b"##\n# @Abc:\n#\n# An enum.\n#\n# @x: an x\n##\n{ 'enum': 'Abc',\n  'data': [ 'x' ] }\n";
    let crlf: Vec<u8> = String::from_utf8(lf.to_vec())
        .unwrap()
        .replace('\n', "\r\n")
        .into_bytes();
    let a = read(&[("a.json", lf)], "a.json").unwrap();
    let b = read(&[("a.json", &crlf)], "a.json").unwrap();
    assert_eq!(qapi_parser::dump::dump(&a), qapi_parser::dump::dump(&b));
    // Places are the same too.
    let bad = b"{ 'enum': 'A',\r\n  'data': [ 'x' 'y' ] }\r\n";
    let e = error_text(&[("c.json", bad)], "c.json");
    assert!(e.starts_with("c.json:2:17: "), "{e}");
}

#[test]
fn fifty_megabytes_are_read() {
    // 50 MB of definitions: each one a struct with a few members.
    let mut src = String::with_capacity(51 << 20);
    let mut i = 0;
    while src.len() < 50 << 20 {
        src.push_str(&format!(
            "# a comment\n{{ 'struct': 'Type{i}', 'data': {{ 'member-one': 'str', '*member-two': ['int'], 'three': {{ 'type': 'bool', 'if': 'CONFIG_X' }} }} }}\n"
        ));
        i += 1;
    }
    let s = read(&[("big.json", src.as_bytes())], "big.json").expect("valid");
    assert!(s.entities.len() > i);
    // And one broken at the very end is reported there.
    src.push_str("{ 'struct': 'Last', 'data': { 'x': 'str' }");
    let e = error_text(&[("big.json", src.as_bytes())], "big.json");
    let lines = src.lines().count();
    assert!(
        e.starts_with(&format!("big.json:{lines}:")),
        "{}",
        &e[..80.min(e.len())]
    );
}

/// Pieces that make up QAPI schemas, to build plausible random inputs.
fn soak_cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3000)
}

fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        " ",
        "\n",
        "\t",
        "'",
        "\\",
        "#",
        "##\n",
        "# @Foo:\n",
        "# @a: x\n",
        "'enum'",
        "'struct'",
        "'union'",
        "'alternate'",
        "'command'",
        "'event'",
        "'data'",
        "'base'",
        "'discriminator'",
        "'include'",
        "'pragma'",
        "'if'",
        "'features'",
        "'returns'",
        "'boxed'",
        "'type'",
        "'name'",
        "'Foo'",
        "'foo'",
        "'FOO'",
        "'str'",
        "'int'",
        "'*opt'",
        "['str']",
        "true",
        "false",
        "'deprecated'",
        "{'all': ['A']}",
        "'x-y'",
        "'doc-required'",
        "\0",
        "é",
        "Features:\n",
        "# Since: 1.0\n",
        "'allow-oob'",
        "'gen'",
        "'a.json'",
    ])
}

proptest! {
    // 3000 cases each in every test run; PROPTEST_CASES asks for more
    // (a soak: `PROPTEST_CASES=200000 cargo test -p qapi-parser --test robustness`).
    #![proptest_config(ProptestConfig { cases: soak_cases(), .. ProptestConfig::default() })]

    /// Random token soup: never a panic; every error has a place in a
    /// file that was read, or is about reading the main file.
    #[test]
    fn any_input_gets_a_result_or_an_error_with_a_place(pieces in prop::collection::vec(piece(), 0..60)) {
        let src: String = pieces.concat();
        let files: [(&str, &[u8]); 2] = [("f.json", src.as_bytes()), ("a.json", b"{ 'enum': 'Inc', 'data': [] }")];
        match read(&files, "f.json") {
            Ok(schema) => { let _ = qapi_parser::dump::dump(&schema); }
            Err(f) => {
                let text = f.render();
                prop_assert!(!text.is_empty());
                let label = f.diagnostic.primary.as_ref().expect("errors in a file have a place");
                let file = f.sources.file(label.span.file);
                prop_assert!((label.span.start as usize) < file.text.len());
            }
        }
    }

    /// Random bytes, including invalid UTF-8.
    #[test]
    fn any_bytes_get_a_result_or_an_error(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let files: [(&str, &[u8]); 1] = [("f.json", &bytes)];
        if let Err(f) = read(&files, "f.json") {
            prop_assert!(!f.render().is_empty());
        }
    }

    /// Token soup with line ends of every kind and broken UTF-8 mixed in:
    /// the error's place is inside the text that was kept.
    #[test]
    fn token_soup_with_bad_bytes_gets_an_error_with_a_place(pieces in prop::collection::vec(prop_oneof![
        4 => piece().prop_map(|p| p.as_bytes().to_vec()),
        1 => prop::sample::select(vec![
            &b"\r"[..], b"\r\n", b"\xff", b"\xe2\x82", b"\xc3", b"\xf0\x9f\x92", b"\xed\xa0\x80", b"\x80",
        ]).prop_map(<[u8]>::to_vec),
    ], 0..60)) {
        let src: Vec<u8> = pieces.concat();
        let files: [(&str, &[u8]); 1] = [("f.json", &src)];
        if let Err(f) = read(&files, "f.json") {
            prop_assert!(!f.render().is_empty());
            let label = f.diagnostic.primary.as_ref().expect("errors in a file have a place");
            let file = f.sources.file(label.span.file);
            prop_assert!((label.span.start as usize) < file.text.len());
            prop_assert!(file.text.is_char_boundary(label.span.start as usize));
            prop_assert!(file.text.is_char_boundary(label.span.end as usize));
        }
    }

    /// Mutations of a valid schema: delete or insert at one place.
    #[test]
    fn mutated_schema_gets_a_result_or_an_error(at in 0usize..400, cut in 0usize..5, insert in piece()) {
        let good = "##\n# @Color:\n#\n# A color.\n#\n# @red: red\n#\n# @blue: blue\n##\n{ 'enum': 'Color', 'data': [ 'red', 'blue' ] }\n\n##\n# @Paint:\n#\n# @color: the color\n#\n# @coats: how many\n##\n{ 'struct': 'Paint', 'data': { 'color': 'Color', '*coats': 'int' } }\n\n##\n# @paint:\n#\n# @what: the paint\n#\n# Returns: nothing much\n##\n{ 'command': 'paint', 'data': { 'what': 'Paint' }, 'returns': 'Paint' }\n";
        let mut bytes = good.as_bytes().to_vec();
        let at = at.min(bytes.len());
        let end = (at + cut).min(bytes.len());
        bytes.splice(at..end, insert.bytes());
        let files: [(&str, &[u8]); 1] = [("f.json", &bytes)];
        if let Err(f) = read(&files, "f.json") {
            prop_assert!(f.diagnostic.primary.is_some());
        }
    }
}
