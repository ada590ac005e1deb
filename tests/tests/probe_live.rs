//! Probing against live QEMU: `qemu-storage-daemon` 10.0.2, QEMU
//! 10.0.2's `qemu-system-x86_64` (q35) and QEMU 7.2's.  What is asked
//! is chosen from the schemas of the two releases (10.0.2's and 7.2's,
//! vendored in `schema/older`, read with `qapi-parser`): a command one
//! release has and the other lacks, an enum value, a union branch, and
//! a deprecated member, each where the two releases differ; once among
//! what the storage daemon has, once among all of QMP for the system
//! emulators.  Every expected answer is read from the schema of the
//! release that runs (the storage daemon's own schema, from 10.0.2's
//! sources, for the daemon), never written here; things whose presence
//! depends on build conditions are not chosen, as the schema alone
//! cannot say.

use std::sync::{Arc, Mutex};

use qapi_parser::{
    Entity, EntityKind, JsonType, ObjectMember, Options as ParseOptions, Rules, Schema,
};
use qapi_tests::live::storage_daemon;
use qapi_tests::qemu_bin::ensure_qemu72;
use qapi_tests::qemu_src::workspace_root;
use qapi_types::probe::{UnknownKind, Warning};
use qapi_types::{Error, Options};
use serde_json::{json, Value};

fn read(path: &str, rules: Rules) -> Schema {
    Schema::from_file(workspace_root().join(path), ParseOptions { rules })
        .unwrap_or_else(|f| panic!("{f}"))
}

/// A step below a command's arguments.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Member(String),
    /// A union branch, and the union's tag member.
    Branch {
        tag: String,
        case: String,
    },
}

/// Something to ask, with the probe path that asks it.
#[derive(Clone, Debug)]
enum Item {
    Command(String),
    Value {
        cmd: String,
        steps: Vec<Step>,
        value: String,
    },
    Branch {
        cmd: String,
        steps: Vec<Step>,
    },
    Deprecated {
        cmd: String,
        steps: Vec<Step>,
    },
}

fn steps_path(cmd: &str, steps: &[Step]) -> String {
    let mut p = format!("{cmd}/arg-type");
    for s in steps {
        match s {
            Step::Member(m) => p += &format!("/{m}"),
            Step::Branch { case, .. } => p += &format!("/+{case}"),
        }
    }
    p
}

/// The arguments that reach the end of `steps` with `leaf` there (the
/// tag set for each branch).
fn build(steps: &[Step], leaf: Value) -> Value {
    match steps.split_first() {
        None => leaf,
        Some((Step::Member(m), rest)) => one(m, build(rest, leaf)),
        Some((Step::Branch { tag, case }, rest)) => {
            let mut v = build(rest, leaf);
            if let Value::Object(m) = &mut v {
                m.insert(tag.clone(), json!(case));
            }
            v
        }
    }
}

/// `{key: value}`.
fn one(key: &str, value: Value) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(key.to_string(), value);
    Value::Object(m)
}

/// What the schema says of a walk: the entity reached, or the answer
/// already known.
enum Walk<'s> {
    At(&'s Entity, Option<&'s ObjectMember>),
    Answer(Option<bool>),
}

