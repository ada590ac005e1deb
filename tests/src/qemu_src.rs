//! QEMU's sources, cached under `target/qemu-src/VERSION/`: extracts of
//! QEMU's own source history kept in the folder `shared/qemu/` beside
//! the workspace ([`EXTRACTS`]), or Debian's source package `qemu`
//! ([`RELEASES`]).
//!
//! An extract is read from `shared/qemu/qemu-VERSION-qapi.tar.xz` in the
//! workspace's parent folder or the nearest ancestor that has one
//! (`QAPI_QEMU_SHARED` may name the folder instead); its sha256 is
//! checked against the pinned value, and nothing is downloaded.
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

/// An extract of QEMU's source history at a release's commit, limited to
/// the parts the project reads (`shared/qemu/README.md` beside the
/// workspace describes them).
#[derive(Clone, Copy, Debug)]
pub struct Extract {
    pub version: &'static str,
    /// The commit of QEMU's repository that set VERSION to the release.
    pub commit: &'static str,
    pub sha256: &'static str,
}

impl Extract {
    /// The tarball's file name (its top folder is `qemu-VERSION/`).
    pub fn file_name(&self) -> String {
        format!("qemu-{}-qapi.tar.xz", self.version)
    }
}

pub const EXTRACTS: [Extract; 6] = [
    Extract {
        version: "10.2.0",
        commit: "698104725efad4b29079d857dfdebbd804e34c99",
        sha256: "d876a669c40770c152e7b87840cb23dcf8981a91121600b3527b0f6c372ac03b",
    },
    Extract {
        version: "10.1.0",
        commit: "f8b2f64e2336a28bf0d50b6ef8a7d8c013e9bcf3",
        sha256: "64c48041461ec15a003b1f2aa18943427fc38fa472a6eec48df0caba8c4d7ba3",
    },
    Extract {
        version: "9.2.0",
        commit: "ae35f033b874c627d81d51070187fbf55f0bf1a7",
        sha256: "d0b5a339b3ef24d6814fab91bd53bb8486e75eb19acb59cc094204d8f5744272",
    },
    Extract {
        version: "9.1.0",
        commit: "fd1952d814da738ed107e05583b3e02ac11e88ff",
        sha256: "9d1d6371e6fd4641d877a8823549d1c2c6b8a18c4d313700e6ab3ff63415d8cc",
    },
    Extract {
        version: "8.2.0",
        commit: "1600b9f46b1bd08b00fe86c46ef6dbb48cbe10d6",
        sha256: "89e9a8a483a078c0b51e9a8775e6c49f933253cbe380816a985b8de00a0ad073",
    },
    Extract {
        version: "6.2.0",
        commit: "44f28df24767cf9dca1ddc9b23157737c4cbb645",
        sha256: "b6c81585b173c6b41e52bba85041feae88e4d5c11631c550ac64f4e1dc283672",
    },
];

pub fn shared_extract(version: &str) -> Option<Extract> {
    EXTRACTS.iter().copied().find(|e| e.version == version)
}

/// The folder of QEMU extracts: `QAPI_QEMU_SHARED`, or `shared/qemu` in
/// the nearest ancestor of the workspace that has it.
pub fn shared_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("QAPI_QEMU_SHARED") {
        return Ok(PathBuf::from(dir));
    }
    workspace_root()
        .ancestors()
        .skip(1)
        .map(|d| d.join("shared").join("qemu"))
        .find(|d| d.is_dir())
        .ok_or_else(|| {
            format!(
                "no shared/qemu folder beside {} or above it (QAPI_QEMU_SHARED may name it)",
                workspace_root().display()
            )
        })
}

/// The extract's tarball in the shared folder, its sha256 checked.
pub fn extract_tarball(ex: &Extract) -> Result<PathBuf, String> {
    let path = shared_dir()?.join(ex.file_name());
    if !path.is_file() {
        return Err(format!("{}: no such file", path.display()));
    }
    check_sha256(&path, ex.sha256, ex.version)?;
    Ok(path)
}

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
            let known: Vec<&str> = RELEASES
                .iter()
                .map(|r| r.version)
                .chain(EXTRACTS.iter().map(|e| e.version))
                .collect();
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
    if let Some(ex) = shared_extract(version) {
        return ensure_extract(&ex);
    }
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
    check_sha256(&tarball, rel.sha256, rel.version)?;
    extract(&rel, &tarball, &dir)?;
    fs::write(&stamp, rel.sha256).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(tree)
}

/// An extract from the shared folder, unpacked whole (it holds only what
/// the project reads) on first use.
fn ensure_extract(ex: &Extract) -> Result<PathBuf, String> {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = cache_root().join(ex.version);
    let top = format!("qemu-{}", ex.version);
    let tree = dir.join(&top);
    let stamp = dir.join("extracted.ok");
    if tree.is_dir() && fs::read_to_string(&stamp).is_ok_and(|s| s == ex.sha256) {
        return Ok(tree);
    }
    let tarball = extract_tarball(ex)?;
    let tmp = dir.join("extract.tmp");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    run(Command::new("tar")
        .arg("-xJf")
        .arg(&tarball)
        .arg("-C")
        .arg(&tmp))?;
    if !tmp.join(&top).join("qapi").is_dir() {
        return Err(format!("{}: no {top}/qapi inside", tarball.display()));
    }
    let _ = fs::remove_dir_all(&tree);
    fs::rename(tmp.join(&top), &tree)
        .map_err(|e| format!("cannot move the tree into place: {e}"))?;
    let _ = fs::remove_dir_all(&tmp);
    fs::write(&stamp, ex.sha256).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
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

/// An error unless `path`'s sha256 is the one pinned for QEMU `version`.
fn check_sha256(path: &Path, want: &str, version: &str) -> Result<(), String> {
    let sum = sha256(path)?;
    if sum != want {
        return Err(format!(
            "{}: sha256 is {sum}, expected {want} for QEMU {version}",
            path.display()
        ));
    }
    Ok(())
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
