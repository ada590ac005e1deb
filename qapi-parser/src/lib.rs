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
pub use doc::{Doc, DocMode, Section, SectionKind};
pub use expr::IfCond;
pub use reader::Pragma;
pub use schema::{
    AlternateType, ArrayType, Branches, Builtin, Command, Entity, EntityId, EntityKind, EnumType,
    EnumValue, Event, Failure, Feature, JsonType, Module, ModuleId, ModuleItem, ObjectMember,
    ObjectType, Options, Schema, Variant,
};
