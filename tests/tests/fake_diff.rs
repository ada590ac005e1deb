//! The differential test of the fake QEMU (`qapi-fake`) against real
//! QEMU 10.0.2 (`cargo xtask fake-diff` runs this test and shows its
//! output): requests generated from a live QEMU's own
//! `query-qmp-schema` answer (valid ones, and each kind of invalid one:
//! a required member left out, a member added, a value of the wrong JSON
//! type, an enum value or union branch that does not exist, arguments to
//! a command that takes none, an unknown command, a malformed request),
//! sent to QEMU and to a fake loaded with the same schema, and their
//! verdicts compared.
//!
//! A verdict is `accepted` (QEMU ran the command: it succeeded, or failed
//! for a reason of its own after the arguments were read; the fake handed
//! it to its handler) or the error's class and description when the
//! request was refused before running (QEMU's texts for that are the
//! dispatcher's and input visitor's, recognised by their templates in
//! [`refused_before_running`]).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use qapi_fake::{Fake, Mode, QmpError, QmpErrorExt, Schema};
use serde_json::{json, Map, Value};

/// Commands left out, and why: they would stop or reset QEMU, touch the
/// host (network, tap devices, mounts, fd passing), run arbitrary monitor
/// commands, or take arguments QEMU reads by hand (`'gen': false`).
const LEFT_OUT: &[(&str, &str)] = &[
    ("quit", "stops QEMU"),
    ("system_reset", "resets the machine"),
    ("system_powerdown", "powers the machine down"),
    ("x-exit-preconfig", "changes the machine's phase"),
    ("migrate", "migration to a URI"),
    ("migrate-incoming", "migration"),
    ("migrate-recover", "migration"),
    ("migrate-pause", "migration"),
    ("dump-guest-memory", "dumps memory to a file"),
    ("human-monitor-command", "runs HMP command lines"),
    ("device_add", "'gen': false: arguments read by hand"),
    ("netdev_add", "creates host network devices (taps as root)"),
    (
        "nbd-server-start",
        "listens on host addresses (name lookups)",
    ),
    ("block-export-add", "exports (FUSE mounts, sockets)"),
    ("getfd", "needs a file descriptor passed"),
    ("add-fd", "needs a file descriptor passed"),
    ("get-win32-socket", "Windows only"),
    ("snapshot-save", "starts jobs over the VM state"),
    ("snapshot-load", "starts jobs over the VM state"),
    ("snapshot-delete", "starts jobs over the VM state"),
    (
        "xen-load-devices-state",
        "loading a device state ends QEMU when it fails",
    ),
    ("xen-save-devices-state", "Xen only"),
    ("xen-set-global-dirty-log", "Xen only"),
    ("xen-set-replication", "Xen only"),
    ("xen-colo-do-checkpoint", "Xen only"),
];

/// One generated request.
#[derive(Clone, Debug)]
struct Case {
    command: String,
    /// `valid`, `missing`, `unexpected`, `wrong-type`, `enum`, `branch`,
    /// `no-arguments`, `unknown-command`, `envelope`.
    kind: &'static str,
    request: Value,
}

/// A verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    Accepted,
    Refused { class: String, desc: String },
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Accepted => f.write_str("accepted"),
            Verdict::Refused { class, desc } => write!(f, "{class}: {desc}"),
        }
    }
}

/// Whether QEMU's error is one it sends before running a command: the
/// dispatcher's and the input visitor's templates.
fn refused_before_running(desc: &str) -> bool {
    let quoted_then = |rest: &str| -> Option<String> {
        // "'NAME' REST" → REST
        let r = rest.strip_prefix('\'')?;
        let end = r.find('\'')?;
        Some(r[end + 1..].to_string())
    };
    if let Some(r) = desc.strip_prefix("Parameter ").and_then(quoted_then) {
        const VISITOR_TYPES: [&str; 8] = [
            "uint64", "int8", "int16", "int32", "uint8", "uint16", "uint32", "size",
        ];
        return r == " is missing"
            || r == " is unexpected"
            || r.starts_with(" does not accept value '")
            || r.strip_prefix(" expects ")
                .is_some_and(|t| VISITOR_TYPES.contains(&t));
    }
    if let Some(r) = desc
        .strip_prefix("Invalid parameter type for ")
        .and_then(quoted_then)
    {
        return r.starts_with(", expected: ");
    }
    desc.starts_with("QMP input ")
        || desc.starts_with("Expecting capabilities negotiation")
        || desc.starts_with("Capabilities negotiation is already complete")
        || (desc.starts_with("The command ")
            && (desc.ends_with(" has not been found") || desc.ends_with(" does not support OOB")))
        || (desc.starts_with("Command ") && desc.contains(" has been disabled"))
        || (desc.starts_with("Capability '") && desc.ends_with("' not available"))
        || desc.starts_with("JSON parse error")
}

