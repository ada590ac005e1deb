//! No import cycle between the top-level modules of any crate of the
//! workspace: the modules of a crate form a layered graph (ARCHITECTURE.md,
//! "Invariants").
//!
//! A module's edges are the other modules its code names through
//! `crate::` (directly, `crate::proto::Framer`, or through an item the
//! crate root re-exports from it, `crate::Error` for `pub use
//! error::Error`), and the crate root's are the modules its own code
//! names (`proto::decode_any_reply`); `mod` declarations and re-exports
//! are not edges.  Comment lines are left out, so a doc link is not an
//! edge.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use qapi_tests::qemu_src::workspace_root;

const CRATES: [&str; 10] = [
    "qapi-parser",
    "qapi-codegen",
    "qapi-runtime",
    "qapi-qemu",
    "qapi-client",
    "qapi-types",
    "qapi-fake",
    "qapi-tools",
    "xtask",
    "tests",
];

/// The crate root's name in the graph (`lib.rs`, or `main.rs`).
const ROOT: &str = "(root)";

/// A crate's top-level modules: name → the files that make it up.
fn modules(src: &Path, lib: &str) -> BTreeMap<String, Vec<PathBuf>> {
    let mut out = BTreeMap::new();
    let mut path_attr = None;
    for line in lib.lines().map(str::trim) {
        if let Some(p) = line.strip_prefix("#[path = \"") {
            path_attr = p.strip_suffix("\"]").map(str::to_string);
            continue;
        }
        let decl = line
            .trim_start_matches("pub ")
            .trim_start_matches("pub(crate) ");
        let Some(name) = decl.strip_prefix("mod ").and_then(|n| n.strip_suffix(';')) else {
            if !line.starts_with("#[") {
                path_attr = None;
            }
            continue;
        };
        let mut files = Vec::new();
        match path_attr.take() {
            Some(p) => files.push(src.join(p)),
            None => {
                files.push(src.join(format!("{name}.rs")));
                files.extend(rust_files(&src.join(name)));
            }
        }
        files.retain(|f| f.exists());
        out.insert(name.to_string(), files);
    }
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

/// The code of a file, comment lines left out.
fn code(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names that follow `crate::` in `code`: one for a path, each of a
/// `crate::{a, b::c}` group's first names.
fn crate_names(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        // `$crate::` and `qapi_crate::` are not this crate.
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut start) = (0, 0);
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.insert(ident(group[start..j].trim()));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(group[start..j].trim()));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out.remove("");
    out
}

/// Which module each name the root re-exports comes from
/// (`pub use error::{Error, Result}` → Error: error, Result: error).
fn reexports(lib: &str, mods: &BTreeMap<String, Vec<PathBuf>>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let text = code(lib);
    for stmt in text.split(';') {
        let Some(path) = stmt
            .trim()
            .rsplit("pub use ")
            .next()
            .filter(|_| stmt.contains("pub use "))
        else {
            continue;
        };
        let Some((module, rest)) = path.split_once("::") else {
            continue;
        };
        if !mods.contains_key(module.trim()) {
            continue;
        }
        for name in rest.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if !name.is_empty() {
                out.insert(name.to_string(), module.trim().to_string());
            }
        }
    }
    out
}

/// The crate's module graph: module → the modules it names.
fn graph(krate: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let src = krate.join("src");
    let root_file = ["lib.rs", "main.rs"]
        .iter()
        .map(|f| src.join(f))
        .find(|f| f.exists())
        .unwrap_or_else(|| panic!("{}: no lib.rs or main.rs", src.display()));
    let lib = fs::read_to_string(root_file).unwrap_or_default();
    let mods = modules(&src, &lib);
    let from = reexports(&lib, &mods);
    let resolve = |name: &str| -> Option<String> {
        if mods.contains_key(name) {
            Some(name.to_string())
        } else {
            from.get(name).cloned()
        }
    };
    let mut g = BTreeMap::new();
    for (name, files) in &mods {
        let mut edges = BTreeSet::new();
        for f in files {
            let text = code(&fs::read_to_string(f).unwrap_or_default());
            edges.extend(crate_names(&text).iter().filter_map(|n| resolve(n)));
        }
        edges.remove(name);
        g.insert(name.clone(), edges);
    }
    // The root's own code: lines that are neither declarations nor
    // re-exports, naming `module::`.
    let body: String = code(&lib)
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            !(l.starts_with("pub use ") || l.starts_with("use ") || l.contains("mod "))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let root_edges = mods
        .keys()
        .filter(|m| body.contains(&format!("{m}::")))
        .cloned()
        .collect();
    g.insert(ROOT.to_string(), root_edges);
    g
}

/// A cycle in `g`, as the path that closes it, if there is one.
fn cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        g: &BTreeMap<String, BTreeSet<String>>,
        n: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == n) {
            let mut c = path[at..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(g, m, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(g, n, &mut Vec::new(), &mut done))
}

#[test]
fn no_crate_has_an_import_cycle() {
    let root = workspace_root();
    let mut found = Vec::new();
    for krate in CRATES {
        let g = graph(&root.join(krate));
        assert!(
            g.len() > 1 || krate == "qapi-types",
            "{krate}: no modules found"
        );
        if let Some(c) = cycle(&g) {
            found.push(format!("{krate}: {}", c.join(" -> ")));
        }
    }
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

/// The checker finds a cycle where there is one, through a re-export.
#[test]
fn the_checker_sees_a_cycle_through_a_reexport() {
    let lib = "pub mod a;\nmod b;\npub use b::Thing;\n";
    let mods: BTreeMap<String, Vec<PathBuf>> =
        [("a".to_string(), vec![]), ("b".to_string(), vec![])].into();
    let from = reexports(lib, &mods);
    assert_eq!(from.get("Thing").map(String::as_str), Some("b"));
    let names = crate_names("use crate::{Thing, a::X};\nfn f() { crate::b::g(); $crate::no(); }");
    assert_eq!(
        names,
        ["Thing", "a", "b"].iter().map(|s| s.to_string()).collect()
    );
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), ["b".to_string()].into()),
        ("b".to_string(), ["a".to_string()].into()),
    ]
    .into();
    assert_eq!(cycle(&g), Some(vec!["a".into(), "b".into(), "a".into()]));
}
