//! Rust from QAPI schemas: every type, each command with its arguments
//! and return type, and events, with the schema's documentation as
//! rustdoc.
//!
//! # From `build.rs`
//!
//! ```no_run
//! // in build.rs's main:
//! qapi_codegen::Config::new()
//!     .generate("schema/my-schema.json")
//!     .unwrap_or_else(|e| panic!("{e}"));
//! ```
//!
//! and in the crate, where the bindings should live:
//!
//! ```ignore
//! include!(concat!(env!("OUT_DIR"), "/my-schema.rs"));
//! ```
//!
//! The output goes to `OUT_DIR` (or [`Config::out_dir`]), named after the
//! schema's main file; `cargo:rerun-if-changed` is printed for every file
//! read, includes too; the file is written only when its content
//! changes; the output depends only on the schema and the settings.
//!
//! # The mapping
//!
//! | QAPI | Rust |
//! |---|---|
//! | `str` | `String` |
//! | `number` | `f64` |
//! | `int`, `int64` | `i64` |
//! | `int8` … `uint64` | `i8` … `u64` |
//! | `size` | `u64` |
//! | `bool` | `bool` |
//! | `null` | `Null` (runtime) |
//! | `any` | `serde_json::Value` |
//! | `['T']` | `Vec<T>` |
//! | enum | enum with UpperCamelCase variants, wire names kept, plus `Other(String)` for values a newer QEMU adds |
//! | struct | struct, members in schema order, base members inlined, optional members `Option<T>` left out when `None` |
//! | union | struct of the common members plus a `branch` enum chosen by the discriminator (implicit empty branches are unit variants; `Other { tag, members }` keeps an unknown branch) |
//! | alternate | enum chosen by the JSON type of the value, as QEMU chooses |
//! | command | `commands::Name` carrying the arguments, implementing the runtime's `Command` (wire name, return type, allow-oob, success-response) |
//! | event | `events::Name` for its data, implementing `Event`; `events::Event` over all events with `Other { name, data }`; `events::EventMessage` adds the timestamp |
//!
//! Types that contain themselves are boxed. `deprecated` features become
//! `#[deprecated]`, `unstable` a note; `if` conditions a note, or
//! `#[cfg(qapi = "CONFIG_…")]` with [`Config::cfg_conditions`].
//!
//! # Older releases
//!
//! The catch-alls let bindings decode what a newer QEMU sends.  To decode
//! what older QEMUs send, give their schemas to
//! [`Config::older_schema`]: members this schema added as required to the
//! types of replies and events become `Option`s, a union that was a
//! struct there gets an `Untagged { members }` branch for replies without
//! the discriminator, and a member whose older type sends values this
//! one rejects becomes the runtime's `Compat<T, O>`
//! ([`Config::type_differences`] lists them).  Every definition's
//! documentation then says which of the releases have it ("*QEMU 8.2 and
//! later.*"; with [`Config::release`] naming this schema's), and commands
//! and events get an `AVAILABILITY` constant over the module's
//! `RELEASES`.

pub mod cli;
pub mod diff;
mod gen;
pub mod introspect;
pub mod naming;
mod rst;

use std::fmt;
use std::path::{Path, PathBuf};

use qapi_parser::{Options, Schema};

/// The parser, re-exported for build scripts that read an older
/// release's schema for [`Config::older_schema`].
pub use qapi_parser;
/// The rules a schema is read with (see [`Config::rules`]).
pub use qapi_parser::Rules;

pub use naming::Rename;

/// Settings for generating code, in the style of prost-build's `Config`.
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) runtime_path: String,
    pub(crate) type_attributes: Vec<(String, String)>,
    pub(crate) cfg_conditions: bool,
    pub(crate) docs: bool,
    /// `None`: the strict rules, or the lenient ones when the schema
    /// does not follow them (another QEMU release).
    pub(crate) rules: Option<Rules>,
    pub(crate) introspection: bool,
    pub(crate) older: Vec<OlderRelease>,
    /// The QEMU release the schema is from, for availability.
    pub(crate) release: Option<String>,
    out_dir: Option<PathBuf>,
}

/// What [`Config::generate_string`] made.
#[derive(Debug)]
pub struct Generated {
    /// The formatted Rust source.
    pub text: String,
    /// The schema it was made from (its files: `schema.sources`).
    pub schema: Schema,
    /// Names changed to keep two apart.
    pub renames: Vec<Rename>,
    /// Things worth telling the user, such as the rules the schema had
    /// to be read with.
    pub notes: Vec<String>,
}

/// What an older release's schema has, for [`Config::older_schema`].
#[derive(Clone, Debug)]
pub(crate) struct OlderRelease {
    pub release: String,
    pub schema: std::sync::Arc<Schema>,
    /// The files it was read from, for `cargo:rerun-if-changed`.
    pub files: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            runtime_path: "::qapi_runtime".into(),
            type_attributes: Vec::new(),
            cfg_conditions: false,
            docs: true,
            rules: None,
            introspection: true,
            older: Vec::new(),
            release: None,
            out_dir: None,
        }
    }
}