/// A seeded xorshift: the same requests every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

#[derive(Clone, Debug)]
enum Seg {
    Member(String),
    Index(usize),
}

/// Where a generated value sits, what its type is, and what can be done
/// to it.
#[derive(Clone, Debug)]
struct Site {
    path: Vec<Seg>,
    meta: String,
    /// The builtin's JSON type, the alternate's branch JSON types.
    json: Vec<String>,
    /// A required member (can be left out).
    required: bool,
    /// A union's discriminator.
    tag: bool,
}

struct Gen<'a> {
    schema: &'a Schema,
    rng: Rng,
    sites: Vec<Site>,
}

fn json_of(schema: &Schema, ty: &str) -> String {
    let e = schema.entry(ty).cloned().unwrap_or(Value::Null);
    match e["meta-type"].as_str().unwrap_or("") {
        "builtin" => match e["json-type"].as_str().unwrap_or("") {
            "int" | "number" => "number".into(),
            j => j.into(),
        },
        "enum" => "string".into(),
        m => m.into(),
    }
}

impl Gen<'_> {
    /// A valid value of `ty` at `path`.
    fn value(&mut self, ty: &str, path: &[Seg], required: bool, tag: bool, depth: usize) -> Value {
        let e = self.schema.entry(ty).cloned().unwrap_or(Value::Null);
        let meta = e["meta-type"].as_str().unwrap_or("").to_string();
        let mut json = Vec::new();
        let v = match meta.as_str() {
            "builtin" => {
                let j = e["json-type"].as_str().unwrap_or("");
                json.push(j.to_string());
                match j {
                    "int" => json!(1),
                    "number" => json!(1.5),
                    "string" => json!("fake-s"),
                    "boolean" => json!(false),
                    "null" => Value::Null,
                    _ => json!({}),
                }
            }
            "enum" => {
                let vals = e["values"].as_array().cloned().unwrap_or_default();
                vals.get(self.rng.below(vals.len()))
                    .cloned()
                    .unwrap_or(json!(""))
            }
            "array" => {
                let elem = e["element-type"].as_str().unwrap_or("").to_string();
                let mut p = path.to_vec();
                p.push(Seg::Index(0));
                json!([self.value(&elem, &p, false, false, depth + 1)])
            }
            "object" => {
                let mut map = Map::new();
                self.members(&e, path, &mut map, depth);
                Value::Object(map)
            }
            "alternate" => {
                let ms = e["members"].as_array().cloned().unwrap_or_default();
                for m in &ms {
                    json.push(json_of(self.schema, m["type"].as_str().unwrap_or("")));
                }
                let pick = ms[self.rng.below(ms.len())]["type"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                // The branch's own sites would describe the branch, not
                // the alternate: record the alternate's only.
                let mut g = Gen {
                    schema: self.schema,
                    rng: Rng(self.rng.next() | 1),
                    sites: Vec::new(),
                };
                g.value(&pick, path, false, false, depth + 1)
            }
            _ => Value::Null,
        };
        self.sites.push(Site {
            path: path.to_vec(),
            meta,
            json,
            required,
            tag,
        });
        v
    }

    fn members(&mut self, e: &Value, path: &[Seg], map: &mut Map<String, Value>, depth: usize) {
        let tag = e["tag"].as_str();
        for m in e["members"].as_array().into_iter().flatten() {
            let name = m["name"].as_str().unwrap_or("").to_string();
            let optional = m.get("default").is_some();
            // Optional members now and then, fewer deeper down.
            if optional && (depth > 3 || self.rng.below(3) != 0) {
                continue;
            }
            let mut p = path.to_vec();
            p.push(Seg::Member(name.clone()));
            let is_tag = tag == Some(name.as_str());
            let ty = m["type"].as_str().unwrap_or("").to_string();
            let v = self.value(&ty, &p, !optional, is_tag, depth + 1);
            map.insert(name, v);
        }
        if let Some(tag) = tag {
            let case = map
                .get(tag)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let branch = e["variants"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["case"].as_str() == Some(case.as_str()))
                .and_then(|b| b["type"].as_str())
                .and_then(|t| self.schema.entry(t).cloned());
            if let Some(be) = branch {
                self.members(&be, path, map, depth);
            }
        }
    }
}

