//! qmp-shell: an interactive QMP console on the typed client.
//!
//! ```text
//! qmp-shell [-H] [-p] [-v|-vv] [--history FILE] SOCKET|HOST:PORT
//! qmp-shell --guest-agent [-p] [-v|-vv] [--history FILE] SOCKET
//! ```
//!
//! Type `command key=value …` (dotted keys for nested members, JSON for
//! structured values) or a whole JSON request; arguments are checked
//! against the server's own schema before sending.  Tab completes
//! command and argument names; `help` lists commands, `help COMMAND`
//! shows its documentation.  `transaction(` starts a transaction: one
//! action per line (`blockdev-snapshot-sync device=… snapshot-file=…`),
//! `)` sends it.  Events are printed as they arrive.  `-H` sends lines
//! to the human monitor instead.  Without a terminal, lines are read
//! from standard input, for scripts.  Ctrl-D (or the end of input) ends
//! the shell; so does the server going away, with a message.
//! `--guest-agent` (`-g`) talks to `qemu-ga` instead: the guest agent's
//! commands (those the agent says are enabled), checked against the
//! guest-agent schema, with the same completion, help and history
//! (`qga-shell_history`).  `-v` shows the client's tracing on standard error
//! (commands, events, connection changes); `-vv` adds the raw JSON.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use qapi_tools::{complete, connect, parse_action, parse_request, Catalog, Docs};
use qapi_types::blocking::{GuestAgent, Qmp};
use qapi_types::{Error, EventItem};
use serde_json::{json, Value};

const USAGE: &str =
    "usage: qmp-shell [-H|--hmp] [-g|--guest-agent] [-p|--pretty] [-v|-vv] [--history FILE] SOCKET|HOST:PORT";

struct Args {
    hmp: bool,
    agent: bool,
    pretty: bool,
    history: Option<PathBuf>,
    verbose: usize,
    address: String,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        hmp: false,
        agent: false,
        pretty: false,
        history: None,
        verbose: 0,
        address: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-H" | "--hmp" => a.hmp = true,
            "-g" | "--guest-agent" => a.agent = true,
            "-p" | "--pretty" => a.pretty = true,
            "-v" | "--verbose" => a.verbose += 1,
            "-vv" => a.verbose += 2,
            "--history" => a.history = Some(it.next().ok_or(USAGE)?.into()),
            "-h" | "--help" => return Err(USAGE.into()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}\n{USAGE}")),
            s if a.address.is_empty() => a.address = s.to_string(),
            _ => return Err(USAGE.into()),
        }
    }
    if a.address.is_empty() {
        return Err(USAGE.into());
    }
    if a.agent && a.hmp {
        return Err(format!("the guest agent has no human monitor\n{USAGE}"));
    }
    Ok(a)
}

fn show(v: &Value, pretty: bool) -> String {
    if pretty {
        serde_json::to_string_pretty(v).unwrap_or_default()
    } else {
        v.to_string()
    }
}

/// What to print for one line's outcome; `Err` ends the shell.
type Outcome = Result<String, String>;

/// A QEMU monitor or a guest agent.
enum Conn {
    Qmp(Qmp),
    // Boxed: the agent client holds its options inline.
    Agent(Box<GuestAgent>),
}

impl Conn {
    fn execute_raw(&self, name: &str, args: Option<&Value>) -> Result<Value, Error> {
        match self {
            Conn::Qmp(q) => q.execute_raw(name, args),
            Conn::Agent(a) => a.execute_raw(name, args),
        }
    }
}

struct Shell {
    conn: Conn,
    catalog: Arc<Catalog>,
    docs: Option<Docs>,
    pretty: bool,
    hmp: bool,
    /// Actions of a transaction being typed.
    transaction: Option<Vec<Value>>,
}