/// Why code could not be generated.
#[derive(Debug)]
pub enum Error {
    /// The schema is not valid.
    Schema(qapi_parser::Failure),
    /// Reading or writing a file.
    Io(PathBuf, std::io::Error),
    /// A setting is not valid (e.g. an attribute that is not Rust, a
    /// release that is not a version), or the output does not parse.
    Config(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Schema(e) => write!(f, "{e}"),
            Error::Io(p, e) => write!(f, "{}: {e}", p.display()),
            Error::Config(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl Config {
    pub fn new() -> Config {
        Config::default()
    }

    /// The path generated code uses for the runtime crate (default
    /// `::qapi_runtime`), for a crate that re-exports it (`::qapi_types`).
    /// A path that is not a Rust module path is an [`Error::Config`]
    /// when generating.
    pub fn runtime_path(&mut self, path: impl Into<String>) -> &mut Self {
        self.runtime_path = path.into();
        self
    }

    /// Add an attribute (e.g. `#[derive(Hash)]`) to the type generated
    /// for the QAPI type `name`, or to every type when `name` is `"."`.
    /// Text that is not Rust outer attributes is an [`Error::Config`]
    /// when generating.
    pub fn type_attribute(
        &mut self,
        name: impl Into<String>,
        attribute: impl Into<String>,
    ) -> &mut Self {
        self.type_attributes.push((name.into(), attribute.into()));
        self
    }

    /// Turn `if` conditions into `#[cfg(qapi = "CONFIG_…")]` (set the cfg
    /// values with `cargo:rustc-cfg=qapi="CONFIG_…"`). Default: off, and
    /// conditions are a note in the documentation.
    pub fn cfg_conditions(&mut self, on: bool) -> &mut Self {
        self.cfg_conditions = on;
        self
    }

    /// Emit the schema's documentation as rustdoc (default: on).
    pub fn docs(&mut self, on: bool) -> &mut Self {
        self.docs = on;
        self
    }

    /// Which rules a schema is read with: its documentation and its
    /// language.  By default the strict ones ([`Rules::Strict`], QEMU
    /// 10.2.0's), and, when a schema does not follow them (other QEMU
    /// releases format documentation differently; releases before 6.2
    /// wrote simple unions, C conditions and older pragma names), the
    /// lenient rules ([`Rules::Lenient`]), with a note saying so
    /// ([`Generated::notes`], a cargo warning from [`generate`](Self::generate)).
    /// Setting either always reads by it: with [`Rules::Strict`]
    /// anything that breaks the strict rules is an error.  A schema
    /// both accept gives the same code either way.
    pub fn rules(&mut self, rules: Rules) -> &mut Self {
        self.rules = Some(rules);
        self
    }

    /// Read a schema with the configured rules (see
    /// [`rules`](Self::rules)); a note when the lenient rules were
    /// needed.
    pub fn read_schema(&self, path: impl AsRef<Path>) -> Result<(Schema, Option<String>), Error> {
        let path = path.as_ref();
        let read = |rules| Schema::from_file(path, Options { rules });
        match self.rules {
            Some(mode) => read(mode).map(|s| (s, None)).map_err(Error::Schema),
            None => match read(Rules::Strict) {
                Ok(s) => Ok((s, None)),
                Err(strict) => {
                    // A schema that the lenient rules reject too has a
                    // problem beyond its documentation: report that one.
                    let s = read(Rules::Lenient).map_err(Error::Schema)?;
                    let why = strict.render();
                    let note = format!(
                        "{}: read with the lenient rules (another QEMU release's schema?), \
                         because: {}",
                        path.display(),
                        why.lines().last().unwrap_or_default()
                    );
                    Ok((s, Some(note)))
                }
            },
        }
    }

    /// Embed the schema's introspection data as `SCHEMA_INFO`: what
    /// QEMU's `query-qmp-schema` returns, with its `if` conditions kept
    /// (see [`introspect`]).  Default: on.
    pub fn introspection(&mut self, on: bool) -> &mut Self {
        self.introspection = on;
        self
    }

    /// Also read the replies and events of an older QEMU `release`, whose
    /// schema is `schema` (read it with [`Rules::Lenient`] if it
    /// predates the strict rules).
    ///
    /// The older release's types are matched to this schema's along the
    /// ways values travel (a command's return, an event's data, then
    /// member by member, branch by branch), and by name for the others,
    /// so a renamed type still matches.  A release that adds a member to
    /// a type usually makes it required, and bindings that require it
    /// cannot decode the older release's replies.  So a member that this
    /// schema requires, in a type that a command returns or an event
    /// carries (directly or inside another), becomes an `Option` when
    /// the older release's matching type lacks it, with a note saying
    /// so; it is `None` in that release's replies.  A member whose older
    /// type sends values this schema's type does not take (an `int` that
    /// became a `str`) becomes `Compat<T, O>`: `Current(T)` or
    /// `Older(O)`, `O` the older built-in type's Rust type, or JSON.
    /// Types the older release does not have at all, and command
    /// arguments, are left alone.  Call once per release, in any
    /// order; releases are ordered by their `major.minor` numbers (a
    /// `release` that is not `MAJOR.MINOR[.MICRO]` is an
    /// [`Error::Config`] when generating).
    pub fn older_schema(&mut self, release: impl Into<String>, schema: &Schema) -> &mut Self {
        let files = schema
            .sources
            .files()
            .map(|(_, f)| f.name.clone())
            .collect();
        self.older.push(OlderRelease {
            release: release.into(),
            schema: std::sync::Arc::new(schema.clone()),
            files,
        });
        self
    }

    /// The QEMU release the schema is from (`10.2.0`), the newest of the
    /// timeline that availability notes and constants describe (see
    /// [`older_schema`](Self::older_schema)).  Unset, it is "this
    /// schema's release"; not `MAJOR.MINOR[.MICRO]`, an
    /// [`Error::Config`] when generating.
    pub fn release(&mut self, release: impl Into<String>) -> &mut Self {
        self.release = Some(release.into());
        self
    }

    /// The members of reply and event types whose type in an older
    /// release (see [`older_schema`](Self::older_schema)) sends values
    /// this schema's type does not take, one line each: what the
    /// generated field accepts instead is in its documentation.
    pub fn type_differences(&self, schema: &Schema) -> Result<Vec<String>, Error> {
        gen::type_differences(schema, self)
    }

    /// Where [`generate`](Self::generate) writes (default: `OUT_DIR`).
    pub fn out_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Read `schema` and return the formatted Rust source, with the
    /// schema (for its list of files), the renames made and notes.
    pub fn generate_string(&self, schema: impl AsRef<Path>) -> Result<Generated, Error> {
        let path = schema.as_ref();
        let (schema, note) = self.read_schema(path)?;
        let (text, renames) = self.render(&schema, &file_label(path))?;
        Ok(Generated {
            text,
            schema,
            renames,
            notes: note.into_iter().collect(),
        })
    }

    /// The generated items as a token stream, unformatted.
    pub fn tokens(&self, schema: &Schema) -> Result<proc_macro2::TokenStream, Error> {
        gen::generate(schema, self).map(|out| out.tokens)
    }

    /// The Rust source for an already read schema; `label` names the
    /// schema in the generated file's header.
    pub fn render(&self, schema: &Schema, label: &str) -> Result<(String, Vec<Rename>), Error> {
        let out = gen::generate(schema, self)?;
        let file: syn::File = syn::parse2(out.tokens).map_err(|e| {
            Error::Config(format!(
                "generated code does not parse (check type_attribute settings): {e}"
            ))
        })?;
        let body = prettyplease::unparse(&file);
        let header = format!(
            "// @generated by qapi-codegen {} from {label}.\n// Do not edit: regenerate instead.\n\n",
            env!("CARGO_PKG_VERSION")
        );
        Ok((header + &body, out.renames))
    }

    /// Generate code for `schema` into the output folder, as
    /// `<schema file stem>.rs`; returns the file's path. Prints
    /// `cargo:rerun-if-changed` for every schema file read.
    pub fn generate(&self, schema: impl AsRef<Path>) -> Result<PathBuf, Error> {
        let path = schema.as_ref();
        let Generated {
            text,
            schema: parsed,
            renames,
            notes,
        } = self.generate_string(path)?;
        for n in &notes {
            println!("cargo:warning=qapi-codegen: {n}");
        }
        for (_, f) in parsed.sources.files() {
            println!("cargo:rerun-if-changed={}", f.name);
        }
        for f in self.older.iter().flat_map(|o| &o.files) {
            println!("cargo:rerun-if-changed={f}");
        }
        for r in &renames {
            println!(
                "cargo:warning=qapi-codegen: in {}, '{}' is named {} to keep it apart from another name",
                r.scope, r.qapi, r.rust
            );
        }
        let dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    Error::Config(
                        "OUT_DIR is not set: call from build.rs or set Config::out_dir".into(),
                    )
                })?,
        };
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("qapi");
        let out = dir.join(format!("{stem}.rs"));
        write_if_changed(&out, &text)?;
        Ok(out)
    }
}

/// The schema's file name, for the header (no absolute paths, so the
/// output is the same on every machine).
fn file_label(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Write `text` to `path` unless it already holds exactly that.
pub fn write_if_changed(path: &Path, text: &str) -> Result<(), Error> {
    if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io(dir.to_path_buf(), e))?;
    }
    std::fs::write(path, text).map_err(|e| Error::Io(path.to_path_buf(), e))
}