fn at<'v>(root: &'v mut Value, path: &[Seg]) -> Option<&'v mut Value> {
    let mut v = root;
    for s in path {
        v = match s {
            Seg::Member(m) => v.as_object_mut()?.get_mut(m)?,
            Seg::Index(i) => v.as_array_mut()?.get_mut(*i)?,
        };
    }
    Some(v)
}

/// A value of a JSON type `site` does not accept.
fn wrong_value(site: &Site) -> Option<Value> {
    let accepts = |j: &str| site.json.iter().any(|x| x == j);
    Some(match site.meta.as_str() {
        "builtin" if accepts("value") => return None,
        "builtin" if accepts("string") => json!(7),
        "builtin" if accepts("int") => json!("7"),
        "builtin" if accepts("number") => json!(true),
        "builtin" => json!("7"),
        "enum" => json!(7),
        "array" => json!({"x": 1}),
        "object" => json!(["x"]),
        "alternate" => {
            if !accepts("array") {
                json!([])
            } else if !accepts("boolean") {
                json!(true)
            } else {
                return None;
            }
        }
        _ => return None,
    })
}

fn request(command: &str, args: Option<Value>) -> Value {
    let mut r = Map::new();
    r.insert("execute".into(), json!(command));
    if let Some(a) = args {
        r.insert("arguments".into(), a);
    }
    Value::Object(r)
}

/// The requests for `schema`'s commands (those in `LEFT_OUT` aside).
fn generate(schema: &Schema, seed: u64) -> Vec<Case> {
    let mut names: Vec<&str> = schema
        .command_names()
        .filter(|n| !LEFT_OUT.iter().any(|(l, _)| l == n))
        .collect();
    names.sort();
    let mut rng = Rng(seed | 1);
    let mut cases = Vec::new();
    for name in names {
        let info = schema.command(name).expect("listed").clone();
        let mut g = Gen {
            schema,
            rng: Rng(rng.next() | 1),
            sites: Vec::new(),
        };
        let args = g.value(&info.arg_type, &[], true, false, 0);
        let sites: Vec<Site> = g.sites.into_iter().filter(|s| !s.path.is_empty()).collect();
        let push = |cases: &mut Vec<Case>, kind, args: Value| {
            let args = match args {
                Value::Object(m) if m.is_empty() => None,
                a => Some(a),
            };
            cases.push(Case {
                command: name.to_string(),
                kind,
                request: request(name, args),
            });
        };
        push(&mut cases, "valid", args.clone());
        // Arguments to a command that takes none, or one member too many
        // somewhere in the arguments (an object site, or the top).
        let objects: Vec<&Site> = sites.iter().filter(|s| s.meta == "object").collect();
        let mut a = args.clone();
        let kind = if sites.is_empty() && args == json!({}) {
            "no-arguments"
        } else {
            "unexpected"
        };
        let target = if objects.is_empty() || rng.below(2) == 0 {
            Some(&mut a)
        } else {
            let s = objects[rng.below(objects.len())];
            at(&mut a, &s.path)
        };
        if let Some(Value::Object(m)) = target {
            m.insert("bogus-member".into(), json!(1));
            push(&mut cases, kind, a);
        }
        let required: Vec<&Site> = sites
            .iter()
            .filter(|s| s.required && matches!(s.path.last(), Some(Seg::Member(_))))
            .collect();
        if !required.is_empty() {
            let s = required[rng.below(required.len())];
            let mut a = args.clone();
            if let (Some(Seg::Member(m)), Some(Value::Object(parent))) =
                (s.path.last(), at(&mut a, &s.path[..s.path.len() - 1]))
            {
                parent.remove(m);
                push(&mut cases, "missing", a);
            }
        }
        let typed: Vec<(&Site, Value)> = sites
            .iter()
            .filter_map(|s| Some((s, wrong_value(s)?)))
            .collect();
        if !typed.is_empty() {
            let (s, w) = &typed[rng.below(typed.len())];
            let mut a = args.clone();
            if let Some(v) = at(&mut a, &s.path) {
                *v = w.clone();
                push(&mut cases, "wrong-type", a);
            }
        }
        let enums: Vec<&Site> = sites
            .iter()
            .filter(|s| s.meta == "enum" && !s.tag)
            .collect();
        if !enums.is_empty() {
            let s = enums[rng.below(enums.len())];
            let mut a = args.clone();
            if let Some(v) = at(&mut a, &s.path) {
                *v = json!("no-such-value");
                push(&mut cases, "enum", a);
            }
        }
        let tags: Vec<&Site> = sites.iter().filter(|s| s.tag).collect();
        if !tags.is_empty() {
            let s = tags[rng.below(tags.len())];
            let mut a = args.clone();
            if let Some(v) = at(&mut a, &s.path) {
                *v = json!("no-such-branch");
                push(&mut cases, "branch", a);
            }
        }
    }
    // The request's envelope, and commands that do not exist.
    let envelope = [
        ("unknown-command", json!({"execute": "no-such-command"})),
        (
            "unknown-command",
            json!({"execute": "query-no-such-thing", "arguments": {}}),
        ),
        (
            "envelope",
            json!({"execute": "query-version", "arguments": []}),
        ),
        (
            "envelope",
            json!({"execute": "query-version", "argument": {}}),
        ),
        ("envelope", json!({"execute": 7})),
        ("envelope", json!({"arguments": {}})),
        ("envelope", json!(["execute", "query-version"])),
        ("envelope", json!({"exec-oob": "query-version"})),
        (
            "envelope",
            json!({"execute": "query-version", "id": {"any": ["json"]}}),
        ),
    ];
    for (kind, request) in envelope {
        cases.push(Case {
            command: request["execute"].as_str().unwrap_or("").to_string(),
            kind,
            request,
        });
    }
    cases
}

