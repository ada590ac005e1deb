//! No hand-written function in the workspace is over [`LIMIT`] lines,
//! not counting the lines inside `quote!` templates (generated code's
//! text, written as it will read).  Offline: it reads the workspace's
//! `.rs` files, leaving out generated ones (`*/generated/*`, the
//! generator's snapshots) and `target/`.
//!
//! A function's length is the number of lines from its body's `{` to
//! its `}`, both included, less the lines strictly inside a `quote!`
//! invocation's delimiters.  A function nested in another counts in
//! both.  The scanner is a small lexer (comments, strings, raw strings,
//! character literals and lifetimes), not a parser: `fn NAME` followed
//! by a body, outside `quote!` templates, is a function.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use qapi_tests::qemu_src::workspace_root;

/// The most lines a hand-written function may have.
const LIMIT: usize = 150;

/// Functions over the limit today, in crates whose owners are splitting
/// them: `(file, function)`, with the length measured when listed.  The
/// test fails on any function over the limit that is not here, and on
/// an entry that is no longer over it (remove it: the list only
/// shrinks).
const ALLOWED: &[(&str, &str)] = &[];

#[test]
fn no_hand_written_function_is_over_the_limit() {
    let root = workspace_root();
    let mut over = Vec::new();
    let mut allowed_seen = BTreeSet::new();
    for path in rust_files(&root) {
        let rel = relative(&root, &path);
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
        for f in functions(&text) {
            if f.lines <= LIMIT {
                continue;
            }
            if ALLOWED.contains(&(rel.as_str(), f.name.as_str())) {
                allowed_seen.insert((rel.clone(), f.name.clone()));
                println!("allowed: {rel}:{} fn {}: {} lines", f.line, f.name, f.lines);
            } else {
                over.push(format!("{rel}:{} fn {}: {} lines", f.line, f.name, f.lines));
            }
        }
    }
    let stale: Vec<String> = ALLOWED
        .iter()
        .filter(|(file, name)| !allowed_seen.contains(&(file.to_string(), name.to_string())))
        .map(|(file, name)| format!("{file} fn {name}"))
        .collect();
    assert!(
        over.is_empty() && stale.is_empty(),
        "functions over {LIMIT} lines (quote! templates not counted): split them\n{}\n\
         allowed in tests/tests/function_length.rs but no longer over {LIMIT} lines \
         (or gone): remove them from ALLOWED\n{}",
        over.join("\n"),
        stale.join("\n")
    );
}

/// `path` below `root`, with `/` between components.
fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).expect("inside the workspace");
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// The hand-written `.rs` files below `root`, sorted.
fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = relative(root, &path);
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                let skip = name.starts_with('.')
                    || name == "target"
                    || name == "generated"
                    || rel == "qapi-codegen/tests/snapshots";
                if !skip {
                    dirs.push(path);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A function found by [`functions`].
#[derive(Debug, PartialEq)]
struct Function {
    name: String,
    /// The line of `fn` (1-based).
    line: usize,
    /// Its body's lines, `quote!` templates left out.
    lines: usize,
}

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    Punct(char),
}

/// The tokens of Rust source that matter here (identifiers and
/// punctuation, with their lines), comments and literals left out.
fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    // Move past `n` characters, counting lines.
    let skip = |i: &mut usize, line: &mut usize, n: usize| {
        for _ in 0..n {
            if c.get(*i) == Some(&'\n') {
                *line += 1;
            }
            *i += 1;
        }
    };
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            let mut depth = 0;
            loop {
                match (c.get(i), c.get(i + 1)) {
                    (Some('/'), Some('*')) => {
                        depth += 1;
                        skip(&mut i, &mut line, 2);
                    }
                    (Some('*'), Some('/')) => {
                        depth -= 1;
                        skip(&mut i, &mut line, 2);
                        if depth == 0 {
                            break;
                        }
                    }
                    (None, _) => break,
                    _ => skip(&mut i, &mut line, 1),
                }
            }
        } else if ch == '"' {
            let n = quoted_len(&c[i..]);
            skip(&mut i, &mut line, n);
        } else if ch == '\'' {
            let n = char_literal_len(&c[i..]);
            skip(&mut i, &mut line, n);
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let raw = matches!(word.as_str(), "r" | "br" | "cr");
            match c.get(i) {
                Some('"') if matches!(word.as_str(), "b" | "c") || raw => {
                    let n = quoted_len(&c[i..]);
                    skip(&mut i, &mut line, n);
                }
                Some('#') if raw && raw_string_len(&c[i..]).is_some() => {
                    let n = raw_string_len(&c[i..]).unwrap_or(0);
                    skip(&mut i, &mut line, n);
                }
                _ => out.push((Tok::Ident(word), line)),
            }
        } else {
            if !ch.is_whitespace() {
                out.push((Tok::Punct(ch), line));
            }
            skip(&mut i, &mut line, 1);
        }
    }
    out
}