/// Follow `steps` from `cmd`'s arguments in `s`: `Answer(Some(false))`
/// when something on the way is missing, `Answer(None)` when something
/// on the way depends on a build condition.
fn walk<'s>(s: &'s Schema, cmd: &str, steps: &[Step]) -> Walk<'s> {
    let Some(e) = s.lookup(cmd).map(|id| s.entity(id)) else {
        return Walk::Answer(Some(false));
    };
    let EntityKind::Command(c) = &e.kind else {
        return Walk::Answer(Some(false));
    };
    if e.cond.is_some() {
        return Walk::Answer(None);
    }
    let Some(mut at) = c.arg_type.map(|id| s.entity(id)) else {
        // No arguments: QEMU's introspection still has an (empty)
        // arg-type, where no member is.
        return match steps {
            [] => Walk::At(e, None),
            _ => Walk::Answer(Some(false)),
        };
    };
    let mut member = None;
    for step in steps {
        let EntityKind::Object(o) = &at.kind else {
            return Walk::Answer(Some(false));
        };
        let (ty, cond) = match step {
            Step::Member(name) => match o.members.iter().find(|m| &m.name == name) {
                None => return Walk::Answer(Some(false)),
                Some(m) => {
                    member = Some(m);
                    (m.ty, &m.cond)
                }
            },
            Step::Branch { case, .. } => {
                member = None;
                match o
                    .branches
                    .as_ref()
                    .and_then(|b| b.variants.iter().find(|v| &v.name == case))
                {
                    None => return Walk::Answer(Some(false)),
                    Some(v) => (v.ty, &v.cond),
                }
            }
        };
        at = s.entity(ty);
        if cond.is_some() || at.cond.is_some() {
            return Walk::Answer(None);
        }
    }
    Walk::At(at, member)
}

impl Item {
    /// The command the item is asked under.
    fn command(&self) -> &str {
        match self {
            Item::Command(c)
            | Item::Value { cmd: c, .. }
            | Item::Branch { cmd: c, .. }
            | Item::Deprecated { cmd: c, .. } => c,
        }
    }

    fn path(&self) -> String {
        match self {
            Item::Command(c) => c.clone(),
            Item::Value { cmd, steps, value } => format!("{}/^{value}", steps_path(cmd, steps)),
            Item::Branch { cmd, steps } => steps_path(cmd, steps),
            Item::Deprecated { cmd, steps } => format!("{}/$deprecated", steps_path(cmd, steps)),
        }
    }

    /// The same question without its last part (the value, the branch,
    /// the feature): what must hold in every release for the item to
    /// ask only about that part.
    fn prefix(&self) -> Option<Item> {
        match self {
            Item::Command(_) => None,
            Item::Value { cmd, steps, .. } | Item::Deprecated { cmd, steps } => {
                Some(Item::Branch {
                    cmd: cmd.clone(),
                    steps: steps.clone(),
                })
            }
            Item::Branch { cmd, steps } => Some(Item::Branch {
                cmd: cmd.clone(),
                steps: steps[..steps.len() - 1].to_vec(),
            }),
        }
    }

    /// What `s` says: `Some(answer)`, or `None` when it depends on a
    /// build condition.
    fn expected(&self, s: &Schema) -> Option<bool> {
        let (cmd, steps) = match self {
            Item::Command(c) => (c, &[][..]),
            Item::Value { cmd, steps, .. }
            | Item::Branch { cmd, steps }
            | Item::Deprecated { cmd, steps } => (cmd, &steps[..]),
        };
        let (at, member) = match walk(s, cmd, steps) {
            Walk::Answer(a) => return a,
            Walk::At(at, member) => (at, member),
        };
        match self {
            Item::Command(_) | Item::Branch { .. } => Some(true),
            Item::Value { value, .. } => {
                let EntityKind::Enum(en) = &at.kind else {
                    return Some(false);
                };
                match en.values.iter().find(|v| &v.name == value) {
                    None => Some(false),
                    Some(v) if v.cond.is_some() => None,
                    Some(_) => Some(true),
                }
            }
            Item::Deprecated { .. } => {
                let f = member?.features.iter().find(|f| f.name == "deprecated");
                match f {
                    Some(f) if f.cond.is_some() => None,
                    f => Some(f.is_some()),
                }
            }
        }
    }
}

/// Every item that `from`'s commands make, down to three steps below
/// their arguments.
fn candidates(from: &Schema) -> Vec<Item> {
    let mut out = Vec::new();
    for e in &from.entities {
        let EntityKind::Command(c) = &e.kind else {
            continue;
        };
        out.push(Item::Command(e.name.clone()));
        if let Some(a) = c.arg_type {
            below(from, &e.name, a, &mut Vec::new(), &mut out);
        }
    }
    out
}

