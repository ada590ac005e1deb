//! Documentation comments: `##` blocks, parsed into sections.
//!
//! A block is a run of comment lines between two `##` lines.  A block
//! whose first line is `# @NAME:` documents the definition that follows;
//! any other block is free-form.  A definition block holds, in order:
//! the body, `@member:` descriptions, `Features:` with `@feature:`
//! descriptions, and tagged sections (`Returns:`, `Errors:`, `Since:`,
//! `TODO:`) mixed with plain paragraphs.
//!
//! The rules are QEMU 10.2's: besides the structure above, every line
//! outside a literal block (`::` or `.. qmp-example::` and the lines
//! indented under it) is at most 70 characters with its `# ` (a line
//! holding only a URL excepted) and separates sentences with two spaces.
//! Older releases wrote documentation that those rules reject (`Note:`
//! and `Example:` sections, long lines, one space between sentences,
//! members left undocumented, other indentation).  By the lenient
//! rules ([`Rules::Lenient`]) such text is kept, in the section it
//! naturally belongs to, instead of being an error; a schema both modes
//! accept has the same definitions in both.

use crate::diag::{Diagnostic, Result};
use crate::source::{is_py_space, Span};
use crate::syntax::{self, Item};
use crate::Rules;

/// What a section of a documentation block is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SectionKind {
    /// The body, or a paragraph without a tag.
    Plain,
    /// `@name:` describing a member, argument, branch or enum value.
    Member,
    /// `@name:` after `Features:`.
    Feature,
    Returns,
    Errors,
    Since,
    Todo,
    /// `Note:` / `Notes:` (older releases only; lenient mode).
    Note,
    /// `Example:` / `Examples:` (older releases only; lenient mode).
    Example,
}

impl SectionKind {
    /// The name QEMU's dump uses for the section (`section=Returns`).
    pub fn title(self) -> &'static str {
        match self {
            SectionKind::Plain => "Plain",
            SectionKind::Member => "Member",
            SectionKind::Feature => "Feature",
            SectionKind::Returns => "Returns",
            SectionKind::Errors => "Errors",
            SectionKind::Since => "Since",
            SectionKind::Todo => "Todo",
            SectionKind::Note => "Note",
            SectionKind::Example => "Example",
        }
    }
}

/// One section of a documentation block.
#[derive(Clone, Debug)]
pub struct Section {
    pub kind: SectionKind,
    /// The member or feature name, for `Member` and `Feature` sections.
    pub name: Option<String>,
    /// The text, without the tag, with leading and trailing blank lines
    /// removed and inner indentation kept.
    pub text: String,
    /// The line the section starts on.
    pub span: Span,
    /// For `Member` and `Feature` sections: whether the schema has the
    /// member or feature described.
    pub connected: bool,
}

/// A documentation block.
#[derive(Clone, Debug)]
pub struct Doc {
    /// The opening `##` line.
    pub span: Span,
    /// The definition documented; `None` for free-form text.
    pub symbol: Option<String>,
    /// All sections in source order; the first is the body.  Sections
    /// added for members that have no description of their own (allowed
    /// by the `documentation-exceptions` pragma) come last, with empty
    /// text.
    pub sections: Vec<Section>,
    /// Member sections by name, in the order QEMU lists them.
    pub args: Vec<usize>,
    /// Feature sections by name, in order.
    pub features: Vec<usize>,
    /// Sections other than the body, members and features, in order.
    pub others: Vec<usize>,
    returns: Option<usize>,
    errors: Option<usize>,
    since: Option<usize>,
}

impl Doc {
    fn new(span: Span, symbol: Option<String>) -> Doc {
        Doc {
            span,
            symbol,
            sections: vec![Section {
                kind: SectionKind::Plain,
                name: None,
                text: String::new(),
                span,
                connected: false,
            }],
            args: Vec::new(),
            features: Vec::new(),
            others: Vec::new(),
            returns: None,
            errors: None,
            since: None,
        }
    }

    /// The body: text before the first member description or section.
    pub fn body(&self) -> &str {
        &self.sections[0].text
    }

    /// The description of a member, argument, branch or enum value.
    pub fn member(&self, name: &str) -> Option<&Section> {
        self.args
            .iter()
            .map(|&i| &self.sections[i])
            .find(|s| s.name.as_deref() == Some(name))
    }

