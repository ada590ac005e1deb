//! The first thing to run: `cargo run --example demo`.
//!
//! Starts this machine's `qemu-storage-daemon` on a private socket,
//! creates a qcow2 image with two `blockdev-create` jobs (printing each
//! job's events as QEMU sends them), adds it as a block node, lists the
//! block nodes, and stops the daemon, all with typed commands, replies
//! and events.  Where no `qemu-storage-daemon` is installed, it prints
//! the Rust that `qapi-codegen` generates from the project's demo schema
//! instead.  `QEMU_STORAGE_DAEMON=/path/to/qemu-storage-daemon` picks
//! another daemon.

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qapi_types::blocking::{Qmp, Subscription};
use qapi_types::qmp::commands::{
    BlockdevAdd, BlockdevCreate, JobDismiss, QueryNamedBlockNodes, Quit,
};
use qapi_types::qmp::events::Event;
use qapi_types::qmp::{
    BlockdevCreateOptionsFile, BlockdevCreateOptionsQcow2, BlockdevOptions, BlockdevOptionsBranch,
    BlockdevOptionsFile, BlockdevOptionsQcow2, JobStatus,
};
use qapi_types::EventItem;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn main() {
    let daemon = find_daemon();
    if let Err(e) = run(&mut std::io::stdout(), daemon.as_deref()) {
        eprintln!("demo: {e}");
        std::process::exit(1);
    }
}

/// `$QEMU_STORAGE_DAEMON`, or `qemu-storage-daemon` on the `PATH`.
fn find_daemon() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("QEMU_STORAGE_DAEMON") {
        return Some(p.into());
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("qemu-storage-daemon"))
        .find(|p| p.is_file())
}

/// The demo on `daemon`, or without QEMU when there is none.
pub fn run(out: &mut dyn Write, daemon: Option<&Path>) -> Result<()> {
    match daemon {
        Some(d) => with_qemu(out, d),
        None => without_qemu(out),
    }
}

/// The daemon and its folder, stopped and removed however the demo ends.
struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn with_qemu(out: &mut dyn Write, program: &Path) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("qapi-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sock = dir.join("qmp.sock");
    let child = Command::new(program)
        .arg("--chardev")
        .arg(format!(
            "socket,path={},server=on,wait=off,id=m",
            sock.display()
        ))
        .args(["--monitor", "chardev=m"])
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let mut daemon = Daemon { child, dir };
    writeln!(out, "$ {} (pid {})", program.display(), daemon.child.id())?;

    // Connecting waits for the socket, reads the greeting, negotiates.
    let qmp = Qmp::connect_unix(&sock)?;
    writeln!(out, "connected to {}", qmp.greeting())?;
    let jobs = qmp.subscribe_filter(|e| e.name == "JOB_STATUS_CHANGE");

    // An image file, then a qcow2 format inside it: two jobs.
    let image = daemon.dir.join("disk.qcow2");
    let filename = image.display().to_string();
    let file = BlockdevCreateOptionsFile::new(filename.as_str(), 0u64);
    run_job(out, &qmp, &jobs, BlockdevCreate::new("create-file", file))?;
    let file0 = BlockdevOptionsBranch::File(BlockdevOptionsFile::new(filename.as_str()));
    qmp.execute(&BlockdevAdd(BlockdevOptions::new(file0).node_name("file0")))?;
    writeln!(out, "blockdev-add: node file0 on {}", image.display())?;
    let format = BlockdevCreateOptionsQcow2::new("file0", 64u64 << 20);
    run_job(out, &qmp, &jobs, BlockdevCreate::new("format", format))?;
    let disk0 = BlockdevOptions::from(BlockdevOptionsQcow2::new("file0")).node_name("disk0");
    qmp.execute(&BlockdevAdd(disk0))?;
    writeln!(out, "blockdev-add: node disk0 (qcow2 on file0)")?;

    // A typed reply: Vec<qmp::BlockDeviceInfo>.
    let nodes = qmp.execute(&QueryNamedBlockNodes::default().flat(true))?;
    writeln!(out, "query-named-block-nodes:")?;
    for n in &nodes {
        writeln!(
            out,
            "  {:<6} {:<6} {:>9} bytes  {}",
            n.node_name, n.drv, n.image.virtual_size, n.image.format
        )?;
    }

    // quit ends the daemon; the reply comes first.
    qmp.execute(&Quit {})?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemon.child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            return Err("the daemon did not stop after quit".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    writeln!(out, "quit: the daemon stopped")?;
    Ok(())
}

/// Start a job, print its status changes until it concludes, dismiss it.
fn run_job(
    out: &mut dyn Write,
    qmp: &Qmp,
    jobs: &Subscription,
    create: BlockdevCreate,
) -> Result<()> {
    let id = create.job_id.clone();
    qmp.execute(&create)?;
    write!(out, "blockdev-create: job {id}:")?;
    loop {
        let EventItem::Event(raw) = jobs.recv_timeout(Duration::from_secs(30))? else {
            continue;
        };
        if let Ok(Event::JobStatusChange(e)) = raw.event::<Event>() {
            if e.id != id {
                continue;
            }
            write!(out, " {}", e.status.as_str())?;
            if e.status == JobStatus::Concluded {
                break;
            }
        }
    }
    qmp.execute(&JobDismiss::new(id.as_str()))?;
    writeln!(out, "; dismissed")?;
    Ok(())
}

/// No QEMU here: show the generator's side of the job instead.
fn without_qemu(out: &mut dyn Write) -> Result<()> {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/examples/demo.json");
    writeln!(
        out,
        "No qemu-storage-daemon found (set QEMU_STORAGE_DAEMON or install QEMU); \
         here is the Rust qapi-codegen generates from {}:\n",
        schema.display()
    )?;
    let generated = qapi_codegen::Config::new().generate_string(&schema)?;
    out.write_all(generated.text.as_bytes())?;
    Ok(())
}
