//! Source files, spans and positions.
//!
//! Every node the parser produces carries a [`Span`]: a file and a byte
//! range in that file's text.  Lines and columns are computed only when a
//! diagnostic is shown, the way QEMU counts them: lines from 1, columns
//! from 1 with tabs expanded to the next multiple of 8.

use std::path::{Component, Path, PathBuf};

/// Index of a file in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub(crate) u32);

/// A byte range in one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span {
            file,
            start: start as u32,
            end: end as u32,
        }
    }

    /// An empty span at this span's start.
    pub fn at_start(self) -> Span {
        Span {
            end: self.start,
            ..self
        }
    }
}

/// Where a file was included from: the `include` directive's span.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The name as the schema spelled it (joined to the including file's
    /// folder), which is what diagnostics show.
    pub name: String,
    /// The lexically normalised absolute path, used to recognise a file
    /// included twice.
    pub abs_path: PathBuf,
    /// The text as read: line ends normalised to `\n` (as Python's
    /// universal newlines do), and a final `\n` added if missing.
    pub text: String,
    /// The directive that included this file, if any.
    pub included_from: Option<Span>,
}

/// All files read for one schema.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

/// A line and column, both counted from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineCol {
    pub line: usize,
    pub col: usize,
}

impl SourceMap {
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    pub fn add(&mut self, file: SourceFile) -> FileId {
        self.files.push(file);
        FileId(self.files.len() as u32 - 1)
    }

    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }

    pub fn text(&self, span: Span) -> &str {
        &self.file(span.file).text[span.start as usize..span.end as usize]
    }

    /// Line and column of a span's start.
    pub fn line_col(&self, span: Span) -> LineCol {
        line_col(&self.file(span.file).text, span.start as usize)
    }
}

/// Line and column of byte `offset` in `text`, QEMU's way.
pub fn line_col(text: &str, offset: usize) -> LineCol {
    let mut offset = offset.min(text.len());
    // A place inside a character counts as that character's start.
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let mut col = 1;
    for ch in text[line_start..offset].chars() {
        if ch == '\t' {
            col = (col + 7) % 8 + 1;
        } else {
            col += 1;
        }
    }
    LineCol { line, col }
}

/// Python's `str.isspace()`, which QEMU's reader uses to skip blanks and
/// to strip documentation lines.
pub fn is_py_space(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | '\u{1C}'..='\u{1F}' | ' '
        | '\u{85}' | '\u{A0}' | '\u{1680}' | '\u{2000}'..='\u{200A}'
        | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}')
}

/// Normalise line ends as Python's text mode does: `\r\n` and a lone
/// `\r` become `\n`.
pub fn normalize_line_ends(text: String) -> String {
    if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text
    }
}

/// Normalise line ends as Python's text mode does (`\r\n` and lone `\r`
/// become `\n`) and make sure the text ends with `\n`.
pub fn normalize_text(text: String) -> String {
    let mut text = normalize_line_ends(text);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// A path made absolute against `cwd` and normalised lexically (`.` and
/// `..` removed without looking at the file system), like Python's
/// `os.path.abspath`.
pub fn abs_path(path: &Path, cwd: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    };
    let mut out = PathBuf::new();
    for comp in joined.components() {
        match comp {
            Component::ParentDir => {
                // `/..` stays `/`, as in POSIX.
                if out.parent().is_some() {
                    out.pop();
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `path` relative to `base` (both absolute and normalised), like
/// Python's `os.path.relpath`.
pub fn rel_path(path: &Path, base: &Path) -> String {
    let p: Vec<_> = path.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = Vec::new();
    for _ in common..b.len() {
        parts.push("..".to_string());
    }
    for c in &p[common..] {
        parts.push(c.as_os_str().to_string_lossy().into_owned());
    }
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

/// The folder part of a path as Python's `os.path.dirname` gives it
/// (empty for a bare file name).
pub fn dir_name(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => {
            let head = path[..i].trim_end_matches('/');
            if head.is_empty() {
                "/"
            } else {
                head
            }
        }
        None => "",
    }
}

/// Python's `os.path.join` for two parts.
pub fn join_path(dir: &str, name: &str) -> String {
    if name.starts_with('/') || dir.is_empty() {
        name.to_string()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_tabs_like_qemu() {
        // QEMU computes `col = (col + 7) % 8 + 1` for a tab; we report the
        // same columns, so that tools reading both agree.
        let text = "ab\n\tx\nab\ty";
        assert_eq!(line_col(text, 0), LineCol { line: 1, col: 1 });
        assert_eq!(line_col(text, 4), LineCol { line: 2, col: 1 });
        assert_eq!(line_col(text, 9), LineCol { line: 3, col: 3 });
    }

    #[test]
    fn paths_normalise_like_python() {
        let cwd = Path::new("/a/b");
        assert_eq!(
            abs_path(Path::new("../c/./d.json"), cwd),
            Path::new("/a/c/d.json")
        );
        assert_eq!(
            rel_path(Path::new("/a/c/d.json"), Path::new("/a/b")),
            "../c/d.json"
        );
        assert_eq!(
            rel_path(Path::new("/a/b/x.json"), Path::new("/a/b")),
            "x.json"
        );
        assert_eq!(dir_name("x.json"), "");
        assert_eq!(dir_name("q/x.json"), "q");
        assert_eq!(dir_name("/x.json"), "/");
        assert_eq!(join_path("", "y.json"), "y.json");
        assert_eq!(join_path("q", "../y.json"), "q/../y.json");
    }

    #[test]
    fn text_is_normalised() {
        assert_eq!(normalize_text("a\r\nb\rc".into()), "a\nb\nc\n");
        assert_eq!(normalize_text(String::new()), "\n");
    }
}