    /// The description of a feature.
    pub fn feature(&self, name: &str) -> Option<&Section> {
        self.features
            .iter()
            .map(|&i| &self.sections[i])
            .find(|s| s.name.as_deref() == Some(name))
    }

    pub fn returns(&self) -> Option<&Section> {
        self.returns.map(|i| &self.sections[i])
    }

    pub fn errors(&self) -> Option<&Section> {
        self.errors.map(|i| &self.sections[i])
    }

    pub fn since(&self) -> Option<&Section> {
        self.since.map(|i| &self.sections[i])
    }

    fn append_line(&mut self, line: &str) {
        let s = self.sections.last_mut().expect("a doc has a body");
        s.text.push_str(line);
        s.text.push('\n');
    }

    fn ensure_untagged_section(&mut self, span: Span) {
        let last = self.sections.last_mut().expect("a doc has a body");
        if last.kind == SectionKind::Plain {
            if last.text.is_empty() {
                last.span = span;
            }
            last.text.push('\n');
            return;
        }
        self.push_other(SectionKind::Plain, span);
    }

    fn push_other(&mut self, kind: SectionKind, span: Span) {
        self.sections.push(Section {
            kind,
            name: None,
            text: String::new(),
            span,
            connected: false,
        });
        self.others.push(self.sections.len() - 1);
    }

    fn new_tagged_section(&mut self, span: Span, kind: SectionKind, strict: bool) -> Result<()> {
        let slot = match kind {
            SectionKind::Returns => Some(&mut self.returns),
            SectionKind::Errors => Some(&mut self.errors),
            SectionKind::Since => Some(&mut self.since),
            _ => None,
        };
        let index = self.sections.len();
        if let Some(slot) = slot {
            if slot.is_some() {
                if strict {
                    return Err(Diagnostic::at_line(
                        span,
                        None,
                        format!(
                            "a second '{}:' section in one documentation block",
                            kind.title()
                        ),
                    ));
                }
            } else {
                *slot = Some(index);
            }
        }
        self.push_other(kind, span);
        Ok(())
    }

    fn new_description(
        &mut self,
        span: Span,
        name: &str,
        kind: SectionKind,
        strict: bool,
    ) -> Result<()> {
        if name.is_empty() {
            return Err(Diagnostic::at_line(
                span,
                None,
                "'@:' needs a name between '@' and ':'",
            ));
        }
        let list = if kind == SectionKind::Feature {
            &self.features
        } else {
            &self.args
        };
        let dup = list
            .iter()
            .any(|&i| self.sections[i].name.as_deref() == Some(name));
        if dup && strict {
            return Err(Diagnostic::at_line(
                span,
                None,
                format!("'@{name}:' is described twice"),
            ));
        }
        self.sections.push(Section {
            kind,
            name: Some(name.to_string()),
            text: String::new(),
            span,
            connected: false,
        });
        let index = self.sections.len() - 1;
        if !dup {
            if kind == SectionKind::Feature {
                self.features.push(index);
            } else {
                self.args.push(index);
            }
        }
        Ok(())
    }

    /// Trim the sections and check none is empty (QEMU's `end()`).
    pub(crate) fn end(&mut self, mode: Rules) -> Result<()> {
        for s in &mut self.sections {
            s.text = s.text.trim_matches('\n').to_string();
            if s.kind != SectionKind::Plain && s.text.is_empty() && mode == Rules::Strict {
                let what = match (&s.kind, &s.name) {
                    (SectionKind::Member | SectionKind::Feature, Some(n)) => format!("'@{n}:'"),
                    (k, _) => format!("'{}:'", k.title()),
                };
                return Err(Diagnostic::at_line(
                    s.span,
                    None,
                    format!("{what} needs a description"),
                ));
            }
        }
        Ok(())
    }

    /// Record that the schema has this member; for an undocumented one,
    /// add an empty description (the caller decides whether that is an
    /// error).
    pub(crate) fn connect_member(&mut self, name: &str) -> bool {
        if let Some(&i) = self
            .args
            .iter()
            .find(|&&i| self.sections[i].name.as_deref() == Some(name))
        {
            self.sections[i].connected = true;
            return true;
        }
        self.sections.push(Section {
            kind: SectionKind::Member,
            name: Some(name.to_string()),
            text: String::new(),
            span: self.span,
            connected: true,
        });
        self.args.push(self.sections.len() - 1);
        false
    }

