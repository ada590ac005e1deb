//! Every argument-free query of a live QEMU against the shipped bindings
//! (generated from QEMU 10.2.0's schemas, folding in the older releases
//! in `schema/older`): the code path `live_qemu72_strict` (QEMU 7.2's
//! emulator and agent) and `live_qemu10` (QEMU 10.0.2's emulator) share.
//!
//! Each query the running QEMU has (by its own `query-commands`, or the
//! agent's `guest-info`) is run, and each reply
//! - decodes strictly with bindings generated from the running
//!   release's own schema (`qapi-qemu-bindings-check`);
//! - decodes with the shipped bindings in the default (lenient) mode,
//!   as a program built against them and run on that release would;
//! - decodes strictly with the shipped bindings once what only the
//!   running release has is taken out (`qapi_tests::shared::prune_older`,
//!   reading the release's schema vendored in `schema/older`): strict
//!   mode stays clean for everything the two releases share, and every
//!   part taken out is listed in the summary line.
//!
//! Strictness is chosen for each decoding with `qapi_types::with_strict`
//! (a scope on the decoding thread), so tests need not take turns over
//! the process-wide switch.

use std::collections::{BTreeMap, BTreeSet};

use qapi_parser::{EntityKind, Options as ParseOptions, Rules, Schema};
use qapi_tests::live::argument_free;
use qapi_tests::qemu_src::workspace_root;
use qapi_types::with_strict;
use serde_json::{json, Value};

/// `check_return` of some bindings: does a reply decode (`None`: no
/// such command).
pub type Check = fn(&str, Value) -> Option<Result<(), serde_json::Error>>;

/// A protocol of a release a live QEMU runs.
pub struct Release {
    /// As printed: `7.2`, `10.0.2`.
    pub name: &'static str,
    /// Its own schema.
    pub schema: Schema,
    /// The shipped bindings' schema for the same protocol (10.2.0's).
    pub newer: Schema,
    /// `check_return` of bindings generated from `schema`.
    pub own: Check,
    /// `check_return` of the shipped bindings.
    pub shipped: Check,
    /// Which argument-free commands are queries.
    pub is_query: fn(&str) -> bool,
    /// A reply that decodes in both bindings, and with a member added
    /// only leniently: a check that strictness reaches `check_return`.
    pub canary: (&'static str, Value),
}

impl Release {
    /// QMP of release `name`, whose schema is vendored in
    /// `schema/older/{dir}`, with its own bindings' `check_return`.
    pub fn qmp(name: &'static str, dir: &str, own: Check) -> Release {
        let (schema, newer) = schemas(dir, "qapi/qapi-schema.json");
        Release {
            name,
            schema,
            newer,
            own,
            shipped: |n, v| qapi_types::qmp::commands::check_return(n, v),
            // `query-*`, `x-query-*`, `x-debug-query-*`.
            is_query: |n| n.contains("query-") || n == "qom-list-types",
            canary: ("query-name", json!({"name": "vm"})),
        }
    }

