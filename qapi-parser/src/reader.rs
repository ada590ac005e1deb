//! Reading files: top-level expressions, documentation blocks, and the
//! `include` and `pragma` directives.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Result};
use crate::doc::{self, Doc};
use crate::source::{
    abs_path, dir_name, join_path, normalize_line_ends, normalize_text, FileId, SourceFile,
    SourceMap, Span,
};
use crate::syntax::{self, Item, Node, Value};
use crate::Rules;

/// The `pragma` settings.  Pragmas are global: one anywhere in the
/// schema (in any included file, before or after the definitions it
/// concerns) applies to every definition, and a later setting of the same
/// pragma replaces an earlier one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pragma {
    /// Every definition must be documented.
    pub doc_required: bool,
    /// Commands whose names may use `_`.
    pub command_name_exceptions: Vec<String>,
    /// Commands that may return something other than an object or an
    /// array of objects.
    pub command_returns_exceptions: Vec<String>,
    /// Definitions whose members may go undocumented.
    pub documentation_exceptions: Vec<String>,
    /// Types whose member names may break the naming rules.
    pub member_name_exceptions: Vec<String>,
}

/// A top-level expression, after directives are handled.
#[derive(Debug)]
pub(crate) enum TopExpr {
    /// An `include` directive; the file itself is read in place.
    Include { span: Span, name: String },
    /// A definition, with the documentation block before it.
    Definition { node: Node, doc: Option<usize> },
}

/// Reads a schema's files.
pub(crate) struct Reader<'l> {
    pub sources: SourceMap,
    pub exprs: Vec<TopExpr>,
    pub docs: Vec<Doc>,
    pub pragma: Pragma,
    included: HashSet<PathBuf>,
    cwd: PathBuf,
    mode: Rules,
    load: &'l dyn Fn(&Path) -> io::Result<Vec<u8>>,
}

