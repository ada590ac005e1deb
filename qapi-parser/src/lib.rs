//! Reads QAPI schema files into a checked IR.
pub mod diag;
pub mod source;
mod syntax;