    /// Record that the schema has this feature; false if it has no
    /// description.
    pub(crate) fn connect_feature(&mut self, name: &str) -> bool {
        match self
            .features
            .iter()
            .find(|&&i| self.sections[i].name.as_deref() == Some(name))
        {
            Some(&i) => {
                self.sections[i].connected = true;
                true
            }
            None => false,
        }
    }

    /// Described members and features the schema does not have.
    pub(crate) fn check_described(&self) -> Result<()> {
        for (list, what) in [(&self.args, "member"), (&self.features, "feature")] {
            let bogus: Vec<&Section> = list
                .iter()
                .map(|&i| &self.sections[i])
                .filter(|s| !s.connected)
                .collect();
            if let Some(first) = bogus.first() {
                let names: Vec<String> = bogus
                    .iter()
                    .map(|s| format!("'{}'", s.name.as_deref().unwrap_or("")))
                    .collect();
                let msg = if bogus.len() == 1 {
                    format!(
                        "the documentation describes {what} {}, which the definition does not have",
                        names[0]
                    )
                } else {
                    format!(
                        "the documentation describes {what}s {}, which the definition does not have",
                        names.join(", ")
                    )
                };
                return Err(Diagnostic::at_line(first.span, None, msg));
            }
        }
        Ok(())
    }
}

/// `@name:` at the start of a line: the name and where the text after
/// the colon (and its blanks) starts.
fn at_name_colon(line: &str) -> Option<(&str, usize)> {
    let rest = line.strip_prefix('@')?;
    let colon = rest.find(':')?;
    let name = &rest[..colon];
    let mut end = 1 + colon + 1;
    end += line[end..].bytes().take_while(|&b| b == b' ').count();
    Some((name, end))
}

/// A tagged section heading (`Returns:`, `Since:`, …): its kind and where
/// the text after it starts.  `Word::` is rST markup, not a heading.
fn tagged_heading(line: &str) -> Option<(SectionKind, usize)> {
    const TAGS: [(&str, SectionKind); 8] = [
        ("Returns", SectionKind::Returns),
        ("Errors", SectionKind::Errors),
        ("Since", SectionKind::Since),
        ("Notes", SectionKind::Note),
        ("Note", SectionKind::Note),
        ("Examples", SectionKind::Example),
        ("Example", SectionKind::Example),
        ("TODO", SectionKind::Todo),
    ];
    for (tag, kind) in TAGS {
        if let Some(rest) = line.strip_prefix(tag) {
            if rest.starts_with(':') && !rest.starts_with("::") {
                let end = tag.len() + 1 + rest[1..].bytes().take_while(|&b| b == b' ').count();
                return Some((kind, end));
            }
        }
    }
    None
}

/// A line that opens a literal block: `::` alone or `.. qmp-example::`
/// (QEMU's `(\.\. +qmp-example)? *::$`).
fn is_literal_start(line: &str) -> bool {
    let rest = match line.strip_prefix("..") {
        Some(r) if r.starts_with(' ') => {
            match r.trim_start_matches(' ').strip_prefix("qmp-example") {
                Some(after) => after,
                None => line,
            }
        }
        _ => line,
    };
    rest.trim_start_matches(' ') == "::"
}

/// A line that is only a URL, which may be longer than 70 characters
/// (QEMU's ` *(https?|ftp)://[^ ]*$`).
fn is_url_line(line: &str) -> bool {
    let rest = line.trim_start_matches(' ');
    ["https://", "http://", "ftp://"]
        .iter()
        .any(|scheme| rest.strip_prefix(scheme).is_some_and(|r| !r.contains(' ')))
}

