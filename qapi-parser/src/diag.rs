//! Diagnostics: errors as values, with a place in the source.
//!
//! A [`Diagnostic`] renders two ways:
//!
//! * [`Diagnostic::render`]: compiler style, one problem per line:
//!   `In file included from A:L:` lines for the include chain, a
//!   `FILE: In KIND 'NAME':` line naming the definition, then
//!   `FILE:LINE[:COL]: message`.  The places are those QEMU's own front
//!   end reports, so tools that read QEMU's messages can read ours.
//! * [`Diagnostic::render_snippet`]: the same, plus the source line with
//!   a caret under the problem, for people.

use std::fmt::Write as _;

use crate::source::{SourceMap, Span};

/// The definition a problem was found in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// `enum`, `struct`, `union`, `alternate`, `command` or `event`.
    pub meta: String,
    pub name: String,
}

/// One place a diagnostic points at.
#[derive(Clone, Debug)]
pub struct Label {
    pub span: Span,
    /// Whether the column is meaningful (syntax problems) or only the line
    /// (problems with a whole definition).
    pub with_col: bool,
    pub context: Option<Context>,
    pub message: String,
}

/// A problem in a schema.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    /// The main place; `None` for problems that have no place in a schema
    /// file (the main file cannot be read).
    pub primary: Option<Label>,
    /// Used when there is no primary place.
    pub message: String,
    /// Further places, e.g. the previous definition of a name.
    pub notes: Vec<Label>,
}

pub type Result<T> = std::result::Result<T, Box<Diagnostic>>;

impl Diagnostic {
    /// A problem at a line (QEMU's semantic errors carry no column).
    pub fn at_line(span: Span, context: Option<Context>, message: impl Into<String>) -> Box<Self> {
        Box::new(Diagnostic {
            message: String::new(),
            primary: Some(Label {
                span,
                with_col: false,
                context,
                message: message.into(),
            }),
            notes: Vec::new(),
        })
    }

    /// A problem at a line and column (syntax).
    pub fn at(span: Span, message: impl Into<String>) -> Box<Self> {
        Box::new(Diagnostic {
            message: String::new(),
            primary: Some(Label {
                span,
                with_col: true,
                context: None,
                message: message.into(),
            }),
            notes: Vec::new(),
        })
    }

    /// A problem without a place in a schema file.
    pub fn bare(message: impl Into<String>) -> Box<Self> {
        Box::new(Diagnostic {
            primary: None,
            message: message.into(),
            notes: Vec::new(),
        })
    }

    pub fn with_note(
        mut self: Box<Self>,
        span: Span,
        context: Option<Context>,
        message: impl Into<String>,
    ) -> Box<Self> {
        self.notes.push(Label {
            span,
            with_col: false,
            context,
            message: message.into(),
        });
        self
    }

    /// The main message.
    pub fn message(&self) -> &str {
        match &self.primary {
            Some(l) => &l.message,
            None => &self.message,
        }
    }

    /// Compiler-style text, one line per place, ending in a newline.
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = String::new();
        match &self.primary {
            None => {
                let _ = writeln!(out, "{}", self.message);
            }
            Some(label) => render_label(&mut out, sources, label, true),
        }
        for note in &self.notes {
            render_label(&mut out, sources, note, false);
        }
        out
    }

    /// Like [`render`](Self::render), with the source line and a caret
    /// under each place.
    pub fn render_snippet(&self, sources: &SourceMap) -> String {
        let mut out = String::new();
        if let Some(label) = &self.primary {
            render_label(&mut out, sources, label, true);
            snippet(&mut out, sources, label.span);
        } else {
            let _ = writeln!(out, "{}", self.message);
        }
        for note in &self.notes {
            render_label(&mut out, sources, note, false);
            snippet(&mut out, sources, note.span);
        }
        out
    }
}

fn render_label(out: &mut String, sources: &SourceMap, label: &Label, chain: bool) {
    let file = sources.file(label.span.file);
    if chain {
        let mut parents = Vec::new();
        let mut from = file.included_from;
        while let Some(span) = from {
            parents.push(span);
            from = sources.file(span.file).included_from;
        }
        for span in parents.iter().rev() {
            let lc = sources.line_col(*span);
            let _ = writeln!(
                out,
                "In file included from {}:{}:",
                sources.file(span.file).name,
                lc.line
            );
        }
    }
    if let Some(ctx) = &label.context {
        let _ = writeln!(out, "{}: In {} '{}':", file.name, ctx.meta, ctx.name);
    }
    let lc = sources.line_col(label.span);
    if label.with_col {
        let _ = writeln!(
            out,
            "{}:{}:{}: {}",
            file.name, lc.line, lc.col, label.message
        );
    } else {
        let _ = writeln!(out, "{}:{}: {}", file.name, lc.line, label.message);
    }
}

fn snippet(out: &mut String, sources: &SourceMap, span: Span) {
    let text = &sources.file(span.file).text;
    let start = (span.start as usize).min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = &text[line_start..line_end];
    let lc = sources.line_col(span);
    let gutter = lc.line.to_string();
    let pad: String = text[line_start..start]
        .chars()
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let _ = writeln!(out, "{} |", " ".repeat(gutter.len()));
    let _ = writeln!(out, "{gutter} | {line}");
    let _ = writeln!(out, "{} | {pad}^", " ".repeat(gutter.len()));
}

impl std::fmt::Display for Diagnostic {
    /// The message alone; use [`Diagnostic::render`] for the places.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Diagnostic {}
