//! The older QEMU releases whose replies and events the checked-in
//! bindings also decode (see `qapi_codegen::Config::older_schema`), and
//! their vendored QMP and guest agent schemas in `schema/older/RELEASE/`.
//!
//! Each release is vendored once, by `cargo xtask regen` when its folder
//! has no `MANIFEST` (`rm -r schema/older/RELEASE` and regen to renew),
//! so regenerating needs none of the sources below.

use std::fs;
use std::path::{Path, PathBuf};

/// Where an older release's schema comes from.
enum Source {
    /// Debian's source package, fetched by `qapi_tests::qemu_src`.
    Debian(&'static str),
    /// An extract of QEMU's own history (`git archive` of the release
    /// commit, limited to the schema's parts), found in a `shared/qemu`
    /// folder beside the workspace or one level further up.
    Extract {
        file: &'static str,
        commit: &'static str,
        sha256: &'static str,
    },
}

/// (folder under `schema/older/`, version, source), oldest first.
const RELEASES: [(&str, &str, Source); 12] = [
    (
        "6.2",
        "6.2.0",
        Source::Extract {
            file: "qemu-6.2.0-qapi.tar.xz",
            commit: "44f28df24767cf9dca1ddc9b23157737c4cbb645",
            sha256: "b6c81585b173c6b41e52bba85041feae88e4d5c11631c550ac64f4e1dc283672",
        },
    ),
    (
        "7.0",
        "7.0.0",
        Source::Extract {
            file: "qemu-7.0.0-qapi.tar.xz",
            commit: "823a3f11fb8f04c3c3cc0f95f968fef1bfc6534f",
            sha256: "42b411d586a9595806155aa44654c6a2c6a6d493a14d2ee73449b1b705e12b3a",
        },
    ),
    (
        "7.1",
        "7.1.0",
        Source::Extract {
            file: "qemu-7.1.0-qapi.tar.xz",
            commit: "621da7789083b80d6f1ff1c0fb499334007b4f51",
            sha256: "14e185f505123e859c9da5b52e8494b9277b0a90717bbcbc33e79924142de3fc",
        },
    ),
    ("7.2", "7.2", Source::Debian("7.2")),
    (
        "8.0",
        "8.0.0",
        Source::Extract {
            file: "qemu-8.0.0-qapi.tar.xz",
            commit: "c1eb2ddf0f8075faddc5f7c3d39feae3e8e9d6b4",
            sha256: "f5eddde5fc950067812feb0db7f870f358931adf323f59555fc241bf5adec889",
        },
    ),
    (
        "8.1",
        "8.1.0",
        Source::Extract {
            file: "qemu-8.1.0-qapi.tar.xz",
            commit: "7e5a8bb22368b3555644cb2debd3df24592f3a21",
            sha256: "686c469204ff671129e2a6a24f01506f022cbb93333b585a142c89df973bcc31",
        },
    ),
    (
        "8.2",
        "8.2.0",
        Source::Extract {
            file: "qemu-8.2.0-qapi.tar.xz",
            commit: "1600b9f46b1bd08b00fe86c46ef6dbb48cbe10d6",
            sha256: "89e9a8a483a078c0b51e9a8775e6c49f933253cbe380816a985b8de00a0ad073",
        },
    ),
    (
        "9.0",
        "9.0.0",
        Source::Extract {
            file: "qemu-9.0.0-qapi.tar.xz",
            commit: "c25df57ae8f9fe1c72eee2dab37d76d904ac382e",
            sha256: "0cbd3d9ca4be7f051d5a339518ea64611c52cb1e5c409ea898846533d5340d07",
        },
    ),
    (
        "9.1",
        "9.1.0",
        Source::Extract {
            file: "qemu-9.1.0-qapi.tar.xz",
            commit: "fd1952d814da738ed107e05583b3e02ac11e88ff",
            sha256: "9d1d6371e6fd4641d877a8823549d1c2c6b8a18c4d313700e6ab3ff63415d8cc",
        },
    ),
    (
        "9.2",
        "9.2.0",
        Source::Extract {
            file: "qemu-9.2.0-qapi.tar.xz",
            commit: "ae35f033b874c627d81d51070187fbf55f0bf1a7",
            sha256: "d0b5a339b3ef24d6814fab91bd53bb8486e75eb19acb59cc094204d8f5744272",
        },
    ),
    ("10.0", "10.0.2", Source::Debian("10.0.2")),
    (
        "10.1",
        "10.1.0",
        Source::Extract {
            file: "qemu-10.1.0-qapi.tar.xz",
            commit: "f8b2f64e2336a28bf0d50b6ef8a7d8c013e9bcf3",
            sha256: "64c48041461ec15a003b1f2aa18943427fc38fa472a6eec48df0caba8c4d7ba3",
        },
    ),
];

/// The releases' names, oldest first (`6.2`, …).
pub fn releases() -> impl Iterator<Item = &'static str> {
    RELEASES.iter().map(|(r, _, _)| *r)
}

pub fn dir(root: &Path, release: &str) -> PathBuf {
    root.join("schema/older").join(release)
}