fn below(
    s: &Schema,
    cmd: &str,
    ty: qapi_parser::EntityId,
    steps: &mut Vec<Step>,
    out: &mut Vec<Item>,
) {
    let EntityKind::Object(o) = &s.entity(ty).kind else {
        return;
    };
    if steps.len() >= 3 {
        return;
    }
    let tag = o.branches.as_ref().map(|b| b.tag.as_str());
    for m in &o.members {
        steps.push(Step::Member(m.name.clone()));
        if m.features.iter().any(|f| f.name == "deprecated") {
            out.push(Item::Deprecated {
                cmd: cmd.into(),
                steps: steps.clone(),
            });
        }
        match &s.entity(m.ty).kind {
            // A union's tag is asked through its branches.
            EntityKind::Enum(en) if tag != Some(&m.name) => {
                for v in &en.values {
                    out.push(Item::Value {
                        cmd: cmd.into(),
                        steps: steps.clone(),
                        value: v.name.clone(),
                    });
                }
            }
            _ => below(s, cmd, m.ty, steps, out),
        }
        steps.pop();
    }
    if let Some(b) = &o.branches {
        for v in &b.variants {
            steps.push(Step::Branch {
                tag: b.tag.clone(),
                case: v.name.clone(),
            });
            out.push(Item::Branch {
                cmd: cmd.into(),
                steps: steps.clone(),
            });
            below(s, cmd, v.ty, steps, out);
            steps.pop();
        }
    }
}

struct Releases {
    v10: Schema,
    v72: Schema,
    daemon: Schema,
}

fn releases() -> Releases {
    // The daemon's own schema, from 10.0.2's sources (`schema/older`
    // keeps only the QMP and guest agent schemas).
    let tree = qapi_tests::qemu_src::ensure("10.0.2").unwrap();
    let daemon = Schema::from_file(
        tree.join("storage-daemon/qapi/qapi-schema.json"),
        ParseOptions {
            rules: Rules::Lenient,
        },
    )
    .unwrap_or_else(|f| panic!("{f}"));
    Releases {
        v10: read("schema/older/10.0/qapi/qapi-schema.json", Rules::Lenient),
        v72: read("schema/older/7.2/qapi/qapi-schema.json", Rules::Lenient),
        daemon,
    }
}

/// The items asked of QEMUs whose schemas are `also` (besides 10.0.2's
/// and 7.2's): of each kind, the first (in schema order) whose answer
/// differs between 10.0.2 and 7.2 and that each of `also` answers as
/// 10.0.2 does, under a command `outside` lacks if given.  (No command
/// was removed between 7.2 and 10.0.2 but under a build condition, so
/// the command is one 10.0.2 added.)
fn choose(r: &Releases, also: &[&Schema], outside: Option<&Schema>) -> Vec<Item> {
    let mut all = candidates(&r.v10);
    all.extend(candidates(&r.v72));
    if let Some(o) = outside {
        all.retain(|i| o.lookup(i.command()).is_none());
    }
    let mut releases = vec![&r.v10, &r.v72];
    releases.extend_from_slice(also);
    let known = |i: &Item| {
        releases.iter().all(|s| i.expected(s).is_some())
            && i.prefix()
                .is_none_or(|p| releases.iter().all(|s| p.expected(s) == Some(true)))
    };
    let differs = |i: &Item| {
        let a = i.expected(&r.v10);
        known(i) && a != i.expected(&r.v72) && also.iter().all(|s| i.expected(s) == a)
    };
    let pick = |what: &str, f: &dyn Fn(&Item) -> bool| -> Item {
        all.iter()
            .find(|i| f(i) && differs(i))
            .unwrap_or_else(|| panic!("the schemas have no {what} that differs"))
            .clone()
    };
    // No deprecated member of the daemon's commands changed between the
    // releases (within three steps); then one deprecated in all of them
    // is asked.
    let deprecated = |want: bool| {
        all.iter()
            .find(|i| {
                matches!(i, Item::Deprecated { .. })
                    && known(i)
                    && releases.iter().all(|s| i.expected(s) == Some(want))
            })
            .cloned()
    };
    let new_in_10 = |i: &Item| i.expected(&r.v10) == Some(true);
    vec![
        pick("command added after 7.2", &|i| {
            matches!(i, Item::Command(_)) && new_in_10(i)
        }),
        pick("enum value", &|i| matches!(i, Item::Value { .. })),
        pick(
            "union branch",
            &|i| matches!(i, Item::Branch { steps, .. } if !steps.is_empty()),
        ),
        all.iter()
            .find(|i| matches!(i, Item::Deprecated { .. }) && differs(i))
            .cloned()
            .or_else(|| deprecated(true))
            .expect("a deprecated member"),
    ]
}

