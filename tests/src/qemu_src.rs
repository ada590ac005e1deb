//! QEMU's sources, from Debian's source package `qemu`, cached under
//! `target/qemu-src/VERSION/`.
//!
//! The orig tarball is fetched with `apt-get source --download-only
//! --tar-only`, using a private apt state folder and a `deb-src` list
//! built from this machine's own Debian sources (its archive addresses
//! and keyring; nothing is written to the system's configuration).  The
//! tarball's sha256 is checked against the pinned value before anything
//! is extracted.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// A pinned QEMU source release.
#[derive(Clone, Copy, Debug)]
pub struct Release {
    /// The short version used on the command line (`10.0.2`).
    pub version: &'static str,
    /// Debian's source package version.
    pub debian_version: &'static str,
    pub tarball: &'static str,
    pub sha256: &'static str,
    /// The folder at the top of the tarball.
    pub top: &'static str,
}

pub const RELEASES: [Release; 2] = [
    Release {
        version: "10.0.2",
        debian_version: "1:10.0.2+ds-2+deb13u1~bpo12+1",
        tarball: "qemu_10.0.2+ds.orig.tar.xz",
        sha256: "0901da33844a331bf8b3602b9c1fbd178e60b737c8e3ade678255bd090c9b9f1",
        top: "qemu-10.0.2",
    },
    Release {
        version: "7.2",
        debian_version: "1:7.2+dfsg-7+deb12u18",
        tarball: "qemu_7.2+dfsg.orig.tar.xz",
        sha256: "91aca71520040edc40b8d437aa3004dae614f58e286cf653ee8996c07af2962f",
        top: "qemu-7.2.0",
    },
];

/// The parts of the tree the project uses.
const MEMBERS: [&str; 9] = [
    "qapi",
    "qga",
    "storage-daemon",
    "tests/qapi-schema",
    "scripts/qapi",
    "docs/interop",
    "docs/devel/qapi-code-gen.rst",
    "COPYING",
    "COPYING.LIB",
];

pub fn release(version: &str) -> Result<Release, String> {
    RELEASES
        .iter()
        .copied()
        .find(|r| r.version == version)
        .ok_or_else(|| {
            let known: Vec<&str> = RELEASES.iter().map(|r| r.version).collect();
            format!(
                "unknown QEMU version '{version}' (known: {})",
                known.join(", ")
            )
        })
}

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the workspace")
        .to_path_buf()
}

fn cache_root() -> PathBuf {
    workspace_root().join("target").join("qemu-src")
}

static LOCK: Mutex<()> = Mutex::new(());

/// The extracted source tree of `version`, fetching and extracting it on
/// first use.  `QAPI_QEMU_TARBALL_<version with _>` may name a tarball
/// already on disk (it is still checked against the pinned sha256).
pub fn ensure(version: &str) -> Result<PathBuf, String> {
    let rel = release(version)?;
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = cache_root().join(rel.version);
    let tree = dir.join(rel.top);
    let stamp = dir.join("extracted.ok");
    if stamp.exists() && tree.is_dir() {
        return Ok(tree);
    }
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let env_name = format!("QAPI_QEMU_TARBALL_{}", rel.version.replace('.', "_"));
    let tarball = match std::env::var_os(&env_name) {
        Some(p) => PathBuf::from(p),
        None => {
            let t = dir.join(rel.tarball);
            if !(t.exists() && sha256(&t)? == rel.sha256) {
                download(&rel, &dir)?;
            }
            t
        }
    };
    let sum = sha256(&tarball)?;
    if sum != rel.sha256 {
        return Err(format!(
            "{}: sha256 is {sum}, expected {} for QEMU {}",
            tarball.display(),
            rel.sha256,
            rel.version
        ));
    }
    extract(&rel, &tarball, &dir)?;
    fs::write(&stamp, rel.sha256).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(tree)
}

/// Run a command; its stdout, or an error with its output.
pub(crate) fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{:?} failed ({}):\n{}{}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A file's sha256, in hex.
pub fn sha256(path: &Path) -> Result<String, String> {
    let out = run(Command::new("sha256sum").arg(path))?;
    Ok(out.split_whitespace().next().unwrap_or("").to_string())
}

