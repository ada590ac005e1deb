//! Every identifier the generator emits comes from here.
//!
//! Rules (prost's, adapted to QAPI names):
//! * types and variants are UpperCamelCase, fields snake_case (heck);
//! * `__vendor_` and `x-` prefixes keep their meaning in the name
//!   (`__com.redhat_foo` → `ComRedhatFoo`, `x-foo` → `XFoo`);
//! * a Rust keyword becomes a raw identifier where Rust allows one
//!   (`r#type`), and gets a `_` suffix where it does not (`self_`);
//! * a name starting with a digit gets a prefix (`_1` for fields, `V1`
//!   for types and variants);
//! * a top-level item never takes a name from Rust's prelude (`use
//!   qmp::*` would shadow it): `String` becomes `QapiString`;
//! * a command or event whose name is a type's gets a `Command` or
//!   `Event` suffix, unless its arguments are exactly that type, which
//!   then is the command (`gen/plan.rs`, `Plan::assign_names`);
//! * two names that map to the same identifier in one scope are told
//!   apart by a numeric suffix, in schema order, and reported.

use std::collections::HashMap;

use heck::{ToSnakeCase, ToUpperCamelCase};
use proc_macro2::{Ident, Span};

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// Keywords that cannot be raw identifiers.
const NOT_RAW: &[&str] = &["crate", "self", "Self", "super", "_"];

fn words(name: &str) -> String {
    // `.` separates parts of vendor prefixes; heck treats `-` and `_`
    // as word breaks already.
    name.trim_start_matches('_').replace('.', "_")
}

/// A QAPI type, command or event name as a Rust type name.
pub fn type_name(name: &str) -> String {
    let mut s = words(name).to_upper_camel_case();
    if s.is_empty() {
        s.push('T');
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, 'V');
    }
    if KEYWORDS.contains(&s.as_str()) {
        s.push('_');
    }
    s
}

/// Names from Rust's prelude: a glob import (`use qmp::*`) shadows
/// the prelude, so no generated item may take one of these.
const PRELUDE: &[&str] = &[
    "AsMut",
    "AsRef",
    "Box",
    "Clone",
    "Copy",
    "Default",
    "DoubleEndedIterator",
    "Drop",
    "Eq",
    "Err",
    "ExactSizeIterator",
    "Extend",
    "Fn",
    "FnMut",
    "FnOnce",
    "From",
    "FromIterator",
    "Into",
    "IntoIterator",
    "Iterator",
    "None",
    "Ok",
    "Option",
    "Ord",
    "PartialEq",
    "PartialOrd",
    "Result",
    "Send",
    "Sized",
    "Some",
    "String",
    "Sync",
    "ToOwned",
    "ToString",
    "TryFrom",
    "TryInto",
    "Unpin",
    "Vec",
];

/// A QAPI type, command or event name as the name of a top-level item
/// (one that users glob-import): [`type_name`], with a `Qapi` prefix
/// where that would be a name from Rust's prelude (QAPI's `String`
/// becomes `QapiString`).
pub fn item_name(name: &str) -> String {
    let s = type_name(name);
    if PRELUDE.contains(&s.as_str()) {
        format!("Qapi{s}")
    } else {
        s
    }
}

/// A QAPI member name as a Rust field name.
pub fn field_name(name: &str) -> String {
    let mut s = words(name).to_snake_case();
    if s.is_empty() {
        s.push_str("field");
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// A QAPI enum value or branch name as a Rust variant name.
pub fn variant_name(name: &str) -> String {
    type_name(name)
}

/// The identifier for a name produced above: raw where needed.
pub fn ident(name: &str) -> Ident {
    if KEYWORDS.contains(&name) {
        if NOT_RAW.contains(&name) {
            return Ident::new(&format!("{name}_"), Span::call_site());
        }
        return Ident::new_raw(name, Span::call_site());
    }
    Ident::new(name, Span::call_site())
}

/// A renaming made to keep two names apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rename {
    /// Where: the scope, e.g. `types` or `struct Foo`.
    pub scope: String,
    /// The QAPI name.
    pub qapi: String,
    /// The identifier it got.
    pub rust: String,
}

/// Names in one scope: the same QAPI name always gets the same
/// identifier; different names never do.
#[derive(Default)]
pub struct Scope {
    name: String,
    taken: HashMap<String, String>,
    given: HashMap<String, String>,
}

impl Scope {
    pub fn new(name: impl Into<String>) -> Scope {
        Scope {
            name: name.into(),
            ..Scope::default()
        }
    }

    /// Reserve an identifier (e.g. one the generator itself uses).
    pub fn reserve(&mut self, rust: &str) {
        self.taken.insert(rust.to_string(), String::new());
    }

    /// The identifier for `qapi`, given its natural form `natural`.
    pub fn name(&mut self, qapi: &str, natural: String, renames: &mut Vec<Rename>) -> String {
        if let Some(r) = self.given.get(qapi) {
            return r.clone();
        }
        let mut candidate = natural.clone();
        let mut n = 2;
        while self.taken.contains_key(&candidate) {
            candidate = format!("{natural}{n}");
            n += 1;
        }
        if candidate != natural {
            renames.push(Rename {
                scope: self.name.clone(),
                qapi: qapi.to_string(),
                rust: candidate.clone(),
            });
        }
        self.taken.insert(candidate.clone(), qapi.to_string());
        self.given.insert(qapi.to_string(), candidate.clone());
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_idiomatic() {
        assert_eq!(type_name("BlockdevOptionsFile"), "BlockdevOptionsFile");
        assert_eq!(type_name("blockdev-add"), "BlockdevAdd");
        assert_eq!(type_name("BLOCK_JOB_COMPLETED"), "BlockJobCompleted");
        assert_eq!(type_name("x-debug-query"), "XDebugQuery");
        assert_eq!(type_name("__com.redhat_drive-add"), "ComRedhatDriveAdd");
        assert_eq!(type_name("q_obj_foo-arg"), "QObjFooArg");
        assert_eq!(item_name("String"), "QapiString");
        assert_eq!(item_name("Option"), "QapiOption");
        assert_eq!(variant_name("none"), "None");
        assert_eq!(variant_name("2.0"), "V20");
        assert_eq!(variant_name("virtio-blk"), "VirtioBlk");
        assert_eq!(field_name("read-only"), "read_only");
        assert_eq!(field_name("x-perf"), "x_perf");
        assert_eq!(field_name("1g"), "_1g");
        assert_eq!(ident("type").to_string(), "r#type");
        assert_eq!(ident("self").to_string(), "self_");
    }

    #[test]
    fn collisions_are_numbered_and_reported() {
        let mut renames = Vec::new();
        let mut s = Scope::new("struct Foo");
        assert_eq!(s.name("a-b", field_name("a-b"), &mut renames), "a_b");
        assert_eq!(s.name("a_b", field_name("a_b"), &mut renames), "a_b2");
        assert_eq!(s.name("a-b", field_name("a-b"), &mut renames), "a_b");
        assert_eq!(renames.len(), 1);
        assert_eq!(renames[0].qapi, "a_b");
    }
}
