//! The syntax layer: the pest grammar, and a walk over its pairs that
//! builds a spanned tree of values and reports the first problem in
//! reading order.

use pest::iterators::Pair;
use pest::Parser as _;
use pest_derive::Parser;

use crate::diag::{Diagnostic, Result};
use crate::source::{FileId, Span};

#[derive(Parser)]
#[grammar = "grammar.pest"]
struct Grammar;

/// How deeply `{` and `[` may nest.  QEMU's own reader gives up (with a
/// Python recursion error) at a few hundred levels; real schemas use
/// five or six.  The limit keeps the recursive descent within a small
/// stack, whatever the input.
pub const MAX_NESTING: usize = 256;

/// A value in a schema file.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Members in source order.
    Object(Vec<Member>),
    Array(Vec<Node>),
    Str(String),
    Bool(bool),
}

/// A value and where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

/// `'key': value` in an object.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&[Member]> {
        match &self.value {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_object()?
            .iter()
            .find(|m| m.key == key)
            .map(|m| &m.value)
    }
}

/// One top-level token of a file, in order.
pub(crate) enum Item<'i> {
    /// A comment line, `#…` or `##…` (the span excludes the newline).
    Comment(Span),
    /// A value; walked on demand with [`walk_value`].
    Value(Pair<'i, Rule>),
    /// Reading stops here: a malformed token, or a token that cannot
    /// start a value.
    Halt(Pair<'i, Rule>),
    /// The end of the file.  Its span is the final newline, which is
    /// where QEMU places problems found at the end.
    End(Span),
}

/// Split a file into top-level items.
pub(crate) fn items(file: FileId, text: &str) -> Result<Vec<Item<'_>>> {
    if let Some(at) = too_deep(text) {
        return Err(Diagnostic::at(
            Span::new(file, at, at + 1),
            format!("nesting deeper than {MAX_NESTING} levels"),
        ));
    }
    let mut pairs = Grammar::parse(Rule::file, text).map_err(|e| {
        // The grammar accepts every input; reaching this is a bug here.
        let at = match e.location {
            pest::error::InputLocation::Pos(p) => p,
            pest::error::InputLocation::Span((p, _)) => p,
        };
        Diagnostic::at(
            Span::new(file, at, at),
            format!("internal error: grammar failed: {e}"),
        )
    })?;
    let top = pairs.next().expect("file rule produces one pair");
    let mut out = Vec::new();
    for pair in top.into_inner() {
        let span = span_of(file, &pair);
        match pair.as_rule() {
            Rule::comment_run => {
                // Lines start at '#' and end before '\n'; what lies between
                // them is blank (the rule matched it as such).
                let (start, run) = (span.start as usize, pair.as_str());
                let mut i = 0;
                while i < run.len() {
                    let end = run[i..].find('\n').map_or(run.len(), |k| i + k);
                    out.push(Item::Comment(Span::new(file, start + i, start + end)));
                    i = run[end..].find('#').map_or(run.len(), |k| end + k);
                }
            }
            r if is_value(r) => out.push(Item::Value(pair)),
            Rule::halt => out.push(Item::Halt(pair)),
            Rule::EOI => {}
            r => unreachable!("top-level rule {r:?}"),
        }
    }
    let end = text.len() - 1; // the text always ends with '\n'
    out.push(Item::End(Span::new(file, end, end + 1)));
    Ok(out)
}