fn extract(rel: &Release, tarball: &Path, dir: &Path) -> Result<(), String> {
    let tmp = dir.join("extract.tmp");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let mut cmd = Command::new("tar");
    cmd.arg("-xJf").arg(tarball).arg("-C").arg(&tmp);
    // Members that are missing in a release are not an error.
    cmd.arg("--ignore-failed-read").arg("--wildcards");
    for m in MEMBERS {
        cmd.arg(format!("{}/{m}", rel.top));
    }
    let out = cmd.output().map_err(|e| format!("cannot run tar: {e}"))?;
    if !tmp.join(rel.top).join("qapi").is_dir() {
        return Err(format!(
            "tar did not extract {}/qapi from {}: {}",
            rel.top,
            tarball.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let dest = dir.join(rel.top);
    let _ = fs::remove_dir_all(&dest);
    fs::rename(tmp.join(rel.top), &dest)
        .map_err(|e| format!("cannot move the tree into place: {e}"))?;
    let _ = fs::remove_dir_all(&tmp);
    Ok(())
}

/// This machine's Debian archive: its address, keyring and codename,
/// read from the system's own apt sources.
fn system_archive() -> Result<(String, String, String), String> {
    let os = fs::read_to_string("/etc/os-release").unwrap_or_default();
    let codename = os
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|s| s.trim_matches('"').to_string())
        .ok_or("cannot tell the Debian codename from /etc/os-release")?;
    let mut texts = Vec::new();
    if let Ok(entries) = fs::read_dir("/etc/apt/sources.list.d") {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "sources") {
                texts.push(fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    // deb822 stanzas: the one whose suites include the bare codename.
    for text in &texts {
        for stanza in text.split("\n\n") {
            let field = |name: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
            };
            let suites = field("Suites:").unwrap_or_default();
            if suites.split_whitespace().any(|s| s == codename) {
                if let Some(uri) = field("URIs:") {
                    let uri = uri.split_whitespace().next().unwrap_or("").to_string();
                    let keyring = field("Signed-By:")
                        .unwrap_or_else(|| "/usr/share/keyrings/debian-archive-keyring.gpg".into());
                    return Ok((uri, keyring, codename));
                }
            }
        }
    }
    // One-line format.
    let list = fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    for line in list.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() >= 3 && parts[0] == "deb" && parts[2] == codename {
            return Ok((
                parts[1].to_string(),
                "/usr/share/keyrings/debian-archive-keyring.gpg".into(),
                codename,
            ));
        }
    }
    Err("no Debian archive for this machine's release in /etc/apt".into())
}

/// A private apt state under `apt` (its own source list, package lists
/// and cache; the system's dpkg status is only read) with `types` entries
/// for this machine's archive in `suites` (`{c}` is the codename).  The
/// system's apt configuration is never written.  Returns a function that
/// makes an `apt-get` command using that state.
pub(crate) fn private_apt(
    apt: &Path,
    types: &str,
    suites: &str,
) -> Result<impl Fn() -> Command, String> {
    let (uri, keyring, codename) = system_archive()?;
    for sub in [
        "lists/partial",
        "cache/archives/partial",
        "etc/sources.list.d",
        "etc/preferences.d",
        "etc/apt.conf.d",
    ] {
        fs::create_dir_all(apt.join(sub)).map_err(|e| format!("cannot create apt state: {e}"))?;
    }
    let suites = suites.replace("{c}", &codename);
    fs::write(
        apt.join("etc/sources.list.d/private.sources"),
        format!("Types: {types}\nURIs: {uri}\nSuites: {suites}\nComponents: main\nSigned-By: {keyring}\n"),
    )
    .map_err(|e| format!("cannot write the apt source list: {e}"))?;
    let _ = fs::remove_file(apt.join("etc/sources.list.d/qemu-src.sources"));
    fs::write(apt.join("etc/sources.list"), "").map_err(|e| e.to_string())?;
    let apt = apt.to_path_buf();
    Ok(move || {
        let mut cmd = Command::new("apt-get");
        cmd.arg("-q")
            .arg("-o")
            .arg(format!("Dir::Etc={}", apt.join("etc").display()))
            .arg("-o")
            .arg(format!("Dir::State={}", apt.display()))
            .arg("-o")
            .arg(format!("Dir::State::Lists={}", apt.join("lists").display()))
            .arg("-o")
            .arg("Dir::State::status=/var/lib/dpkg/status")
            .arg("-o")
            .arg(format!("Dir::Cache={}", apt.join("cache").display()))
            .arg("-o")
            .arg("Debug::NoLocking=1")
            .arg("-o")
            .arg("APT::Sandbox::User=root");
        cmd
    })
}

fn download(rel: &Release, dir: &Path) -> Result<(), String> {
    let apt = private_apt(
        &cache_root().join("apt"),
        "deb-src",
        "{c} {c}-backports {c}-updates",
    )?;
    run(apt().arg("update"))?;
    run(apt()
        .current_dir(dir)
        .arg("source")
        .arg("--download-only")
        .arg("--tar-only")
        .arg(format!("qemu={}", rel.debian_version)))?;
    Ok(())
}