impl Shell {
    fn prompt(&self) -> &'static str {
        if self.transaction.is_some() {
            "(QEMU) transaction> "
        } else if matches!(self.conn, Conn::Agent(_)) {
            "(QGA) "
        } else if self.hmp {
            "(HMP) "
        } else {
            "(QEMU) "
        }
    }

    fn reply(&self, r: Result<Value, Error>) -> Outcome {
        match r {
            Ok(v) => Ok(show(&json!({ "return": v }), self.pretty)),
            Err(Error::Qmp(e)) => Ok(show(
                &json!({"error": {"class": e.class, "desc": e.desc}}),
                self.pretty,
            )),
            Err(e) if e.is_fatal() => Err(format!("qmp-shell: {e}")),
            Err(e) => Ok(format!("error: {e}")),
        }
    }

    fn line(&mut self, line: &str) -> Outcome {
        let line = line.trim();
        if line.is_empty() {
            return Ok(String::new());
        }
        if let (true, Conn::Qmp(qmp)) = (self.hmp, &self.conn) {
            return match qmp.human_command(line) {
                Ok(text) => Ok(text.trim_end_matches(['\r', '\n']).to_string()),
                Err(Error::Qmp(e)) => Ok(format!("error: {e}")),
                Err(e) if e.is_fatal() => Err(format!("qmp-shell: {e}")),
                Err(e) => Ok(format!("error: {e}")),
            };
        }
        if let Some(actions) = &mut self.transaction {
            if line == ")" {
                let actions = self.transaction.take().unwrap_or_default();
                let r = self
                    .conn
                    .execute_raw("transaction", Some(&json!({ "actions": actions })));
                return self.reply(r);
            }
            return match parse_action(&self.catalog, self.docs.as_ref(), line) {
                Ok(a) => {
                    actions.push(a);
                    Ok(String::new())
                }
                Err(e) => Ok(format!("error: {e} (the action was not added)")),
            };
        }
        if line == "transaction(" && matches!(self.conn, Conn::Qmp(_)) {
            self.transaction = Some(Vec::new());
            return Ok("one action per line; ')' sends the transaction".into());
        }
        if line == "help" {
            return Ok(format!(
                "{}\n`help COMMAND` shows a command's documentation; Ctrl-D ends the shell.",
                qapi_tools::command_list(&self.catalog)
            ));
        }
        if let Some(cmd) = line.strip_prefix("help ") {
            let cmd = cmd.trim();
            let known = self.catalog.arg_type(cmd).is_some();
            return Ok(match self.docs.as_ref().and_then(|d| d.help(cmd)) {
                Some(text) if known => text,
                Some(text) => format!("{text}\n(this server does not have {cmd})"),
                None if known => {
                    let args = self.catalog.argument_names(cmd);
                    let list: Vec<String> = args
                        .iter()
                        .map(|m| {
                            format!(
                                "  {}{}: {}",
                                m.name,
                                if m.optional { " (optional)" } else { "" },
                                self.catalog.describe(&m.ty)
                            )
                        })
                        .collect();
                    format!(
                        "{cmd} (not documented in the bindings' schema)\n{}",
                        list.join("\n")
                    )
                }
                None => format!("error: unknown command '{cmd}'"),
            });
        }
        match parse_request(&self.catalog, self.docs.as_ref(), line) {
            Ok(req) => {
                let r = self.conn.execute_raw(&req.command, req.arguments.as_ref());
                self.reply(r)
            }
            Err(e) => Ok(format!("error: {e}")),
        }
    }
}

/// Completion for the interactive editor.
struct Helper {
    catalog: Arc<Catalog>,
}

impl rustyline::completion::Completer for Helper {
    type Candidate = String;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(complete(
            &self.catalog,
            &["help", "transaction("],
            &line[..pos],
        ))
    }
}

impl rustyline::hint::Hinter for Helper {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for Helper {}
impl rustyline::validate::Validator for Helper {}
impl rustyline::Helper for Helper {}

fn history_path(given: Option<PathBuf>, name: &str) -> Option<PathBuf> {
    given.or_else(|| {
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/state")))?;
        Some(base.join(name))
    })
}

fn main() -> ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Some(level) = qapi_tools::verbose::level(a.verbose) {
        qapi_tools::verbose::install(level);
    }
    if a.agent {
        return agent_main(a);
    }
    let qmp = match connect(&a.address) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("qmp-shell: cannot connect to {}: {e}", a.address);
            return ExitCode::FAILURE;
        }
    };
    // The client's schema: read once, and the one its checks use.
    let catalog = match qmp.schema() {
        Ok(s) => Arc::new(Catalog::from_schema(s)),
        Err(e) => {
            eprintln!("qmp-shell: cannot read the server's schema: {e}");
            return ExitCode::FAILURE;
        }
    };
    let interactive = std::io::stdin().is_terminal();
    let shell = Shell {
        conn: Conn::Qmp(qmp.clone()),
        catalog,
        docs: Docs::embedded_qmp().ok(),
        pretty: a.pretty,
        hmp: a.hmp,
        transaction: None,
    };
    let events = Some(qmp.subscribe());
    let pretty = a.pretty;
    let greeting = format!(
        "Welcome to the QMP low-level shell! Connected to {}",
        qmp.greeting()
    );
    if interactive {
        let history = history_path(a.history, "qmp-shell_history");
        interactive_loop(shell, events, pretty, greeting, history)
    } else {
        script_loop(shell, events, pretty)
    }
}

