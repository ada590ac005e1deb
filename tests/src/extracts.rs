//! QEMU release extracts: `git archive` of QEMU's own history at a
//! release, limited to the parts this project reads (`qapi/`, `qga/`,
//! `storage-daemon/`, `tests/qapi-schema/`, `scripts/qapi/`), kept in the
//! shared folder beside the workspace (`shared/qemu/`, see its README),
//! checked against a pinned sha256 and unpacked under
//! `target/qemu-extracts/RELEASE/`.  No network.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::qemu_src::{sha256, workspace_root};

/// `(release, sha256 of qemu-RELEASE-qapi.tar.xz)`, from the shared
/// folder's README.
pub const EXTRACTS: [(&str, &str); 4] = [
    (
        "6.2.0",
        "b6c81585b173c6b41e52bba85041feae88e4d5c11631c550ac64f4e1dc283672",
    ),
    (
        "8.2.0",
        "89e9a8a483a078c0b51e9a8775e6c49f933253cbe380816a985b8de00a0ad073",
    ),
    (
        "9.2.0",
        "d0b5a339b3ef24d6814fab91bd53bb8486e75eb19acb59cc094204d8f5744272",
    ),
    (
        "10.2.0",
        "d876a669c40770c152e7b87840cb23dcf8981a91121600b3527b0f6c372ac03b",
    ),
];

static LOCK: Mutex<()> = Mutex::new(());

/// Where `qemu-RELEASE-qapi.tar.xz` is: `QAPI_QEMU_EXTRACTS` (a folder)
/// if set, else the first `shared/qemu/` found in the workspace's
/// parent folders.
fn tarball(release: &str) -> Result<PathBuf, String> {
    let file = format!("qemu-{release}-qapi.tar.xz");
    if let Some(dir) = std::env::var_os("QAPI_QEMU_EXTRACTS") {
        return Ok(Path::new(&dir).join(file));
    }
    let root = workspace_root();
    root.ancestors()
        .skip(1)
        .map(|a| a.join("shared/qemu").join(&file))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "{file} not found in a shared/qemu/ folder above {} (or set QAPI_QEMU_EXTRACTS)",
                root.display()
            )
        })
}

/// The unpacked tree (`…/qemu-RELEASE/`) of a release extract, unpacking
/// it on first use.
pub fn ensure(release: &str) -> Result<PathBuf, String> {
    let &(_, pinned) = EXTRACTS
        .iter()
        .find(|(r, _)| *r == release)
        .ok_or_else(|| {
            let known: Vec<&str> = EXTRACTS.iter().map(|(r, _)| *r).collect();
            format!("no QEMU extract '{release}' (known: {})", known.join(", "))
        })?;
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = workspace_root().join("target/qemu-extracts").join(release);
    let tree = dir.join(format!("qemu-{release}"));
    let stamp = dir.join("extracted.ok");
    if fs::read_to_string(&stamp).is_ok_and(|s| s == pinned) && tree.is_dir() {
        return Ok(tree);
    }
    let tarball = tarball(release)?;
    let sum = sha256(&tarball)?;
    if sum != pinned {
        return Err(format!(
            "{}: sha256 is {sum}, expected {pinned}",
            tarball.display()
        ));
    }
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let out = Command::new("tar")
        .arg("-xJf")
        .arg(&tarball)
        .arg("-C")
        .arg(&dir)
        .output()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if !out.status.success() || !tree.join("qapi").is_dir() {
        return Err(format!(
            "unpacking {} failed: {}",
            tarball.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    fs::write(&stamp, pinned).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(tree)
}