/// A warning hook that keeps what it is given.
fn collecting() -> (Options, Arc<Mutex<Vec<Warning>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let opts = Options::new()
        .check_commands(true)
        .on_warning(move |w| s.lock().unwrap().push(w.clone()));
    (opts, seen)
}

/// A JSON value of the type of the member at the end of `steps` (a
/// built-in or an enum), for checks that use it.
fn sample(s: &Schema, cmd: &str, steps: &[Step]) -> Value {
    let Walk::At(at, _) = walk(s, cmd, steps) else {
        unreachable!("chosen where it exists")
    };
    match &at.kind {
        EntityKind::Enum(e) => json!(e.values[0].name),
        EntityKind::Builtin(b) => match b.json_type() {
            JsonType::Int | JsonType::Number => json!(1),
            JsonType::Boolean => json!(true),
            _ => json!("probe"),
        },
        _ => json!({}),
    }
}

/// Ask one live QEMU (`release`'s schema) everything, blocking.
fn ask(sock: &std::path::Path, release: &Schema, items: &[Item]) {
    let (opts, warnings) = collecting();
    let qmp = qapi_types::blocking::Qmp::connect_unix_with(sock, &opts).unwrap();

    // Fetched once: concurrent first uses all get the same schema.
    let schemas: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8).map(|_| s.spawn(|| qmp.schema().unwrap())).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(schemas.iter().all(|x| Arc::ptr_eq(x, &schemas[0])));
    let schema = qmp.schema().unwrap();
    assert!(Arc::ptr_eq(&schema, &schemas[0]));

    use qapi_types::qmp::commands::{BlockdevAdd, QueryVersion};
    use qapi_types::qmp::events::BlockJobCompleted;
    let has = |name: &str| Item::Command(name.into()).expected(release).unwrap();
    assert_eq!(
        qmp.supports::<QueryVersion>().unwrap(),
        has("query-version")
    );
    assert_eq!(qmp.supports::<BlockdevAdd>().unwrap(), has("blockdev-add"));
    assert!(qmp.supports_event::<BlockJobCompleted>().unwrap());

    for item in items {
        let want = item.expected(release).unwrap();
        let path = item.path();
        assert_eq!(schema.query(&path), Ok(want), "{path}");
        match item {
            Item::Command(c) => {
                assert_eq!(schema.has_command(c), want, "{c}");
                // Checked sending: an unknown command is not sent.
                if !want {
                    match qmp.execute_raw(c, None) {
                        Err(Error::Unsupported(u)) => {
                            assert_eq!(u.unknown.len(), 1);
                            assert_eq!(u.unknown[0].path, *c);
                            assert_eq!(u.unknown[0].kind, UnknownKind::Command);
                        }
                        other => panic!("{c}: {other:?}"),
                    }
                }
            }
            Item::Value { cmd, steps, value } => {
                let r = qmp.check_raw(cmd, Some(&build(steps, json!(value))));
                if want {
                    r.unwrap();
                } else {
                    let Err(Error::Unsupported(u)) = r else {
                        panic!("{path}: {r:?}")
                    };
                    assert_eq!(u.unknown.len(), 1, "{u:?}");
                    assert_eq!(u.unknown[0].path, path);
                    assert_eq!(u.unknown[0].kind, UnknownKind::Value);
                }
            }
            Item::Branch { cmd, steps } => {
                let args = build(steps, json!({}));
                if want {
                    assert!(schema.check(cmd, Some(&args)).unknown.is_empty());
                } else {
                    // Checked sending stops it before it is sent.
                    let r = qmp.execute_raw(cmd, Some(&args));
                    let Err(Error::Unsupported(u)) = r else {
                        panic!("{path}: {r:?}")
                    };
                    assert_eq!(u.unknown.len(), 1, "{u:?}");
                    assert_eq!(u.unknown[0].path, path);
                    assert_eq!(u.unknown[0].kind, UnknownKind::Branch);
                    assert!(!schema.query(&u.unknown[0].path).unwrap());
                }
            }
            Item::Deprecated { cmd, steps } => {
                let at = steps_path(cmd, steps);
                let features = schema.features(&at).unwrap();
                assert_eq!(features.iter().any(|f| f == "deprecated"), want, "{at}");
                // Using it warns, once per connection.
                let args = build(steps, sample(release, cmd, steps));
                warnings.lock().unwrap().clear();
                qmp.check_raw(cmd, Some(&args)).unwrap();
                qmp.check_raw(cmd, Some(&args)).unwrap();
                let w = warnings.lock().unwrap().clone();
                let expect: Vec<Warning> = if want {
                    vec![Warning {
                        path: at.clone(),
                        feature: "deprecated".into(),
                    }]
                } else {
                    Vec::new()
                };
                let w: Vec<Warning> = w.into_iter().filter(|w| w.path == at).collect();
                assert_eq!(w, expect, "{at}");
            }
        }
    }
}