/// `--guest-agent`: the agent's enabled commands, checked against the
/// guest-agent schema of the bindings.
fn agent_main(a: Args) -> ExitCode {
    let ga = match GuestAgent::connect_unix_with(&a.address, &qapi_types::Options::default()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("qmp-shell: cannot connect to {}: {e}", a.address);
            return ExitCode::FAILURE;
        }
    };
    let info = match ga.execute_raw("guest-info", None) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("qmp-shell: {}: no answer to guest-info: {e}", a.address);
            return ExitCode::FAILURE;
        }
    };
    let catalog = Arc::new(qapi_tools::agent_catalog(&info));
    let greeting = format!(
        "Welcome to the guest agent shell! Connected to qemu-ga {} ({} commands)",
        info["version"].as_str().unwrap_or("?"),
        catalog.commands().len()
    );
    let shell = Shell {
        conn: Conn::Agent(Box::new(ga)),
        catalog,
        docs: Docs::embedded_qga().ok(),
        pretty: a.pretty,
        hmp: false,
        transaction: None,
    };
    if std::io::stdin().is_terminal() {
        let history = history_path(a.history, "qga-shell_history");
        interactive_loop(shell, None, a.pretty, greeting, history)
    } else {
        script_loop(shell, None, a.pretty)
    }
}

/// Lines from standard input (scripts); events as they come, on the
/// same output.
fn script_loop(
    mut shell: Shell,
    events: Option<qapi_types::blocking::Subscription>,
    pretty: bool,
) -> ExitCode {
    let out = Arc::new(Mutex::new(std::io::stdout()));
    if let Some(events) = events {
        let o = out.clone();
        std::thread::spawn(move || {
            event_loop(events, pretty, |text| {
                let mut o = o.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(o, "{text}");
            });
            server_gone(None)
        });
    }
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        match shell.line(&line) {
            Ok(text) if text.is_empty() => {}
            Ok(text) => {
                let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(o, "{text}");
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if shell.transaction.is_some() {
        eprintln!("qmp-shell: the input ended inside a transaction; it was not sent");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The server went away while the shell waited for a line: say so and
/// end, leaving the terminal as it was found.
fn server_gone(terminal: Option<&qapi_tools::term::Saved>) -> ! {
    if let Some(t) = terminal {
        t.restore();
    }
    eprintln!("\nqmp-shell: the connection to QEMU is closed (the server went away)");
    std::process::exit(1)
}

fn event_loop(
    events: qapi_types::blocking::Subscription,
    pretty: bool,
    mut print: impl FnMut(String),
) {
    loop {
        match events.recv() {
            Ok(EventItem::Event(e)) => print(show(
                &json!({"event": e.name, "data": e.data,
                        "timestamp": {"seconds": e.timestamp.seconds,
                                      "microseconds": e.timestamp.microseconds}}),
                pretty,
            )),
            Ok(EventItem::Lagged(n)) => {
                print(format!("({n} events were dropped: output too slow)"))
            }
            Err(_) => return,
        }
    }
}

fn interactive_loop(
    mut shell: Shell,
    events: Option<qapi_types::blocking::Subscription>,
    pretty: bool,
    greeting: String,
    history: Option<PathBuf>,
) -> ExitCode {
    use rustyline::error::ReadlineError;
    use rustyline::ExternalPrinter;
    // Taken before the editor changes it, to put back if the server
    // goes away while a line is being read.
    let saved = qapi_tools::term::Saved::stdin();
    let config = rustyline::Config::builder()
        .completion_type(rustyline::CompletionType::List)
        .auto_add_history(true)
        .build();
    let mut editor: rustyline::Editor<Helper, rustyline::history::DefaultHistory> =
        match rustyline::Editor::with_config(config) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("qmp-shell: cannot use the terminal: {e}");
                return ExitCode::FAILURE;
            }
        };
    editor.set_helper(Some(Helper {
        catalog: shell.catalog.clone(),
    }));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    match (events, editor.create_external_printer()) {
        (None, _) => {}
        (Some(events), Ok(mut printer)) => {
            std::thread::spawn(move || {
                event_loop(events, pretty, |text| {
                    let _ = printer.print(format!("{text}\n"));
                });
                server_gone(saved.as_ref())
            });
        }
        (Some(events), Err(_)) => {
            std::thread::spawn(move || {
                event_loop(events, pretty, |text| println!("{text}"));
                server_gone(saved.as_ref())
            });
        }
    }
    println!("{greeting}");
    let code = loop {
        match editor.readline(shell.prompt()) {
            Ok(line) => match shell.line(&line) {
                Ok(text) if text.is_empty() => {}
                Ok(text) => println!("{text}"),
                Err(e) => {
                    eprintln!("{e}");
                    break ExitCode::FAILURE;
                }
            },
            Err(ReadlineError::Interrupted) => {
                // Ctrl-C drops the line (and a transaction being typed).
                shell.transaction = None;
            }
            Err(ReadlineError::Eof) => break ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("qmp-shell: {e}");
                break ExitCode::FAILURE;
            }
        }
    };
    if let Some(h) = &history {
        if let Some(dir) = h.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(h);
    }
    code
}
