//! Code generation from QAPI schemas, and the `qapi-gen` command.
//!
//! The command is a thin shell over [`cli::run`]; schemas are read by
//! [`qapi_parser`].

pub mod cli;