/// Where nesting first exceeds [`MAX_NESTING`], skipping strings and
/// comments the way the lexer does.
fn too_deep(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'\'' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'\'' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'\\') {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

fn span_of(file: FileId, pair: &Pair<'_, Rule>) -> Span {
    let s = pair.as_span();
    Span::new(file, s.start(), s.end())
}

/// The problem a halt item stands for.
pub(crate) fn halt_error(file: FileId, text: &str, halt: Pair<'_, Rule>) -> Box<Diagnostic> {
    let first = halt.into_inner().next().expect("halt has a cause");
    stop_error(file, text, first)
}

/// If the halt is a malformed token, its problem (QEMU reports it as soon
/// as it reads that token, before anything about the previous value).
pub(crate) fn halt_lexical_error(
    file: FileId,
    text: &str,
    halt: &Pair<'_, Rule>,
) -> Option<Box<Diagnostic>> {
    let first = halt.clone().into_inner().next()?;
    match first.as_rule() {
        Rule::bad_string | Rule::stray => Some(stop_error(file, text, first)),
        _ => None,
    }
}

/// Is this halt a malformed token (as opposed to a misplaced good one)?
pub(crate) fn is_lexical_halt(halt: &Pair<'_, Rule>) -> bool {
    halt.clone()
        .into_inner()
        .next()
        .is_some_and(|p| matches!(p.as_rule(), Rule::bad_string | Rule::stray))
}

/// The diagnostic for a malformed token or an `err_*` marker.
fn stop_error(file: FileId, text: &str, pair: Pair<'_, Rule>) -> Box<Diagnostic> {
    let mut at = pair.as_span().start();
    if at >= text.len() {
        at = text.len() - 1;
    }
    let span = Span::new(file, at, at.max(pair.as_span().end()));
    let msg = match pair.as_rule() {
        Rule::stray => format!(
            "unexpected '{}': not a token of the schema language",
            pair.as_str()
        ),
        Rule::bad_string => {
            let fault = pair
                .into_inner()
                .find(|p| p.as_rule() != Rule::string_body)
                .expect("bad string has a fault");
            match fault.as_rule() {
                Rule::unterminated => "string is not closed before the end of the line".to_string(),
                Rule::bad_escape => format!(
                    "unknown escape '{}' in string (only '\\\\' is allowed)",
                    fault.as_str()
                ),
                _ => {
                    let c = fault.as_str().chars().next().unwrap_or('\0');
                    format!(
                        "character U+{:04X} is not allowed in a string (only printable ASCII is)",
                        c as u32
                    )
                }
            }
        }
        Rule::err_key_or_rbrace => "expected a string key or '}' here".to_string(),
        Rule::err_key => "expected a string key after ','".to_string(),
        Rule::err_comma_or_rbrace => "expected ',' or '}' here".to_string(),
        Rule::err_colon => "expected ':' after the key".to_string(),
        Rule::err_value => "expected a value here: '{', '[', a string, true or false".to_string(),
        Rule::err_value_or_rbracket => {
            "expected a value or ']' here: '{', '[', a string, true or false".to_string()
        }
        Rule::err_comma_or_rbracket => "expected ',' or ']' here".to_string(),
        r => format!("internal error: unexpected rule {r:?}"),
    };
    Diagnostic::at(span, msg)
}

fn is_value(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::object | Rule::array | Rule::string | Rule::true_lit | Rule::false_lit
    )
}

/// Build the tree of a value (an `object`, `array`, `string`,
/// `true_lit` or `false_lit` pair), reporting the first problem in the
/// order QEMU's reader meets it.
pub(crate) fn walk_value(file: FileId, text: &str, pair: Pair<'_, Rule>) -> Result<Node> {
    let span = span_of(file, &pair);
    let value = match pair.as_rule() {
        Rule::object => {
            // The pairs are key, value, key, value, … and where reading
            // stopped, if it did.
            let mut members: Vec<Member> = Vec::new();
            let mut inner = pair.into_inner();
            while let Some(key_pair) = inner.next() {
                if key_pair.as_rule() != Rule::string {
                    return Err(stop_error(file, text, key_pair));
                }
                let key_span = span_of(file, &key_pair);
                let key = unescape(&key_pair);
                let v = inner
                    .next()
                    .expect("a key is followed by a value or a stop");
                match v.as_rule() {
                    // QEMU reads the token after the colon (reporting a
                    // malformed one) before it looks for a duplicate key,
                    // and looks for it before reading the rest of the value.
                    Rule::bad_string | Rule::stray | Rule::err_colon => {
                        return Err(stop_error(file, text, v))
                    }
                    _ => {}
                }
                if let Some(prev) = members.iter().find(|m| m.key == key) {
                    let at = v.as_span().start().min(text.len() - 1);
                    return Err(Diagnostic::at(
                        Span::new(file, at, at),
                        format!("duplicate key '{key}' in this object"),
                    )
                    .with_note(
                        prev.key_span,
                        None,
                        "the key was first used here",
                    ));
                }
                if !is_value(v.as_rule()) {
                    return Err(stop_error(file, text, v));
                }
                let value = walk_value(file, text, v)?;
                members.push(Member {
                    key,
                    key_span,
                    value,
                });
            }
            Value::Object(members)
        }
        Rule::array => {
            let mut elems = Vec::new();
            for p in pair.into_inner() {
                if !is_value(p.as_rule()) {
                    return Err(stop_error(file, text, p));
                }
                elems.push(walk_value(file, text, p)?);
            }
            Value::Array(elems)
        }
        Rule::string => Value::Str(unescape(&pair)),
        Rule::true_lit => Value::Bool(true),
        Rule::false_lit => Value::Bool(false),
        r => unreachable!("value rule {r:?}"),
    };
    Ok(Node { span, value })
}

