//! QEMU 7.2's `qemu-system-x86_64` and `qemu-ga` (bookworm), and QEMU
//! 10.0.2's `qemu-system-x86_64` (bookworm-backports), from Debian's
//! binary packages, unpacked under `target/qemu-7.2/root` and
//! `target/qemu-10.0/root` instead of installed.
//!
//! 7.2 is downloaded with the machine's own apt lists; 10.0.2 with a
//! private apt state (`target/qemu-10.0/apt`: the machine's archive with
//! its backports suite added, see [`crate::qemu_src`]), so the system's
//! apt configuration is never touched.
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

use crate::qemu_src::{private_apt, run, workspace_root};

/// The packages unpacked for 7.2: the emulator, its firmware, the agent.
const PACKAGES_72: [&str; 6] = [
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

/// Where a release's packages come from and go.
struct Unpacked {
    /// `target/qemu-VERSION`.
    dir: PathBuf,
    /// The packages to download (with `/suite` where needed).
    packages: &'static [&'static str],
    /// The binaries that must exist and find their libraries.
    binaries: Vec<PathBuf>,
    /// Download with a private apt state that adds the backports suite.
    backports: bool,
    /// For messages: `QEMU 7.2`.
    what: &'static str,
}

impl Unpacked {
    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// Download and unpack on first use, then install missing libraries.
    fn ensure(&self) -> Result<(), String> {
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let stamp = self.dir.join("unpacked.ok");
        if !(stamp.exists() && self.binaries.iter().all(|b| b.exists())) {
            self.unpack()?;
            fs::write(&stamp, "").map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
        }
        let missing = self.missing_libraries()?;
        if !missing.is_empty() {
            self.install_libraries(&missing)?;
            let still = self.missing_libraries()?;
            if !still.is_empty() {
                return Err(format!(
                    "{}'s binaries still miss these libraries after installing \
                     their packages' dependencies: {}",
                    self.what,
                    still.join(", ")
                ));
            }
        }
        Ok(())
    }

    fn unpack(&self) -> Result<(), String> {
        let debs_dir = self.dir.join("debs");
        let _ = fs::remove_dir_all(&debs_dir);
        fs::create_dir_all(&debs_dir)
            .map_err(|e| format!("cannot create {}: {e}", debs_dir.display()))?;
        if self.backports {
            let apt = private_apt(&self.dir.join("apt"), "deb", "{c} {c}-backports")?;
            run(apt().arg("update"))?;
            run(apt()
                .current_dir(&debs_dir)
                .arg("download")
                .args(self.packages))?;
        } else {
            let download = |update: bool| -> Result<String, String> {
                if update {
                    run(Command::new("apt-get").args(["-q", "update"]))?;
                }
                run(Command::new("apt-get")
                    .current_dir(&debs_dir)
                    .args(["-q", "-o", "APT::Sandbox::User=root", "download"])
                    .args(self.packages))
            };
            // The machine's package lists may be missing or stale on a
            // fresh machine: refresh them once if the first try fails.
            download(false).or_else(|_| download(true))?;
        }
        let root = self.root();
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        for deb in debs(&debs_dir) {
            run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
        }
        Ok(())
    }

    fn missing_libraries(&self) -> Result<Vec<String>, String> {
        let mut missing = Vec::new();
        for bin in &self.binaries {
            let out = run(Command::new("ldd").arg(bin))?;
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
    /// `Depends` entry that is not one of the packages unpacked, from the
    /// machine's own archive (bookworm's libraries serve its backports).
    fn install_libraries(&self, missing: &[String]) -> Result<(), String> {
        let unpacked: Vec<&str> = self
            .packages
            .iter()
            .map(|p| p.split('/').next().unwrap_or(p))
            .collect();
        let mut wanted = Vec::new();
        for deb in debs(&self.dir.join("debs")) {
            let depends = run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg("Depends"))?;
            for dep in depends.split(',') {
                // "libfoo1 (>= 1.2) | libbar" → "libfoo1"
                let name = dep.split(['(', '|']).next().unwrap_or("").trim();
                if !name.is_empty()
                    && !unpacked.contains(&name)
                    && !name.starts_with("ipxe")
                    && !wanted.iter().any(|w: &String| w == name)
                {
                    wanted.push(name.to_string());
                }
            }
        }
        eprintln!(
            "{}'s binaries miss {}; installing their library packages",
            self.what,
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
}

/// QEMU 7.2's binaries, downloading and unpacking them on first use.
pub fn ensure_qemu72() -> Result<Qemu72, String> {
    let dir = workspace_root().join("target").join("qemu-7.2");
    let q = Qemu72 {
        root: dir.join("root"),
    };
    Unpacked {
        dir,
        packages: &PACKAGES_72,
        binaries: vec![q.system_x86_64(), q.guest_agent()],
        backports: false,
        what: "QEMU 7.2",
    }
    .ensure()?;
    check_version(&q.system_x86_64(), "7.2")?;
    Ok(q)
}

/// The packages unpacked for 10.0.2, from bookworm-backports: the
/// emulator and its firmware.  There is no iPXE there (the emulator is
/// started with `-global virtio-net-pci.romfile=`).
const PACKAGES_10: [&str; 4] = [
    "qemu-system-x86/bookworm-backports",
    "qemu-system-common/bookworm-backports",
    "qemu-system-data/bookworm-backports",
    "seabios/bookworm-backports",
];

/// Where the unpacked QEMU 10.0.2 system emulator lives.
#[derive(Clone, Debug)]
pub struct Qemu10 {
    pub root: PathBuf,
}

impl Qemu10 {
    /// `qemu-system-x86_64`.
    pub fn system_x86_64(&self) -> PathBuf {
        self.root.join("usr/bin/qemu-system-x86_64")
    }

    /// The `-L` arguments that point the emulator at its firmware
    /// (SeaBIOS's `bios-256k.bin`, and qemu-system-data's option ROMs).
    pub fn firmware_args(&self) -> Vec<String> {
        vec![
            "-L".into(),
            self.root.join("usr/share/seabios").display().to_string(),
            "-L".into(),
            self.root.join("usr/share/qemu").display().to_string(),
        ]
    }
}

/// QEMU 10.0.2's `qemu-system-x86_64`, downloading and unpacking it on
/// first use (never installed: installing would replace the machine's
/// other QEMU packages).
pub fn ensure_qemu10() -> Result<Qemu10, String> {
    let dir = workspace_root().join("target").join("qemu-10.0");
    let q = Qemu10 {
        root: dir.join("root"),
    };
    Unpacked {
        dir,
        packages: &PACKAGES_10,
        binaries: vec![q.system_x86_64()],
        backports: true,
        what: "QEMU 10.0.2",
    }
    .ensure()?;
    check_version(&q.system_x86_64(), "10.0.2")?;
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

fn check_version(bin: &Path, version: &str) -> Result<(), String> {
    let out = run(Command::new(bin).arg("--version"))?;
    if !out.starts_with(&format!("QEMU emulator version {version}")) {
        return Err(format!(
            "{} is not QEMU {version}: {}",
            bin.display(),
            out.lines().next().unwrap_or("")
        ));
    }
    Ok(())
}
