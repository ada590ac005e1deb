//! Reads QEMU's QAPI schema files into a checked, resolved IR, exactly as
//! QEMU's own front end (`scripts/qapi/`) reads them.
//!
//! ```no_run
//! use qapi_parser::{Options, Schema};
//!
//! match Schema::from_file("qapi/qapi-schema.json", Options::default()) {
//!     Ok(schema) => println!("{} entities", schema.entities.len()),
//!     Err(failure) => eprint!("{}", failure.render()),
//! }
//! ```
//!
//! The layers, each with one job:
//!
//! 1. the syntax layer — a pest grammar (`grammar.pest`) that accepts
//!    every input and marks where reading must stop, walked into spanned
//!    values;
//! 2. the reader — top-level expressions, `include` and `pragma`
//!    directives, `##` documentation blocks ([`doc`]);
//! 3. the expression checks — each definition on its own;
//! 4. [`schema`] — entities with ids, references resolved, QEMU's
//!    semantic checks, in QEMU's order.
//!
//! Every problem is a [`Diagnostic`] value with a
//! place; nothing here panics on any input.

pub mod diag;
pub mod doc;
pub mod dump;
mod expr;
mod reader;
pub mod schema;
pub mod source;
mod syntax;

pub use diag::Diagnostic;
pub use doc::{Doc, Section, SectionKind};
pub use expr::IfCond;
pub use reader::Pragma;
pub use schema::{
    AlternateType, ArrayType, Branches, Builtin, Command, Entity, EntityId, EntityKind, EnumType,
    EnumValue, Event, Failure, Feature, JsonType, Module, ModuleId, ModuleItem, ObjectMember,
    ObjectType, Options, Schema, Variant,
};

/// The rules a schema is read with ([`Options::rules`]): those of QEMU
/// 10.2.0, or leniently, those of every QEMU release.  They cover both
/// the documentation comments and the schema language itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rules {
    /// QEMU 10.2.0's rules, as its front end enforces them: its
    /// documentation format and its language, nothing older.
    #[default]
    Strict,
    /// Read the schemas of other QEMU releases: their documentation as
    /// they wrote it (its text kept), and the language of releases before
    /// 6.2 as QEMU 5.2's front end read it: the pragma names from before
    /// 6.0 (`returns-whitelist`, `name-case-whitelist`), `if` conditions
    /// written as C preprocessor text (`'defined(CONFIG_A) &&
    /// !defined(CONFIG_B)'`, or a list meaning all of them), unions
    /// without base and discriminator ("simple unions": an implicit enum
    /// `NAMEKind`, a `type` member, each branch's value in the `data`
    /// member of an implicit `q_obj_TYPE-wrapper`), and `_` in names.  A
    /// schema that the strict rules accept is read identically.
    Lenient,
}