    /// The guest agent protocol of release `name` (as [`Release::qmp`]).
    #[allow(dead_code)] // by the tests that run an agent only
    pub fn qga(name: &'static str, dir: &str, own: Check) -> Release {
        let (schema, newer) = schemas(dir, "qga/qapi-schema.json");
        Release {
            name,
            schema,
            newer,
            own,
            shipped: |n, v| qapi_types::qga::commands::check_return(n, v),
            // `guest-get-*`, `guest-network-get-*`, `guest-info`, and
            // the freeze state (the agent's reads).
            is_query: |n| n.contains("get-") || n == "guest-info" || n == "guest-fsfreeze-status",
            canary: ("guest-get-host-name", json!({"host-name": "vm"})),
        }
    }
}

/// What one machine's run found.
pub struct Summary {
    /// Queries asked.
    pub asked: usize,
    /// Each reply that decoded strictly with the shipped bindings, by
    /// the query (`name` or `name {arguments}`).
    pub decoded: BTreeMap<String, Value>,
    /// What only the running release has, taken out before strict
    /// decoding, or what it cannot send (see `prune_older`), and the
    /// commands the shipped bindings lack.
    pub differences: BTreeSet<String>,
    /// Replies whose strict decoding with the shipped bindings failed
    /// only on a difference listed (a member the running release cannot
    /// send, an enum value only it has), with the error.
    pub explained: Vec<String>,
    /// The queries QEMU refused, with its answer.
    pub refused: Vec<String>,
}

/// The schema `path` of the release vendored in `schema/older/{dir}`
/// (its documentation read leniently, as older releases need), and of
/// the shipped bindings (`schema/qemu`).
fn schemas(dir: &str, path: &str) -> (Schema, Schema) {
    let read = |p: String, rules| {
        Schema::from_file(workspace_root().join(p), ParseOptions { rules })
            .unwrap_or_else(|f| panic!("{f}"))
    };
    (
        read(format!("schema/older/{dir}/{path}"), Rules::Lenient),
        read(format!("schema/qemu/{path}"), Rules::Strict),
    )
}

impl Summary {
    /// Fail unless each `(query, text)`'s reply decoded strictly and
    /// has `text` in it.
    pub fn assert_has(&self, expected: &[(&str, &str)]) {
        for (query, text) in expected {
            let reply = self
                .decoded
                .get(*query)
                .unwrap_or_else(|| panic!("{query} did not decode strictly"));
            assert!(reply.to_string().contains(text), "{query}: {reply}");
        }
    }
}

/// The commands a QEMU has, from its `query-commands` reply.
pub fn qmp_commands(reply: Value) -> BTreeSet<String> {
    reply
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// The commands an agent has enabled, from its `guest-info` reply.
#[allow(dead_code)] // by the tests that run an agent only
pub fn qga_commands(reply: Value) -> BTreeSet<String> {
    reply["supported_commands"]
        .as_array()
        .expect("a list")
        .iter()
        .filter(|c| c["enabled"] == json!(true))
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// Ask a QEMU running `release` (`what` says which, for the summary
/// line), through `execute`, each of its queries that it has
/// (`available`: its build drops some), and `with_args` (a name and its
/// arguments: queries that need one, for content the argument-free ones
/// lack); decode every reply as the module says, print one line, and
/// fail on any reply that does not decode as it must.
pub fn run(
    execute: &dyn Fn(&str, Option<&Value>) -> qapi_types::Result<Value>,
    available: &BTreeSet<String>,
    what: &str,
    release: &Release,
    with_args: &[(&str, Value)],
) -> Summary {
    let newer = &release.newer;
    let mut asked: Vec<(String, Option<Value>)> = argument_free(&release.schema, release.is_query)
        .into_iter()
        .filter(|q| available.contains(q))
        .map(|q| (q, None))
        .collect();
    for (name, args) in with_args {
        assert!(available.contains(*name), "{name} is not in QEMU");
        asked.push((name.to_string(), Some(args.clone())));
    }

    let mut s = Summary {
        asked: asked.len(),
        decoded: BTreeMap::new(),
        differences: BTreeSet::new(),
        explained: Vec::new(),
        refused: Vec::new(),
    };
    let conditional = conditional_required(&release.schema);
    // Strictness reaches `check_return`: a member nobody knows fails
    // strictly, and only strictly.
    let (canary, mut unknown) = release.canary.clone();
    unknown["x-unknown"] = json!(1);
    for check in [release.own, release.shipped] {
        let decode = |on| with_strict(Some(on), || check(canary, unknown.clone()));
        assert!(matches!(decode(false), Some(Ok(()))));
        assert!(matches!(decode(true), Some(Err(_))));
    }
    let mut problems = Vec::new();
    for (name, args) in &asked {
        let key = match args {
            Some(a) => format!("{name} {a}"),
            None => name.clone(),
        };
        let reply = match execute(name, args.as_ref()) {
            Ok(v) => v,
            Err(qapi_types::Error::Qmp(e)) => {
                // Not every query works on every machine (no KVM, no
                // SEV, no migration): QEMU's own answer, kept.
                s.refused.push(format!("{key}: {e}"));
                continue;
            }
            Err(e) => panic!("{key}: {e}"),
        };
        let strict = |check: &dyn Fn(Value) -> Option<Result<(), serde_json::Error>>, v: &Value| {
            with_strict(Some(true), || check(v.clone()))
        };
        match strict(&|v| (release.own)(name, v), &reply) {
            Some(Ok(())) => {}
            // The generator ignores build conditions: a member QEMU
            // sends only when built with one is required in the own
            // bindings all the same.
            Some(Err(e)) if conditional.iter().any(|(m, _)| missing(&e, m)) => {
                s.differences.extend(
                    conditional
                        .iter()
                        .filter(|(m, _)| missing(&e, m))
                        .map(|(_, what)| what.clone()),
                );
            }
            Some(Err(e)) => problems.push(format!(
                "{key} ({}'s own bindings, strict): {e}\n  {}",
                release.name,
                short(&reply)
            )),
            None => problems.push(format!("{key}: not in {}'s own bindings", release.name)),
        }
        let Some(cmd) = newer.lookup(name) else {
            s.differences.insert(format!("command {name}"));
            continue;
        };
        let EntityKind::Command(c) = &newer.entity(cmd).kind else {
            unreachable!()
        };
        let mut pruned = reply.clone();
        let log = match c.ret_type {
            Some(ty) => qapi_tests::shared::prune_older(newer, &release.schema, ty, &mut pruned),
            None => Vec::new(),
        };
        // A failure the walk explains: a required member the running
        // release lacks, or an enum value only it has.
        let explained = |e: &str| {
            log.iter().any(|l| {
                l.strip_suffix(" (required, newer only)")
                    .and_then(|m| m.rsplit_once('.'))
                    .is_some_and(|(_, m)| e.contains(&format!("missing member '{m}'")))
                    || l.split_once(" value ")
                        .is_some_and(|(_, v)| e.contains(&format!("'{v}'")))
            })
        };
        match with_strict(Some(false), || (release.shipped)(name, reply.clone())) {
            Some(Ok(())) => {}
            Some(Err(e)) => problems.push(format!(
                "{key} (shipped bindings, lenient): {e}\n  {}",
                short(&reply)
            )),
            None => problems.push(format!("{key}: not in the shipped bindings")),
        }
        match strict(&|v| (release.shipped)(name, v), &pruned) {
            Some(Ok(())) => {
                s.decoded.insert(key, reply);
            }
            Some(Err(e)) if explained(&e.to_string()) => s.explained.push(format!("{key}: {e}")),
            Some(Err(e)) => problems.push(format!(
                "{key} (shipped bindings, strict, parts only {} has removed: {log:?}): {e}\n  {}",
                release.name,
                short(&pruned)
            )),
            None => {}
        }
        s.differences.extend(log);
    }
    println!(
        "QEMU {} {what}: {} queries; {} decode strictly with the shipped \
         bindings (QEMU {}'s), {} fail only on a difference listed {:?}; differences \
         listed: {:?}; QEMU refused {}: {:?}",
        release.name,
        s.asked,
        s.decoded.len(),
        qapi_types::qmp::RELEASES.last().expect("a release"),
        s.explained.len(),
        s.explained,
        s.differences,
        s.refused.len(),
        s.refused
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    s
}

/// Whether a decoding error is about the member `m` missing.
fn missing(e: &serde_json::Error, m: &str) -> bool {
    e.to_string().contains(&format!("missing member '{m}'"))
}

/// The required members of `schema`'s types that exist only when QEMU
/// is built with some condition: their names, and how the summary
/// lists each.
fn conditional_required(schema: &Schema) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in &schema.entities {
        if let EntityKind::Object(o) = &e.kind {
            for m in o.members.iter().filter(|m| !m.optional) {
                if let Some(c) = &m.cond {
                    out.push((
                        m.name.clone(),
                        format!(
                            "{}.{} (required, only if {})",
                            e.name,
                            m.name,
                            c.to_python_str()
                        ),
                    ));
                }
            }
        }
    }
    out
}

fn short(v: &Value) -> String {
    let mut s = v.to_string();
    if let Some((end, _)) = s.char_indices().nth(600) {
        s.truncate(end);
        s.push('…');
    }
    s
}