/// Where a sentence ends with one space after it: the byte index of the
/// `.`, `!` or `?` in QEMU's pattern `(\be\.g\.|^ *\d\.|([.!?]))
/// [A-Z0-9(]`, whose first two branches (`e.g.` and a numbered list
/// item) are exceptions.  The scan is the regex's: leftmost match first,
/// alternatives in order, resuming after each match.
fn one_space_after_sentence(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    // ` X` after index `i`: the end of the match, if there is one.
    let then_capital = |i: usize| {
        (b.get(i) == Some(&b' ')
            && b.get(i + 1)
                .is_some_and(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'('))
        .then_some(i + 2)
    };
    let mut i = 0;
    while i < b.len() {
        // `\be\.g\.`: `e` at a word boundary.
        let boundary = || {
            line[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
        };
        if b[i..].starts_with(b"e.g.") && boundary() {
            if let Some(end) = then_capital(i + 4) {
                i = end;
                continue;
            }
        }
        // `^ *\d\.` (ASCII digits; QEMU's documentation has no others).
        if i == 0 {
            let spaces = b.iter().take_while(|&&c| c == b' ').count();
            if b.get(spaces).is_some_and(u8::is_ascii_digit) && b.get(spaces + 1) == Some(&b'.') {
                if let Some(end) = then_capital(spaces + 2) {
                    i = end;
                    continue;
                }
            }
        }
        if matches!(b[i], b'.' | b'!' | b'?') && then_capital(i + 1).is_some() {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn indent_of(line: &str) -> usize {
    line.chars().take_while(|&c| is_py_space(c)).count()
}

/// Read the documentation block that starts at `items[pos]`; the index of
/// the item after it.  In lenient mode a block is read as the current
/// rules read it whenever its structure allows (the line format rules
/// aside), so releases from 9.0 on, which share that structure, read
/// exactly as their own front ends read them; any other block is read the
/// way older releases read theirs.
pub(crate) fn read_block(
    items: &[Item<'_>],
    pos: usize,
    text: &str,
    mode: Rules,
) -> Result<(Doc, usize)> {
    if mode == Rules::Lenient {
        let mut reader = DocReader::new(items, pos, text, Rules::Strict);
        reader.format_rules = false;
        if let Ok(doc) = reader.read() {
            if doc.clone().end(Rules::Strict).is_ok() {
                return Ok((doc, reader.next_pos()));
            }
        }
    }
    let mut reader = DocReader::new(items, pos, text, mode);
    let doc = reader.read()?;
    Ok((doc, reader.next_pos()))
}

/// Reads one documentation block from the top-level items.
pub(crate) struct DocReader<'a, 'i> {
    items: &'a [Item<'i>],
    /// Index of the current item (QEMU's current token).
    pos: usize,
    text: &'a str,
    mode: Rules,
    /// Whether QEMU 10.2's line format rules apply.
    format_rules: bool,
    /// Inside a literal block, whose lines the format rules skip
    /// (QEMU's `_literal_mode`), and the indentation of its first line.
    literal: bool,
    literal_indent: usize,
}

impl<'a, 'i> DocReader<'a, 'i> {
    pub(crate) fn new(items: &'a [Item<'i>], pos: usize, text: &'a str, mode: Rules) -> Self {
        DocReader {
            items,
            pos,
            text,
            mode,
            format_rules: mode == Rules::Strict,
            literal: false,
            literal_indent: 0,
        }
    }

    /// Index of the item after the block.
    pub(crate) fn next_pos(&self) -> usize {
        self.pos + 1
    }

    fn strict(&self) -> bool {
        self.mode == Rules::Strict
    }

    /// The current token's span.
    fn span(&self) -> Span {
        match &self.items[self.pos] {
            Item::Comment(s) | Item::End(s) => *s,
            Item::Value(p) | Item::Halt(p) => {
                let s = p.as_span();
                let file = self.file();
                Span::new(file, s.start(), s.end())
            }
        }
    }

    fn file(&self) -> crate::source::FileId {
        // Every file ends with an `End` item, which knows its file.
        match self.items.last() {
            Some(Item::End(s)) => s.file,
            _ => unreachable!("items end with End"),
        }
    }

    fn error(&self, msg: impl Into<String>) -> Box<Diagnostic> {
        Diagnostic::at(self.span().at_start(), msg)
    }

    /// QEMU's `accept(False)`: move to the next token, comments included.
    fn accept(&mut self) {
        self.pos += 1;
    }

    /// The current line's text: `None` at the closing `##`.
    fn line(&mut self) -> Result<Option<&'a str>> {
        let span = match &self.items[self.pos] {
            Item::Comment(s) => *s,
            Item::Halt(p) => {
                if let Some(e) = syntax::halt_lexical_error(self.file(), self.text, p) {
                    return Err(e);
                }
                return Err(self.error("documentation block is not closed by a '##' line"));
            }
            Item::Value(_) | Item::End(_) => {
                return Err(self.error("documentation block is not closed by a '##' line"));
            }
        };
        let val: &'a str = &self.text[span.start as usize..span.end as usize];
        if val.starts_with("##") {
            if val != "##" && self.strict() {
                return Err(self
                    .error("the closing '##' of a documentation block must be alone on its line"));
            }
            self.literal = false;
            return Ok(None);
        }
        if val == "#" {
            return Ok(Some(""));
        }
        let rest = &val[1..];
        let body = match rest.strip_prefix(' ') {
            Some(b) => b,
            None if self.strict() => {
                return Err(self.error("a documentation line needs a space after '#'"))
            }
            None => rest,
        };
        let line = body.trim_end_matches(is_py_space);
        if self.format_rules {
            self.check_format(span, line)?;
        }
        Ok(Some(line))
    }

    /// QEMU 10.2's line format rules, outside literal blocks: at most 70
    /// characters with the `# ` (a line that is only a URL may be
    /// longer), two spaces between sentences.
    fn check_format(&mut self, span: Span, line: &str) -> Result<()> {
        if is_literal_start(line) {
            self.literal = true;
            self.literal_indent = 0;
        } else if self.literal && !line.is_empty() {
            let indent = indent_of(line);
            if self.literal_indent == 0 {
                self.literal_indent = indent;
            } else if indent < self.literal_indent {
                // An rST directive ends where the indentation decreases.
                self.literal = false;
            }
        }
        if self.literal {
            return Ok(());
        }
        if line.chars().count() + 2 > 70 && !is_url_line(line) {
            return Err(self.error("this documentation line is longer than 70 characters"));
        }
        if let Some(at) = one_space_after_sentence(line) {
            // QEMU points at the character after the punctuation, counting
            // from the start of the source line as if the `#` were in its
            // first column.
            let line_start = self.text[..span.start as usize]
                .rfind('\n')
                .map_or(0, |i| i + 1);
            let chars = 2 + line[..at].chars().count() + 1;
            let offset = self.text[line_start..]
                .char_indices()
                .nth(chars)
                .map_or(self.text.len(), |(i, _)| line_start + i);
            return Err(Diagnostic::at(
                Span::new(span.file, offset, offset),
                "one space between sentences; QEMU's documentation uses two",
            ));
        }
        Ok(())
    }

    fn next_line(&mut self) -> Result<Option<&'a str>> {
        self.accept();
        self.line()
    }

    /// Read a block; the current item is its opening `##` line.
    /// On return the current item is the closing `##` line.
    pub(crate) fn read(&mut self) -> Result<Doc> {
        let open = self.span();
        let first = &self.text[open.start as usize..open.end as usize];
        if first != "##" && self.strict() {
            return Err(
                self.error("the opening '##' of a documentation block must be alone on its line")
            );
        }
        let mut line = self.next_line()?;
        match line {
            Some(l) if l.starts_with('@') => {
                if !l.ends_with(':') {
                    return Err(self.error(
                        "a definition's documentation starts with '@NAME:'; the ':' is missing",
                    ));
                }
                let symbol = &l[1..l.len() - 1];
                if symbol.is_empty() {
                    return Err(self.error("'@:' needs the name of the definition"));
                }
                let mut doc = Doc::new(open, Some(symbol.to_string()));
                line = self.next_line()?;
                self.definition_sections(&mut doc, line)?;
                Ok(doc)
            }
            _ => {
                let mut doc = Doc::new(open, None);
                doc.ensure_untagged_section(self.span());
                while let Some(l) = line {
                    if let Some((name, _)) = at_name_colon(l) {
                        if self.strict() {
                            return Err(self.error(format!(
                                "'@{name}:' describes a member, but this block documents no definition"
                            )));
                        }
                    }
                    doc.append_line(l);
                    line = self.next_line()?;
                }
                Ok(doc)
            }
        }
    }

    fn definition_sections(&mut self, doc: &mut Doc, mut line: Option<&'a str>) -> Result<()> {
        let strict = self.strict();
        let mut no_more_args = false;
        while line.is_some() {
            while line == Some("") {
                line = self.next_line()?;
            }
            let Some(l) = line else { break };
            if l == "Features:" {
                if !doc.features.is_empty() && strict {
                    return Err(self.error("a second 'Features:' line in one block"));
                }
                line = self.next_line()?;
                while line == Some("") {
                    line = self.next_line()?;
                }
                let before = doc.features.len();
                while let Some((cur, (name, end))) = line.and_then(|c| Some((c, at_name_colon(c)?)))
                {
                    doc.new_description(self.span(), name, SectionKind::Feature, strict)?;
                    if end < cur.len() {
                        doc.append_line(&cur[end..]);
                    }
                    line = self.indented(doc)?;
                }
                if doc.features.len() == before && strict {
                    return Err(
                        self.error("'Features:' must be followed by '@feature:' descriptions")
                    );
                }
                no_more_args = true;
            } else if let Some((name, _)) = at_name_colon(l) {
                if no_more_args && strict {
                    return Err(self.error(format!(
                        "'@{name}:' comes after a section; member descriptions go first"
                    )));
                }
                while let Some((cur, (name, end))) = line.and_then(|c| Some((c, at_name_colon(c)?)))
                {
                    doc.new_description(self.span(), name, SectionKind::Member, strict)?;
                    if end < cur.len() {
                        doc.append_line(&cur[end..]);
                    }
                    line = self.indented(doc)?;
                }
                no_more_args = true;
            } else if let Some((kind, end)) = tagged_heading(l) {
                if strict && matches!(kind, SectionKind::Note | SectionKind::Example) {
                    let tag = &l[..end].trim_end_matches(' ').trim_end_matches(':');
                    let instead = if kind == SectionKind::Note {
                        "an rST admonition such as '.. note::'"
                    } else {
                        "the '.. qmp-example::' directive"
                    };
                    return Err(self.error(format!(
                        "'{tag}:' sections are no longer accepted; use {instead}"
                    )));
                }
                doc.new_tagged_section(self.span(), kind, strict)?;
                if end < l.len() {
                    doc.append_line(&l[end..]);
                }
                line = if matches!(kind, SectionKind::Note | SectionKind::Example) {
                    // Older releases: the section runs to the next heading.
                    self.read_until_heading(doc)?
                } else {
                    self.indented(doc)?
                };
                no_more_args = true;
            } else {
                doc.ensure_untagged_section(self.span());
                doc.append_line(l);
                line = self.paragraph(doc)?;
            }
        }
        Ok(())
    }

    /// The indented continuation of a description or section.
    fn indented(&mut self, doc: &mut Doc) -> Result<Option<&'a str>> {
        if !self.strict() {
            return self.continuation_lenient(doc);
        }
        let mut line = self.next_line()?;
        while line == Some("") {
            doc.append_line("");
            line = self.next_line()?;
        }
        let Some(l) = line else { return Ok(None) };
        let indent = indent_of(l);
        if indent == 0 {
            return Ok(Some(l));
        }
        doc.append_line(l);
        let mut prev_line_blank = false;
        loop {
            let Some(l) = self.next_line()? else {
                return Ok(None);
            };
            if at_name_colon(l).is_some() {
                return Ok(Some(l));
            }
            if !l.is_empty() && indent_of(l) < indent {
                if prev_line_blank || !self.strict() {
                    return Ok(Some(l));
                }
                return Err(self.error(format!(
                    "this line is indented less than the description it continues ({indent} spaces)"
                )));
            }
            doc.append_line(l);
            // QEMU sets this after every continuation line, blank or not.
            prev_line_blank = true;
        }
    }

    /// A description or section as older releases read it: lines need no
    /// indentation; it ends at the next `@name:` or heading, or at an
    /// unindented line after a blank one.
    fn continuation_lenient(&mut self, doc: &mut Doc) -> Result<Option<&'a str>> {
        let mut prev_blank = false;
        loop {
            let Some(l) = self.next_line()? else {
                return Ok(None);
            };
            let heading =
                at_name_colon(l).is_some() || tagged_heading(l).is_some() || l == "Features:";
            if heading || (prev_blank && !l.is_empty() && indent_of(l) == 0) {
                return Ok(Some(l));
            }
            doc.append_line(l);
            prev_blank = l.is_empty();
        }
    }

    /// Lines up to the next section heading, blank ones included (how
    /// older releases read `Note:` and `Example:` sections).
    fn read_until_heading(&mut self, doc: &mut Doc) -> Result<Option<&'a str>> {
        loop {
            let line = self.next_line()?;
            match line {
                None => return Ok(None),
                Some(l)
                    if tagged_heading(l).is_some()
                        || at_name_colon(l).is_some()
                        || l == "Features:" =>
                {
                    return Ok(line)
                }
                Some(l) => doc.append_line(l),
            }
        }
    }

    fn paragraph(&mut self, doc: &mut Doc) -> Result<Option<&'a str>> {
        loop {
            let line = self.next_line()?;
            match line {
                None => return Ok(None),
                Some("") => return Ok(line),
                Some(l) => doc.append_line(l),
            }
        }
    }
}