fn io_reason(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl<'l> Reader<'l> {
    pub fn new(mode: Rules, cwd: PathBuf, load: &'l dyn Fn(&Path) -> io::Result<Vec<u8>>) -> Self {
        Reader {
            sources: SourceMap::new(),
            exprs: Vec::new(),
            docs: Vec::new(),
            pragma: Pragma::default(),
            included: HashSet::new(),
            cwd,
            mode,
            load,
        }
    }

    /// Read the main file.
    pub fn read_main(&mut self, name: &str) -> Result<()> {
        let bytes = (self.load)(Path::new(name)).map_err(|e| {
            Diagnostic::bare(format!(
                "cannot read schema file '{name}': {}",
                io_reason(&e)
            ))
        })?;
        self.read_file(name, bytes, None)
    }

    fn read_file(&mut self, name: &str, bytes: Vec<u8>, included_from: Option<Span>) -> Result<()> {
        let abs = abs_path(Path::new(name), &self.cwd);
        self.included.insert(abs.clone());
        let (text, bad_utf8) = match String::from_utf8(bytes) {
            Ok(t) => (normalize_text(t), None),
            Err(e) => {
                // The place of the first bad byte is taken in the text as
                // it is kept: the valid part before it, line ends
                // normalised; the lossy rest shows where it went wrong.
                let valid = e.utf8_error().valid_up_to();
                let bytes = e.into_bytes();
                let head = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
                let head = normalize_line_ends(head.to_string());
                let at = head.len();
                let tail = String::from_utf8_lossy(&bytes[valid..]);
                (normalize_text(head + &tail), Some(at))
            }
        };
        let file = self.sources.add(SourceFile {
            name: name.to_string(),
            abs_path: abs,
            text,
            included_from,
        });
        if let Some(at) = bad_utf8 {
            // The bad byte became U+FFFD (3 bytes) in the kept text.
            let end = at + '\u{FFFD}'.len_utf8();
            return Err(Diagnostic::at(
                Span::new(file, at, end),
                "this file is not valid UTF-8",
            ));
        }
        // The text lives in the source map for the whole read; take a
        // copy of the handle so the map can grow while items borrow it.
        let text = self.sources.file(file).text.clone();
        let items = syntax::items(file, &text)?;
        self.read_items(file, name, &text, &items)
    }

    /// QEMU's main loop over one file's top-level tokens.
    fn read_items(
        &mut self,
        file: FileId,
        name: &str,
        text: &str,
        items: &[Item<'_>],
    ) -> Result<()> {
        let mut cur_doc: Option<usize> = None;
        let mut pos = 0;
        loop {
            pos = skip_plain_comments(items, pos, text);
            match &items[pos] {
                Item::End(_) => break,
                Item::Halt(p) => return Err(syntax::halt_error(file, text, p.clone())),
                Item::Comment(_) => {
                    // A documentation block.
                    self.reject_expr_doc(cur_doc)?;
                    let (mut doc, next) = doc::read_block(items, pos, text, self.mode)?;
                    pos = next;
                    // QEMU reads the next token before it finishes the block.
                    lexical_lookahead(file, text, items, pos)?;
                    doc.end(self.mode)?;
                    self.docs.push(doc);
                    cur_doc = Some(self.docs.len() - 1);
                }
                Item::Value(p) => {
                    let node = syntax::walk_value(file, text, p.clone())?;
                    pos += 1;
                    lexical_lookahead(file, text, items, pos)?;
                    let line = node.span.at_start();
                    let Value::Object(members) = &node.value else {
                        return Err(Diagnostic::at_line(
                            line,
                            None,
                            "a top-level expression must be an object ({ ... })",
                        ));
                    };
                    if let Some(inc) = node.get("include") {
                        self.reject_expr_doc(cur_doc)?;
                        if members.len() != 1 {
                            return Err(Diagnostic::at_line(
                                line,
                                None,
                                "an 'include' directive takes no other keys",
                            ));
                        }
                        let Some(target) = inc.as_str() else {
                            return Err(Diagnostic::at_line(
                                line,
                                None,
                                "'include' needs a file name (a string)",
                            ));
                        };
                        let incl_name = join_path(dir_name(name), target);
                        self.exprs.push(TopExpr::Include {
                            span: line,
                            name: incl_name.clone(),
                        });
                        self.include(target, &incl_name, line)?;
                    } else if let Some(pragma) = node.get("pragma") {
                        self.reject_expr_doc(cur_doc)?;
                        if members.len() != 1 {
                            return Err(Diagnostic::at_line(
                                line,
                                None,
                                "a 'pragma' directive takes no other keys",
                            ));
                        }
                        let Some(settings) = pragma.as_object() else {
                            return Err(Diagnostic::at_line(
                                line,
                                None,
                                "'pragma' needs an object of settings",
                            ));
                        };
                        for m in settings {
                            self.set_pragma(&m.key, &m.value, line)?;
                        }
                    } else {
                        if let Some(d) = cur_doc {
                            if self.docs[d].symbol.is_none() {
                                return Err(Diagnostic::at_line(
                                    self.docs[d].span,
                                    None,
                                    "documentation before a definition must start with '@NAME:'",
                                ));
                            }
                        }
                        self.exprs.push(TopExpr::Definition { node, doc: cur_doc });
                    }
                    cur_doc = None;
                }
            }
        }
        self.reject_expr_doc(cur_doc)
    }

    fn reject_expr_doc(&self, doc: Option<usize>) -> Result<()> {
        if let Some(d) = doc {
            let doc = &self.docs[d];
            if let Some(sym) = &doc.symbol {
                return Err(Diagnostic::at_line(
                    doc.span,
                    None,
                    format!("documentation for '{sym}' is not followed by its definition"),
                ));
            }
        }
        Ok(())
    }

    fn include(&mut self, target: &str, incl_name: &str, at: Span) -> Result<()> {
        let incl_abs = abs_path(Path::new(incl_name), &self.cwd);
        // A loop: the file is the includer itself or one of its includers.
        let mut file = Some(at.file);
        while let Some(f) = file {
            let sf = self.sources.file(f);
            if sf.abs_path == incl_abs {
                return Err(Diagnostic::at_line(
                    at,
                    None,
                    format!("including '{target}' here would make an include loop"),
                ));
            }
            file = sf.included_from.map(|s| s.file);
        }
        if self.included.contains(&incl_abs) {
            return Ok(());
        }
        let bytes = (self.load)(Path::new(incl_name)).map_err(|e| {
            Diagnostic::at_line(
                at,
                None,
                format!("cannot read included file '{incl_name}': {}", io_reason(&e)),
            )
        })?;
        self.read_file(incl_name, bytes, Some(at))
    }

    fn set_pragma(&mut self, key: &str, value: &Node, at: Span) -> Result<()> {
        let list = |name: &str| -> Result<Vec<String>> {
            let err = || {
                Diagnostic::at_line(at, None, format!("pragma '{name}' takes a list of strings"))
            };
            match &value.value {
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string).ok_or_else(err))
                    .collect(),
                _ => Err(err()),
            }
        };
        match key {
            "doc-required" => match value.value {
                Value::Bool(b) => self.pragma.doc_required = b,
                _ => {
                    return Err(Diagnostic::at_line(
                        at,
                        None,
                        "pragma 'doc-required' takes true or false",
                    ))
                }
            },
            "command-name-exceptions" => self.pragma.command_name_exceptions = list(key)?,
            "command-returns-exceptions" => self.pragma.command_returns_exceptions = list(key)?,
            "documentation-exceptions" => self.pragma.documentation_exceptions = list(key)?,
            "member-name-exceptions" => self.pragma.member_name_exceptions = list(key)?,
            // Their names before QEMU 6.0, in the lenient (older
            // releases') mode.
            "returns-whitelist" if self.mode == Rules::Lenient => {
                self.pragma.command_returns_exceptions = list(key)?
            }
            "name-case-whitelist" if self.mode == Rules::Lenient => {
                self.pragma.member_name_exceptions = list(key)?
            }
            other => {
                return Err(Diagnostic::at_line(
                    at,
                    None,
                    format!("unknown pragma '{other}'"),
                ))
            }
        }
        Ok(())
    }
}

/// Skip ordinary (`#`, not `##`) comments at the top level.
fn skip_plain_comments(items: &[Item<'_>], mut pos: usize, text: &str) -> usize {
    while let Item::Comment(s) = &items[pos] {
        if text[s.start as usize..].starts_with("##") {
            break;
        }
        pos += 1;
    }
    pos
}

/// QEMU reads one token past a value or a documentation block before it
/// acts on it; if that token is malformed, that is the first problem.
fn lexical_lookahead(file: FileId, text: &str, items: &[Item<'_>], pos: usize) -> Result<()> {
    let pos = skip_plain_comments(items, pos, text);
    if let Item::Halt(p) = &items[pos] {
        if syntax::is_lexical_halt(p) {
            return Err(syntax::halt_error(file, text, p.clone()));
        }
    }
    Ok(())
}