/// A bare QMP client: one request at a time, events skipped.
struct Raw {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Raw {
    fn new(stream: UnixStream) -> Result<Raw, String> {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        let mut raw = Raw { stream, reader };
        raw.message()?; // the greeting
        let r = raw.send(&json!({"execute": "qmp_capabilities"}))?;
        if r.get("return").is_none() {
            return Err(format!("negotiation failed: {r}"));
        }
        Ok(raw)
    }

    fn connect(path: &Path) -> Result<Raw, String> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            match UnixStream::connect(path) {
                Ok(s) => return Raw::new(s),
                Err(e) if Instant::now() > until => return Err(format!("{}: {e}", path.display())),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn message(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .reader
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the server hung up".into());
            }
            if line.trim().is_empty() {
                continue;
            }
            return serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"));
        }
    }

    fn send(&mut self, request: &Value) -> Result<Value, String> {
        let mut bytes = serde_json::to_vec(request).map_err(|e| e.to_string())?;
        bytes.push(b'\n');
        self.stream.write_all(&bytes).map_err(|e| e.to_string())?;
        loop {
            let m = self.message()?;
            if m.get("event").is_none() {
                return Ok(m);
            }
        }
    }
}

/// The marker the differential fake's handlers answer with.
const ACCEPTED: &str = "fake-diff: handed to the handler";

fn verdict(reply: &Value, fake: bool) -> Verdict {
    match reply.get("error") {
        None => Verdict::Accepted,
        Some(e) => {
            let class = e["class"].as_str().unwrap_or("").to_string();
            let desc = e["desc"].as_str().unwrap_or("").to_string();
            let refused = if fake {
                desc != ACCEPTED
            } else {
                refused_before_running(&desc)
            };
            if refused {
                Verdict::Refused { class, desc }
            } else {
                Verdict::Accepted
            }
        }
    }
}

/// One request whose verdicts differ.
#[derive(Clone, Debug)]
struct Difference {
    target: String,
    case: Case,
    fake: Verdict,
    qemu: Verdict,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}] {} ({}): {}\n    fake: {}\n    QEMU: {}",
            self.target, self.case.command, self.case.kind, self.case.request, self.fake, self.qemu
        )
    }
}