fn unescape(string: &Pair<'_, Rule>) -> String {
    let s = string.as_str();
    let body = &s[1..s.len() - 1];
    if body.contains('\\') {
        body.replace("\\\\", "\\")
    } else {
        body.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_error(src: &str) -> String {
        let text = crate::source::normalize_text(src.to_string());
        let f = FileId(0);
        let items = items(f, &text).unwrap();
        for item in items {
            match item {
                Item::Value(p) => {
                    if let Err(e) = walk_value(f, &text, p) {
                        let lc = crate::source::line_col(
                            &text,
                            e.primary.as_ref().unwrap().span.start as usize,
                        );
                        return format!("{}:{} {}", lc.line, lc.col, e.message());
                    }
                }
                Item::Halt(p) => {
                    let e = halt_error(f, &text, p);
                    let lc = crate::source::line_col(
                        &text,
                        e.primary.as_ref().unwrap().span.start as usize,
                    );
                    return format!("{}:{} {}", lc.line, lc.col, e.message());
                }
                _ => {}
            }
        }
        "ok".into()
    }

    #[test]
    fn good_values_parse() {
        assert_eq!(
            first_error("{ 'a': [ 'b', true, false, {} ] } # c\n## doc\n"),
            "ok"
        );
    }

    #[test]
    fn errors_are_where_qemu_puts_them() {
        for (src, want) in [
            ("{ 'a' 'b' }", "1:7 expected ':'"),
            ("{ 'a': 'b' 'c' }", "1:12 expected ','"),
        ] {
            let got = first_error(src);
            assert!(got.starts_with(want), "{src}: {got}");
        }
        assert!(first_error("{ 'a': 'b' 'c' }").starts_with("1:12 expected ','"));
        assert!(first_error("{ 'a': 'b', }").starts_with("1:13 expected a string key"));
        assert!(first_error("[ 'a', ]").starts_with("1:8 expected a value"));
        assert!(first_error("{ 'a': 'x\\y' }").starts_with("1:8 unknown escape"));
        assert!(first_error("{ 'a': 'x").starts_with("1:8 string is not closed"));
        assert!(first_error("{ 'a': 12 }").starts_with("1:8 unexpected '12'"));
        assert!(first_error("{ 'a': 'x', 'a': }").starts_with("1:18 duplicate key"));
        assert!(first_error("{ 'a': 'x', 'a': @ }").starts_with("1:18 unexpected '@'"));
        assert!(first_error("{ 'a': truex }").starts_with("1:12 unexpected 'x'"));
        assert!(first_error("{ 'a': 'b'").starts_with("1:11 expected ','"));
        assert!(first_error("}").starts_with("1:1 expected a value"));
        assert!(first_error("{ ## x\n}").starts_with("1:3 expected a string key"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert!(first_error_items(&deep).contains("nesting deeper"));
    }

    fn first_error_items(src: &str) -> String {
        let text = crate::source::normalize_text(src.to_string());
        match items(FileId(0), &text) {
            Ok(_) => "ok".into(),
            Err(e) => e.message().to_string(),
        }
    }
}
