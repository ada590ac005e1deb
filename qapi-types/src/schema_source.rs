//! The QAPI schema files the bindings were generated from (feature
//! `schema-source`), for programs that show the schema's documentation
//! or read it with `qapi-parser` (`qmp-shell`'s `help`), with nothing
//! outside the program.
//!
//! The files are QEMU's, under QEMU's licence (GPL version 2, the
//! `schema/COPYING` file of this crate's package); this module only
//! embeds them.

/// QEMU's QMP schema: `(path, text)` for every file of `qapi/`
/// (`qapi/qapi-schema.json` is the main file), sorted by path.
pub const QMP: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/schema_qmp.rs"));

/// QEMU's guest-agent schema: `qga/qapi-schema.json`.
pub const QGA: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/schema_qga.rs"));

/// The text of the file at `path` (`qapi/block.json`,
/// `qga/qapi-schema.json`); `.` and `..` components are resolved, so
/// the paths an `include` directive makes work as they are.
pub fn file(path: &str) -> Option<&'static str> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let name = parts[parts.len().saturating_sub(2)..].join("/");
    QMP.iter()
        .chain(QGA)
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn files_by_path() {
        assert!(super::QMP.len() > 10);
        let main = super::file("qapi/qapi-schema.json").expect("the main file");
        assert!(main.contains("'include'"));
        assert_eq!(
            super::file("/x/qapi/../qapi/block.json"),
            super::file("qapi/block.json")
        );
        assert!(super::file("qga/qapi-schema.json").is_some());
        assert!(super::file("qapi/nonexistent.json").is_none());
    }
}
