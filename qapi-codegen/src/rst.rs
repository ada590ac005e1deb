//! QAPI documentation (reStructuredText-flavoured) as rustdoc Markdown:
//! the text converter; `gen/docs.rs` lays the text out on each item.
//!
//! The output must be safe for rustdoc under `-D warnings` and must
//! never be compiled as a doctest: every literal block (`::`,
//! `.. qmp-example::`, `.. code-block::`) becomes a fenced `text` block,
//! other indentation is capped below Markdown's code-block indent, and
//! `[`, `]`, `<`, `>` outside code are escaped so they are not read as
//! links or HTML.

/// Convert one block of QAPI documentation text.
pub fn markdown(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    // Where the text of the current list item starts, and the smallest
    // indentation of the current paragraph.
    let mut list_offset = 0;
    let mut para_min: Option<usize> = None;
    while i < lines.len() {
        let line = lines[i];
        let indent = indent_of(line);
        let trimmed = line.trim();
        let literal_title = if let Some(rest) = trimmed.strip_prefix(".. qmp-example::") {
            Some(if rest.trim().is_empty() {
                "Example:".to_string()
            } else {
                format!("Example: {}", inline(rest.trim()))
            })
        } else if trimmed.starts_with(".. code-block::") || trimmed == ".. code::" {
            Some(String::new())
        } else if trimmed.ends_with("::") && !trimmed.starts_with("..") {
            // "Text::" introduces a literal block; "::" alone too.
            let head = trimmed.trim_end_matches("::").trim_end();
            Some(if head.is_empty() {
                String::new()
            } else {
                format!("{}:", inline(head))
            })
        } else {
            None
        };
        if let Some(title) = literal_title {
            if !title.is_empty() {
                out.push(title);
            }
            i += 1;
            // Directive options (`:title: …`, `:annotated:`) right after
            // the directive.
            let mut block: Vec<&str> = Vec::new();
            let mut annotated = false;
            while i < lines.len() {
                let l = lines[i];
                if !l.trim().is_empty() && indent_of(l) <= indent {
                    break;
                }
                if block.is_empty() && l.trim().starts_with(':') {
                    let opt = l.trim().trim_start_matches(':');
                    if let Some(t) = opt.strip_prefix("title:") {
                        out.push(format!("*{}*", inline(t.trim())));
                    }
                    annotated |= opt.trim() == "annotated:";
                    i += 1;
                    continue;
                }
                block.push(l);
                i += 1;
            }
            while block.last().is_some_and(|l| l.trim().is_empty()) {
                block.pop();
            }
            while block.first().is_some_and(|l| l.trim().is_empty()) {
                block.remove(0);
            }
            // An annotated example is rST text with literal blocks of its
            // own (`Text::` then the transcript): converted like any text.
            if annotated {
                let inner = dedent(&block);
                let md = markdown(&inner);
                if !md.is_empty() {
                    out.push(String::new());
                    out.extend(md.lines().map(str::to_string));
                    out.push(String::new());
                }
                continue;
            }
            if !block.is_empty() {
                let min = block
                    .iter()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| indent_of(l))
                    .min()
                    .unwrap_or(0);
                if out.last().is_some_and(|l| !l.is_empty()) {
                    out.push(String::new());
                }
                out.push("```text".to_string());
                for l in block {
                    out.push(l.get(min..).unwrap_or("").trim_end().replace("```", "'''"));
                }
                out.push("```".to_string());
                out.push(String::new());
            }
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix(".. note::") {
            out.push(format!("**Note:** {}", inline(rest.trim())));
        } else if let Some(rest) = trimmed.strip_prefix(".. admonition::") {
            out.push(format!("**{}**", inline(rest.trim())));
        } else if let Some(rest) = trimmed.strip_prefix("..") {
            // Other directives and comments: keep their words.
            let rest = rest.trim();
            if !rest.is_empty() {
                out.push(format!("*{}*", inline(rest.trim_end_matches(':'))));
            }
        } else if trimmed.starts_with('=') && trimmed.chars().all(|c| c == '=') {
            // An rST section underline.
        } else if let Some(heading) = trimmed.strip_prefix('=') {
            let level = 1 + heading.chars().take_while(|&c| c == '=').count();
            let text = heading.trim_start_matches('=').trim();
            out.push(format!("{} {}", "#".repeat(level.min(6)), inline(text)));
        } else if trimmed.is_empty() {
            out.push(String::new());
            list_offset = 0;
            para_min = None;
        } else {
            // Indentation relative to the paragraph, never a code block:
            // a list item's continuation lines line up with its text.
            let min = *para_min.get_or_insert_with(|| {
                lines[i..]
                    .iter()
                    .take_while(|l| !l.trim().is_empty())
                    .map(|l| indent_of(l))
                    .min()
                    .unwrap_or(0)
            });
            let rel = indent.saturating_sub(min);
            let keep = if let Some(width) = list_marker(trimmed) {
                let keep = rel.min(list_offset);
                list_offset = keep + width;
                keep
            } else {
                // Inside a list item, a line continues it.
                list_offset
            };
            out.push(format!("{}{}", " ".repeat(keep), inline(trimmed)));
        }
        i += 1;
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
}

/// The width of a list marker (`- `, `* `, `1. `, `1) `) starting `line`.
fn list_marker(line: &str) -> Option<usize> {
    if line.starts_with("- ") || line.starts_with("* ") {
        return Some(2);
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && (line[digits..].starts_with(". ") || line[digits..].starts_with(") ")) {
        return Some(digits + 2);
    }
    None
}

/// Text shown as it is, in a fenced `text` block.
pub fn literal(text: &str) -> String {
    let body: Vec<String> = text
        .lines()
        .map(|l| l.trim_end().replace("```", "\'\'\'"))
        .collect();
    let min = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| indent_of(l))
        .min()
        .unwrap_or(0);
    let lines: Vec<&str> = body.iter().map(|l| l.get(min..).unwrap_or("")).collect();
    format!("```text\n{}\n```", lines.join("\n").trim_matches('\n'))
}

/// A section's text split into its `.. qmp-example::` directives (each
/// with the lines indented under it) and the rest, in order: examples go
/// under a heading of their own.
pub fn split_examples(text: &str) -> (String, String) {
    let (mut rest, mut examples) = (Vec::new(), Vec::new());
    let mut in_example = false;
    for line in text.lines() {
        let top = !line.trim().is_empty() && indent_of(line) == 0;
        if top {
            in_example = line.starts_with(".. qmp-example::");
            // Each example starts a paragraph of its own.
            if in_example && examples.last().is_some_and(|l: &&str| !l.trim().is_empty()) {
                examples.push("");
            }
        }
        if in_example {
            examples.push(line);
        } else {
            rest.push(line);
        }
    }
    (rest.join("\n"), examples.join("\n"))
}

/// Lines without their common indentation, joined.
fn dedent(lines: &[&str]) -> String {
    let min = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| indent_of(l))
        .min()
        .unwrap_or(0);
    let body: Vec<&str> = lines.iter().map(|l| l.get(min..).unwrap_or("")).collect();
    body.join("\n")
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Inline markup: ``code`` and `code` stay code, `@name` becomes code,
/// rST roles lose their role, URLs become autolinks, and characters that
/// Markdown or HTML would take for markup are escaped.
pub fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // A role: `:name:` directly before a backtick.
        if c == ':' {
            if let Some(end) = role_end(&chars, i) {
                i = end;
                continue;
            }
        }
        if c == '`' {
            let ticks = if chars.get(i + 1) == Some(&'`') { 2 } else { 1 };
            let start = i + ticks;
            let mut j = start;
            while j + ticks <= chars.len() && !(chars[j..j + ticks].iter().all(|&t| t == '`')) {
                j += 1;
            }
            if j + ticks <= chars.len() && j > start {
                let code: String = chars[start..j].iter().collect();
                out.push('`');
                out.push_str(&code.replace('`', "'"));
                out.push('`');
                i = j + ticks;
                continue;
            }
            out.push_str("\\`");
            i += 1;
            continue;
        }
        if c == '@'
            && chars
                .get(i + 1)
                .is_some_and(|n| n.is_ascii_alphabetic() || *n == '_')
        {
            let mut j = i + 1;
            while j < chars.len()
                && (chars[j].is_ascii_alphanumeric() || matches!(chars[j], '-' | '_' | '.'))
            {
                j += 1;
            }
            // A trailing '.' ends the sentence, not the name.
            while j > i + 1 && chars[j - 1] == '.' {
                j -= 1;
            }
            let name: String = chars[i + 1..j].iter().collect();
            out.push('`');
            out.push_str(&name);
            out.push('`');
            i = j;
            continue;
        }
        if (c == 'h') && starts_with(&chars[i..], "http://") || starts_with(&chars[i..], "https://")
        {
            let mut j = i;
            while j < chars.len()
                && !chars[j].is_whitespace()
                && !matches!(chars[j], '<' | '>' | '`' | ')' | ']')
            {
                j += 1;
            }
            while j > i && matches!(chars[j - 1], '.' | ',' | ';' | ':') {
                j -= 1;
            }
            let url: String = chars[i..j].iter().collect();
            out.push('<');
            out.push_str(&url);
            out.push('>');
            i = j;
            continue;
        }
        match c {
            '[' | ']' | '<' | '>' | '\\' | '|' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

fn starts_with(chars: &[char], s: &str) -> bool {
    let mut it = chars.iter();
    s.chars().all(|c| it.next() == Some(&c))
}

/// The end of an rST role (`:name:` or `:a:b:`) that directly precedes a
/// backtick, or `None`.
fn role_end(chars: &[char], start: usize) -> Option<usize> {
    let mut j = start + 1;
    let mut saw_name = false;
    while j < chars.len() {
        let c = chars[j];
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            saw_name = true;
        } else if c == ':' {
            if chars.get(j + 1) == Some(&'`') && saw_name {
                return Some(j + 1);
            }
        } else {
            return None;
        }
        j += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_blocks_are_fenced_text() {
        let md = markdown(
            "Example::\n\n    -> { \"execute\": \"stop\" }\n    <- { \"return\": {} }\n\nAfter.",
        );
        assert_eq!(
            md,
            "Example:\n\n```text\n-> { \"execute\": \"stop\" }\n<- { \"return\": {} }\n```\n\nAfter."
        );
        let md = markdown(".. qmp-example::\n   :title: Stop it\n\n   -> x\n   <- y");
        assert_eq!(md, "Example:\n*Stop it*\n\n```text\n-> x\n<- y\n```");
    }

    #[test]
    fn annotated_examples_are_text_with_their_own_literal_blocks() {
        let md = markdown(
            ".. qmp-example::\n   :annotated:\n\n   For pc machine type started with ``-smp 1,maxcpus=2``::\n\n    -> { \"execute\": \"x\" }\n    <- { \"return\": {} }\n\n   With a 2.5GiB guest.\n\nAfter.",
        );
        assert_eq!(
            md,
            "Example:\n\nFor pc machine type started with `-smp 1,maxcpus=2`:\n\n```text\n-> { \"execute\": \"x\" }\n<- { \"return\": {} }\n```\n\nWith a 2.5GiB guest.\n\nAfter."
        );
        // A lone `::` introduces the block without a line of its own.
        let md = markdown(".. qmp-example::\n   :annotated:\n\n   ::\n\n     -> x\n");
        assert_eq!(md, "Example:\n\n```text\n-> x\n```");
        assert!(!md.contains("::"));
    }

    #[test]
    fn examples_are_split_from_the_rest() {
        let (rest, ex) = split_examples(
            ".. note:: a note\n   going on.\n\n.. qmp-example::\n\n   -> x\n\nMore text.\n.. qmp-example::\n   :annotated:\n\n   Text::\n\n     -> y",
        );
        assert_eq!(rest, ".. note:: a note\n   going on.\n\nMore text.");
        assert_eq!(
            ex,
            ".. qmp-example::\n\n   -> x\n\n.. qmp-example::\n   :annotated:\n\n   Text::\n\n     -> y"
        );
        assert_eq!(
            split_examples("Plain."),
            ("Plain.".to_string(), String::new())
        );
    }

    #[test]
    fn inline_markup_is_converted_and_escaped() {
        assert_eq!(
            inline("Use @node-name, not ``id``."),
            "Use `node-name`, not `id`."
        );
        assert_eq!(
            inline("see :qapi:type:`Foo` [a] <b>"),
            "see `Foo` \\[a\\] \\<b\\>"
        );
        assert_eq!(inline("at https://qemu.org/x."), "at <https://qemu.org/x>.");
    }

    #[test]
    fn list_continuations_line_up() {
        let md = markdown(
            "Modes:\n\n    - hide: Just hide,\n      connections stay.\n\n    - soft: more",
        );
        assert_eq!(
            md,
            "Modes:\n\n- hide: Just hide,\n  connections stay.\n\n- soft: more"
        );
    }

    #[test]
    fn indentation_never_makes_a_code_block() {
        let md = markdown("Para\n\n        deeply indented text");
        assert!(
            md.lines().all(|l| l.len() - l.trim_start().len() < 4),
            "{md}"
        );
    }
}
