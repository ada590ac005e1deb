//! QEMU 7.2's `qemu-system-x86_64` and `qemu-ga`, from Debian's binary
//! packages, unpacked under `target/qemu-7.2/root` instead of installed.
//!
//! Why not `apt-get install qemu-system-x86`: on these machines
//! `/usr/bin/qemu-storage-daemon` is QEMU 10.0.2 from bookworm-backports'
//! `qemu-utils`, and bookworm's `qemu-system-common` 7.2 conflicts with
//! it, so installing the emulator replaces the 10.0.2 daemon with 7.2's.
//! Unpacking the `.deb`s (`apt-get download` + `dpkg-deb -x`) leaves the
//! system's QEMU alone; only the shared libraries the binaries link
//! against are installed system-wide (never removing anything), and only
//! when `ldd` finds one missing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::qemu_src::{run, workspace_root};

/// The packages unpacked: the emulator, its firmware, the agent.
const PACKAGES: [&str; 6] = [
    "qemu-system-x86",
    "qemu-system-common",
    "qemu-system-data",
    "seabios",
    "ipxe-qemu",
    "qemu-guest-agent",
];

/// Where the unpacked QEMU 7.2 lives, with the paths tests need.
#[derive(Clone, Debug)]
pub struct Qemu72 {
    pub root: PathBuf,
}

impl Qemu72 {
    /// `qemu-system-x86_64`.
    pub fn system_x86_64(&self) -> PathBuf {
        self.root.join("usr/bin/qemu-system-x86_64")
    }

    /// `qemu-ga`.
    pub fn guest_agent(&self) -> PathBuf {
        self.root.join("usr/sbin/qemu-ga")
    }

    /// Start `qemu-system-x86_64 -machine MACHINE -nodefaults -display
    /// none` with QMP on the process's socket.
    pub fn spawn_system(&self, machine: &str) -> crate::live::Process {
        let mut args = self.firmware_args();
        for a in [
            "-machine",
            machine,
            "-nodefaults",
            "-display",
            "none",
            "-qmp",
            "unix:{sock},server=on,wait=off",
        ] {
            args.push(a.into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::live::spawn(self.system_x86_64(), &args)
    }

    /// The `-L` arguments that point the emulator at its firmware.
    pub fn firmware_args(&self) -> Vec<String> {
        vec![
            "-L".into(),
            self.root.join("usr/share/qemu").display().to_string(),
            "-L".into(),
            self.root.join("usr/share/seabios").display().to_string(),
        ]
    }
}

static LOCK: Mutex<()> = Mutex::new(());

/// QEMU 7.2's binaries, downloading and unpacking them on first use.
pub fn ensure_qemu72() -> Result<Qemu72, String> {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = workspace_root().join("target").join("qemu-7.2");
    let root = dir.join("root");
    let q = Qemu72 { root: root.clone() };
    let stamp = dir.join("unpacked.ok");
    if !(stamp.exists() && q.system_x86_64().exists() && q.guest_agent().exists()) {
        unpack(&dir, &root)?;
        fs::write(&stamp, "").map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    }
    let missing = missing_libraries(&q)?;
    if !missing.is_empty() {
        install_libraries(&dir, &missing)?;
        let still = missing_libraries(&q)?;
        if !still.is_empty() {
            return Err(format!(
                "QEMU 7.2's binaries still miss these libraries after installing \
                 their packages' dependencies: {}",
                still.join(", ")
            ));
        }
    }
    check_version(&q)?;
    Ok(q)
}

fn debs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    v.sort();
    v
}

fn unpack(dir: &Path, root: &Path) -> Result<(), String> {
    let debs_dir = dir.join("debs");
    let _ = fs::remove_dir_all(&debs_dir);
    fs::create_dir_all(&debs_dir)
        .map_err(|e| format!("cannot create {}: {e}", debs_dir.display()))?;
    let download = |update: bool| -> Result<String, String> {
        if update {
            run(Command::new("apt-get").args(["-q", "update"]))?;
        }
        run(Command::new("apt-get")
            .current_dir(&debs_dir)
            .args(["-q", "-o", "APT::Sandbox::User=root", "download"])
            .args(PACKAGES))
    };
    // The machine's package lists may be missing or stale on a fresh
    // machine: refresh them once if the first try fails.
    download(false).or_else(|_| download(true))?;
    let _ = fs::remove_dir_all(root);
    fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    for deb in debs(&debs_dir) {
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(root))?;
    }
    Ok(())
}

fn missing_libraries(q: &Qemu72) -> Result<Vec<String>, String> {
    let mut missing = Vec::new();
    for bin in [q.system_x86_64(), q.guest_agent()] {
        let out = run(Command::new("ldd").arg(&bin))?;
        for line in out.lines() {
            if line.contains("not found") {
                missing.push(line.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    }
    missing.sort();
    missing.dedup();
    Ok(missing)
}

/// Install the library dependencies of the unpacked packages: every
/// `Depends` entry that is not one of the packages unpacked.
fn install_libraries(dir: &Path, missing: &[String]) -> Result<(), String> {
    let mut wanted = Vec::new();
    for deb in debs(&dir.join("debs")) {
        let depends = run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg("Depends"))?;
        for dep in depends.split(',') {
            // "libfoo1 (>= 1.2) | libbar" → "libfoo1"
            let name = dep.split(['(', '|']).next().unwrap_or("").trim();
            if !name.is_empty()
                && !PACKAGES.contains(&name)
                && !wanted.iter().any(|w: &String| w == name)
            {
                wanted.push(name.to_string());
            }
        }
    }
    eprintln!(
        "QEMU 7.2's binaries miss {}; installing their library packages",
        missing.join(", ")
    );
    let install = || {
        run(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args([
                "-q",
                "-y",
                "--no-install-recommends",
                "--no-remove",
                "install",
            ])
            .args(&wanted))
    };
    install()
        .or_else(|_| {
            run(Command::new("apt-get").args(["-q", "update"]))?;
            install()
        })
        .map(drop)
}

fn check_version(q: &Qemu72) -> Result<(), String> {
    let out = run(Command::new(q.system_x86_64()).arg("--version"))?;
    if !out.starts_with("QEMU emulator version 7.2") {
        return Err(format!(
            "{} is not QEMU 7.2: {}",
            q.system_x86_64().display(),
            out.lines().next().unwrap_or("")
        ));
    }
    Ok(())
}