#[test]
fn probing_answers_follow_each_release_schema() {
    qapi_tests::require_live!();
    let r = releases();
    // Items the daemon can answer, and items for the system emulators
    // (all of QMP: 10.0.2's and 7.2's schemas alone choose them).
    let for_daemon = choose(&r, &[&r.daemon], None);
    let for_emulators = choose(&r, &[], Some(&r.daemon));
    eprintln!("asking the daemon: {for_daemon:#?}\nand the emulators also: {for_emulators:#?}");
    let both = [for_daemon.clone(), for_emulators].concat();

    let d = storage_daemon(&[]);
    ask(&d.sock(), &r.daemon, &for_daemon);
    drop(d);

    let q = qapi_tests::live::system_emulator10(&["-S"]);
    ask(&q.sock(), &r.v10, &both);
    drop(q);

    let q = ensure_qemu72().unwrap().spawn_system("none");
    ask(&q.sock(), &r.v72, &both);
}

#[test]
fn tokio_client_probes_the_same_way() {
    qapi_tests::require_live!();
    let r = releases();
    let items = choose(&r, &[&r.daemon], None);
    let d = storage_daemon(&[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (opts, _) = collecting();
        let qmp = qapi_types::tokio::Qmp::connect_unix_with(d.sock(), &opts)
            .await
            .unwrap();
        let all = futures_join_all((0..8).map(|_| qmp.schema()).collect::<Vec<_>>()).await;
        let schema = qmp.schema().await.unwrap();
        for s in all {
            assert!(Arc::ptr_eq(&s.unwrap(), &schema));
        }
        for item in &items {
            let want = item.expected(&r.daemon).unwrap();
            assert_eq!(schema.query(&item.path()), Ok(want), "{item:?}");
            if let Item::Command(c) = item {
                if !want {
                    let e = qmp.execute_raw(c, None).await.unwrap_err();
                    assert!(matches!(e, Error::Unsupported(_)), "{e}");
                }
            }
        }
        use qapi_types::qmp::commands::QueryVersion;
        assert!(qmp.supports::<QueryVersion>().await.unwrap());
        // Checked commands still run.
        qmp.execute(&QueryVersion {}).await.unwrap();
    });
}

/// Run futures at once (tokio has no `join_all`; spawning would need
/// `'static` futures).
async fn futures_join_all<F: std::future::Future>(fs: Vec<F>) -> Vec<F::Output> {
    let mut fs: Vec<_> = fs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = fs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in fs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("ready")).collect()
}