/// The outcome of a run.
#[derive(Debug, Default)]
struct Report {
    requests: usize,
    same: usize,
    differences: Vec<Difference>,
    /// Requests per kind.
    kinds: std::collections::BTreeMap<&'static str, usize>,
}

impl Report {
    fn summary(&self) -> String {
        format!(
            "{} requests: {} answered the same by the fake and QEMU",
            self.requests, self.same
        )
    }
}

/// Run the generated requests against the QEMU listening on `socket` and
/// against a fake loaded with that QEMU's schema; add to `report`.
fn compare(
    target: &str,
    socket: &Path,
    parsed: &qapi_parser::Schema,
    seed: u64,
    report: &mut Report,
) -> Result<(), String> {
    let mut qemu = Raw::connect(socket)?;
    let answer = qemu.send(&json!({"execute": "query-qmp-schema"}))?;
    let list = answer
        .get("return")
        .ok_or_else(|| format!("{target}: query-qmp-schema failed: {answer}"))?;
    let mut schema =
        Schema::from_introspection(list).map_err(|e| format!("{target}'s schema: {e}"))?;
    // The integer kinds and alternate names the introspection masks.
    schema.refine(parsed);
    let cases = generate(&schema, seed);
    let fake = Fake::with_schema(schema.clone(), Mode::Qmp);
    for name in schema.command_names() {
        fake.on_raw(name, |_| Err(QmpError::generic(ACCEPTED)));
    }
    let (stream, _server) = fake.pair();
    let mut fake_client = Raw::new(stream)?;
    for case in cases {
        let q = qemu
            .send(&case.request)
            .map_err(|e| format!("{target}, after {}: {e}", case.request))?;
        let q = verdict(&q, false);
        let f = fake_client
            .send(&case.request)
            .map_err(|e| format!("the fake, after {}: {e}", case.request))?;
        let f = verdict(&f, true);
        report.requests += 1;
        *report.kinds.entry(case.kind).or_default() += 1;
        if q == f {
            report.same += 1;
        } else {
            report.differences.push(Difference {
                target: target.to_string(),
                case,
                fake: f,
                qemu: q,
            });
        }
    }
    Ok(())
}

/// The whole differential run: the storage daemon and the system
/// emulator (both QEMU 10.0.2).
fn run() -> Result<Report, String> {
    // QEMU 10.0.2's documentation predates the strict rules (10.2's).
    let parse = |path: std::path::PathBuf| {
        let options = qapi_parser::Options {
            rules: qapi_parser::Rules::Lenient,
        };
        qapi_parser::Schema::from_file(&path, options)
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    let tree = qapi_tests::qemu_src::ensure("10.0.2")?;
    let mut report = Report::default();
    let daemon_schema = parse(tree.join("storage-daemon/qapi/qapi-schema.json"))?;
    let daemon = qapi_tests::live::storage_daemon(&[]);
    compare(
        "qemu-storage-daemon",
        &daemon.sock(),
        &daemon_schema,
        0x5eed,
        &mut report,
    )?;
    drop(daemon);
    let emulator_schema = parse(tree.join("qapi/qapi-schema.json"))?;
    let emulator = qapi_tests::live::system_emulator10(&["-S"]);
    compare(
        "qemu-system-x86_64",
        &emulator.sock(),
        &emulator_schema,
        0x5eed,
        &mut report,
    )?;
    Ok(report)
}

#[test]
fn fake_agrees_with_qemu() {
    qapi_tests::require_live!();
    let report = run().unwrap();
    for d in &report.differences {
        println!("{d}");
    }
    println!("requests per kind: {:?}", report.kinds);
    let left_out: Vec<String> = LEFT_OUT
        .iter()
        .map(|(c, why)| format!("{c} ({why})"))
        .collect();
    println!("left out: {}", left_out.join(", "));
    println!("{}", report.summary());
    assert!(report.requests >= 300, "{}", report.summary());
    for kind in [
        "valid",
        "missing",
        "unexpected",
        "wrong-type",
        "enum",
        "branch",
        "no-arguments",
    ] {
        assert!(
            report.kinds.get(kind).copied().unwrap_or(0) >= 5,
            "few {kind}: {:?}",
            report.kinds
        );
    }
    assert!(
        report.same * 100 >= report.requests * 99,
        "{} ({} differences listed above)",
        report.summary(),
        report.differences.len()
    );
}