/// The files vendored of a QEMU tree: its QMP and guest agent schemas.
fn files(tree: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = fs::read_dir(tree.join("qapi"))
        .map_err(|e| format!("{}: {e}", tree.join("qapi").display()))?
        .flatten()
        .map(|e| PathBuf::from("qapi").join(e.file_name()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files.push(PathBuf::from("qga/qapi-schema.json"));
    Ok(files)
}

/// Vendor every release whose folder has no `MANIFEST` yet.
pub fn vendor_missing(root: &Path) -> Result<(), String> {
    for (release, version, source) in &RELEASES {
        let dest = dir(root, release);
        if dest.join("MANIFEST").exists() {
            continue;
        }
        let (tree, origin) = match source {
            Source::Debian(v) => {
                let rel = qapi_tests::qemu_src::release(v)?;
                let tree = qapi_tests::qemu_src::ensure(rel.version)?;
                let origin = format!(
                    "source: Debian source package qemu, {}\nsource-sha256: {}\n",
                    rel.tarball, rel.sha256
                );
                (tree, origin)
            }
            Source::Extract {
                file,
                commit,
                sha256,
            } => {
                let tree = extract(root, file, sha256)?;
                let origin = format!(
                    "source: QEMU's history at commit {commit}, extract {file}\n\
                     source-sha256: {sha256}\n"
                );
                (tree, origin)
            }
        };
        vendor(&tree, &dest, version, &origin)?;
        eprintln!("xtask: vendored QEMU {version} in {}", dest.display());
    }
    Ok(())
}

/// Unpack a shared extract (checked against its sha256) under `target/`.
fn extract(root: &Path, file: &str, sha256: &str) -> Result<PathBuf, String> {
    let tarball = [root.join("../shared/qemu"), root.join("../../shared/qemu")]
        .into_iter()
        .map(|d| d.join(file))
        .find(|p| p.exists())
        .ok_or_else(|| format!("{file}: not found in a shared/qemu folder beside the workspace"))?;
    let sum = qapi_tests::qemu_src::sha256(&tarball)?;
    if sum != sha256 {
        return Err(format!(
            "{}: sha256 is {sum}, expected {sha256}",
            tarball.display()
        ));
    }
    let dest = root.join("target/qemu-extracts");
    fs::create_dir_all(&dest).map_err(|e| e.to_string())?;
    let st = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&tarball)
        .arg("-C")
        .arg(&dest)
        .status()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if !st.success() {
        return Err(format!("tar could not extract {}", tarball.display()));
    }
    Ok(dest.join(file.trim_end_matches("-qapi.tar.xz")))
}

/// Copy the schema files of `tree` into `dest` with a MANIFEST (release,
/// source, sha256s) and QEMU's licence.
fn vendor(tree: &Path, dest: &Path, version: &str, origin: &str) -> Result<(), String> {
    for sub in ["qapi", "qga"] {
        let _ = fs::remove_dir_all(dest.join(sub));
    }
    let mut manifest = format!(
        "# QEMU schema files vendored by `cargo xtask regen`.\nqemu-version: {version}\n{origin}files:\n"
    );
    for f in files(tree)? {
        let to = dest.join(&f);
        fs::create_dir_all(to.parent().expect("a parent")).map_err(|e| e.to_string())?;
        fs::copy(tree.join(&f), &to).map_err(|e| format!("{}: {e}", f.display()))?;
        let sum = qapi_tests::qemu_src::sha256(&to)?;
        manifest.push_str(&format!("  {sum}  {}\n", f.display()));
    }
    fs::write(dest.join("MANIFEST"), manifest).map_err(|e| e.to_string())?;
    fs::copy(tree.join("COPYING"), dest.join("COPYING")).map_err(|e| e.to_string())?;
    Ok(())
}

/// The generated files' header's words for the older releases.
pub fn label() -> String {
    let names: Vec<&str> = releases().collect();
    let (last, rest) = names.split_last().expect("older releases");
    format!(
        ", also reading QEMU {} and {last}'s (schema/older)",
        rest.join(", ")
    )
}

/// `cargo xtask type-differences [TREE]`: the members of replies and
/// events whose type in an older release sends values the newest type
/// does not take, for the vendored schema (or a QEMU tree's) read with
/// every older release.
pub fn type_differences(root: &Path, tree: Option<&Path>) -> Result<(), String> {
    for schema in ["qapi/qapi-schema.json", "qga/qapi-schema.json"] {
        let newest = tree.map_or_else(|| root.join("schema/qemu"), Path::to_path_buf);
        let read = |p: PathBuf| {
            qapi_codegen::Config::new()
                .read_schema(&p)
                .map(|(s, _)| s)
                .map_err(|e| e.to_string())
        };
        let s = read(newest.join(schema))?;
        let mut config = qapi_codegen::Config::new();
        for release in releases() {
            config.older_schema(release, &read(dir(root, release).join(schema))?);
        }
        for d in config.type_differences(&s).map_err(|e| e.to_string())? {
            println!("{schema}: {d}");
        }
    }
    Ok(())
}

/// The release vendored in `schema/qemu/` (its MANIFEST's `qemu-version`).
pub fn current_release(root: &Path) -> Result<String, String> {
    let path = root.join("schema/qemu/MANIFEST");
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("qemu-version: "))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| format!("{}: no qemu-version line", path.display()))
}
