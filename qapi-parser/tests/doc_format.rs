//! QEMU 10.2's documentation line rules in strict mode: at most 70
//! columns with the `# `, two spaces between sentences, except in
//! literal blocks and for a line that is only a URL; `=` lines anywhere.
//! Every expected place below is what QEMU 10.2.0's own front end
//! reports for the same text (checked with its `scripts/qapi`).

use std::path::Path;

use qapi_parser::{Options, Rules, Schema};

fn read(text: &str, mode: Rules) -> Result<Schema, String> {
    let bytes = text.as_bytes().to_vec();
    let load = move |_: &Path| Ok(bytes.clone());
    Schema::from_file_with(Path::new("t.json"), Options { rules: mode }, &load)
        .map_err(|f| f.render())
}

/// A command `foo` documented by `lines` (each without its `# `).
fn documented(lines: &[&str]) -> String {
    let mut text = String::from("##\n# @foo:\n#\n");
    for l in lines {
        if l.is_empty() {
            text.push_str("#\n");
        } else {
            text.push_str(&format!("# {l}\n"));
        }
    }
    text.push_str("##\n{ 'command': 'foo' }\n");
    text
}

/// The strict rules reject `text` at `place`; the lenient ones accept it.
fn rejected_at(text: &str, place: &str) {
    let e = read(text, Rules::Strict).unwrap_err();
    assert!(e.starts_with(&format!("{place}: ")), "want {place}: {e}");
    read(text, Rules::Lenient).unwrap_or_else(|e| panic!("lenient: {e}"));
}

const SEVENTY: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

#[test]
fn lines_may_have_70_columns_and_no_more() {
    read(&documented(&[SEVENTY]), Rules::Strict).unwrap();
    rejected_at(
        &documented(&[SEVENTY, &format!("{SEVENTY}x")]),
        "t.json:5:1",
    );
}

#[test]
fn a_line_that_is_only_a_url_may_be_longer() {
    let url = "https://example.com/a/very/long/path/that/goes/on/and/on/for/ever";
    read(&documented(&[&format!("   {url}")]), Rules::Strict).unwrap();
    rejected_at(&documented(&[&format!("see {url}")]), "t.json:4:1");
}

#[test]
fn sentences_need_two_spaces() {
    read(
        &documented(&["Use a value, e.g. Foo or Bar.  And then", " 1. First item"]),
        Rules::Strict,
    )
    .unwrap();
    // The place is QEMU's: the character after the punctuation.
    rejected_at(
        &documented(&["2. Second item.  Also (fine).  And? No (wrong)."]),
        "t.json:4:38",
    );
    // A tab counts to the next multiple of 8, as everywhere.
    rejected_at(&documented(&["\ttab. Then"]), "t.json:4:7");
    // QEMU counts from the start of the line as if the `#` were in its
    // first column, even when the comment is indented.
    rejected_at(
        "  ##\n  # @foo:\n  #\n  # Indented comment. Bad\n  ##\n{ 'command': 'foo' }\n",
        "t.json:4:20",
    );
}

#[test]
fn literal_blocks_are_exempt_until_the_indentation_decreases() {
    let long = "this literal line is long enough to go past the seventy column limit";
    read(
        &documented(&[
            "::",
            "",
            &format!("  {long}"),
            "  and so. Is this one",
            "",
            ".. qmp-example::",
            "",
            "   -> { \"execute\": \"foo\", \"arguments\": { \"a-long-argument\": 1 } }",
            "",
            "Back to text.  Fine.",
        ]),
        Rules::Strict,
    )
    .unwrap();
    rejected_at(
        &documented(&["::", "", "    literal. Fine", "  less indented. Not fine"]),
        "t.json:7:19",
    );
    // Only `::` alone (or the directive) opens a literal block.
    rejected_at(
        &documented(&["An example follows::", "", &format!("  {long}")]),
        "t.json:6:1",
    );
}

#[test]
fn equals_lines_are_text_anywhere() {
    let text = "##\n# = Title\n#\n# Some text\n#\n# == Subtitle\n##\n\n\
                ##\n# @foo:\n#\n# = Not a heading any more\n#\n# Text.\n##\n\
                { 'command': 'foo' }\n";
    let s = read(text, Rules::Strict).unwrap();
    let dump = qapi_parser::dump::dump(&s);
    assert!(
        dump.ends_with(
            "doc freeform\n    body=\n= Title\n\nSome text\n\n== Subtitle\n\
             doc symbol=foo\n    body=\n= Not a heading any more\n\nText.\n"
        ),
        "{:?}",
        &dump[dump.len().saturating_sub(200)..]
    );
}