/// The length of the string literal at the start of `c` (`"…"`, with
/// escapes; for `r"…"` there are none that matter but `\"` is not one
/// either, a difference no source here relies on).
fn quoted_len(c: &[char]) -> usize {
    let mut i = 1;
    while i < c.len() {
        match c[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    c.len()
}

/// The length of the raw string's `#…#"…"#…#` at the start of `c`, if
/// it is one.
fn raw_string_len(c: &[char]) -> Option<usize> {
    let hashes = c.iter().take_while(|&&x| x == '#').count();
    if c.get(hashes) != Some(&'"') {
        return None;
    }
    let mut i = hashes + 1;
    while i < c.len() {
        if c[i] == '"'
            && c[i + 1..]
                .iter()
                .take(hashes)
                .filter(|&&x| x == '#')
                .count()
                == hashes
        {
            return Some(i + 1 + hashes);
        }
        i += 1;
    }
    Some(c.len())
}

/// The length of the character literal at the start of `c` (`'a'`,
/// `'\n'`, `'\u{1F600}'`), or 1 for a lifetime's `'`.
fn char_literal_len(c: &[char]) -> usize {
    match (c.get(1), c.get(2)) {
        (Some('\\'), _) => {
            let mut i = 3;
            while i < c.len() && c[i] != '\'' {
                i += 1;
            }
            i + 1
        }
        (Some(_), Some('\'')) => 3,
        _ => 1,
    }
}

/// What an open delimiter is.
enum Open {
    /// A function's body: its name and the line of `fn`.
    Body(String, usize),
    /// A `quote!` invocation's delimiter.
    Quote,
    Other,
}

/// The functions of `text`, with their lengths.
fn functions(text: &str) -> Vec<Function> {
    let toks = tokens(text);
    let mut found: Vec<(String, usize, usize, usize)> = Vec::new();
    let mut template_lines = BTreeSet::new();
    let mut stack: Vec<(Open, usize)> = Vec::new();
    // `fn NAME` seen, body not opened yet: (name, line, depth of ( and [).
    let mut pending: Option<(String, usize, i32)> = None;
    for (k, (tok, line)) in toks.iter().enumerate() {
        let in_quote = stack.iter().any(|(o, _)| matches!(o, Open::Quote));
        match tok {
            Tok::Ident(w) if w == "fn" && !in_quote => {
                if let Some((Tok::Ident(name), _)) = toks.get(k + 1) {
                    pending = Some((name.clone(), *line, 0));
                }
            }
            Tok::Punct(p @ ('{' | '(' | '[')) => {
                let quote = k >= 2
                    && toks[k - 1].0 == Tok::Punct('!')
                    && matches!(&toks[k - 2].0, Tok::Ident(w) if w == "quote");
                let open = match &mut pending {
                    Some((name, fn_line, 0)) if *p == '{' => {
                        let body = Open::Body(name.clone(), *fn_line);
                        pending = None;
                        body
                    }
                    Some((_, _, depth)) => {
                        *depth += 1;
                        Open::Other
                    }
                    None if quote && !in_quote => Open::Quote,
                    None => Open::Other,
                };
                stack.push((open, *line));
            }
            Tok::Punct('}' | ')' | ']') => {
                if let Some((_, _, depth)) = &mut pending {
                    *depth -= 1;
                }
                match stack.pop() {
                    Some((Open::Body(name, fn_line), open_line)) => {
                        found.push((name, fn_line, open_line, *line));
                    }
                    Some((Open::Quote, open_line)) => {
                        template_lines.extend(open_line + 1..*line);
                    }
                    _ => {}
                }
            }
            // A declaration without a body (in a trait, or extern).
            Tok::Punct(';') if matches!(pending, Some((_, _, 0))) => pending = None,
            _ => {}
        }
    }
    let mut out: Vec<Function> = found
        .into_iter()
        .map(|(name, line, open, close)| Function {
            name,
            line,
            lines: (open..=close)
                .filter(|l| !template_lines.contains(l))
                .count(),
        })
        .collect();
    out.sort_by_key(|f| f.line);
    out
}

#[test]
fn the_scanner_measures_bodies_and_leaves_templates_out() {
    let text = r####"
/// fn in_a_comment() {
fn one() {
    let s = "fn in_a_string() { {";
    let r = r#"fn raw() { "# ;
    let c = '{';
    let l: &'static str = "}";
    /* fn block() { /* nested */ } */
}

trait T {
    fn declared(&self) -> u8;
    fn defaulted(&self) -> [u8; 2] {
        [0; 2]
    }
}

fn generate() -> TokenStream {
    let items = quote! {
        fn template() {
            let x = 1;
        }
    };
    items
}
"####;
    let got = functions(text);
    let want = [("one", 3, 7), ("defaulted", 13, 3), ("generate", 18, 5)];
    let got: Vec<(&str, usize, usize)> = got
        .iter()
        .map(|f| (f.name.as_str(), f.line, f.lines))
        .collect();
    assert_eq!(got, want);
}
