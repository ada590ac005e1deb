//! `cargo xtask regen`: vendor QEMU's schema into `schema/qemu/` and
//! regenerate the bindings checked into `qapi-qemu`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use qapi_parser::Schema;

/// The schema files vendored from a QEMU tree (QEMU's layout kept).
fn schema_files(tree: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for dir in ["qapi", "storage-daemon/qapi"] {
        let mut here: Vec<PathBuf> = fs::read_dir(tree.join(dir))
            .map_err(|e| format!("{}: {e}", tree.join(dir).display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| p.strip_prefix(tree).expect("inside the tree").to_path_buf())
            .collect();
        here.sort();
        files.extend(here);
    }
    files.push(PathBuf::from("qga/qapi-schema.json"));
    Ok(files)
}

/// The bindings checked into qapi-qemu: (module, schema).
const BINDINGS: [(&str, &str); 2] = [
    ("qmp", "qapi/qapi-schema.json"),
    ("qga", "qga/qapi-schema.json"),
];

pub fn vendor_dir(root: &Path) -> PathBuf {
    root.join("schema/qemu")
}

fn generated_path(root: &Path, module: &str) -> PathBuf {
    root.join(format!("qapi-qemu/src/generated/{module}.rs"))
}

/// Read a vendored schema: by the current documentation rules, or, for
/// another QEMU release whose documentation they reject, leniently.
fn read_schema(path: &Path) -> Result<Schema, String> {
    let (schema, note) = qapi_codegen::Config::new()
        .read_schema(path)
        .map_err(|e| e.to_string())?;
    if let Some(n) = note {
        eprintln!("note: {n}");
    }
    Ok(schema)
}

/// The pinned release `cargo xtask regen` vendors by default: an extract
/// of QEMU's history in the `shared/qemu` folder beside the workspace.
const PINNED: &str = "10.2.0";

/// The QEMU release the vendored schema comes from, as its MANIFEST says.
fn vendored_version(root: &Path) -> Result<String, String> {
    let path = vendor_dir(root).join("MANIFEST");
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("qemu-version: "))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| format!("{}: no qemu-version line", path.display()))
}

/// The generated bindings for the vendored schema, by module.
fn render(root: &Path) -> Result<BTreeMap<&'static str, String>, String> {
    let version = vendored_version(root)?;
    let mut out = BTreeMap::new();
    for (module, schema) in BINDINGS {
        let path = vendor_dir(root).join(schema);
        let s = read_schema(&path)?;
        let mut config = qapi_codegen::Config::new();
        config.runtime_path("::qapi_runtime");
        let mut label = format!("QEMU {version}'s {schema} (schema/qemu)");
        for release in crate::older::releases() {
            let older = read_schema(&crate::older::dir(root, release).join(schema))?;
            config.older_schema(release, &older);
        }
        label.push_str(&crate::older::label());
        config.release(crate::older::current_release(root)?);
        let (text, renames) = config.render(&s, &label).map_err(|e| e.to_string())?;
        for r in renames {
            eprintln!(
                "note: {module}: in {}, '{}' is named {}",
                r.scope, r.qapi, r.rust
            );
        }
        out.insert(module, text);
    }
    Ok(out)
}

/// `regen --check`: fail when the checked-in bindings are stale.
pub fn check(root: &Path) -> Result<(), String> {
    let mut stale = Vec::new();
    for (module, text) in render(root)? {
        let path = generated_path(root, module);
        if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    if stale.is_empty() {
        eprintln!("xtask: the checked-in bindings are up to date");
        Ok(())
    } else {
        Err(format!(
            "stale generated bindings: {}\nrun `cargo xtask regen` and commit the result",
            stale.join(", ")
        ))
    }
}

/// `regen [--qemu-src DIR|TARBALL]`.
pub fn regen(root: &Path, source: Option<&str>) -> Result<(), String> {
    let (tree, origin, version) = match source {
        None => {
            let ex = qapi_tests::qemu_src::shared_extract(PINNED)
                .ok_or_else(|| format!("no pinned extract for QEMU {PINNED}"))?;
            // Checks the extract's sha256 against the pinned one.
            let tree = qapi_tests::qemu_src::ensure(ex.version)?;
            (tree, Origin::extract(&ex), ex.version.to_string())
        }
        Some(src)
            if src.ends_with(".tar.xz")
                || src.ends_with(".tar.gz")
                || src.ends_with(".tar.bz2") =>
        {
            let dir = root.join("target/regen-src");
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let st = Command::new("tar")
                .arg("-xf")
                .arg(src)
                .arg("-C")
                .arg(&dir)
                .status()
                .map_err(|e| format!("cannot run tar: {e}"))?;
            if !st.success() {
                return Err(format!("tar could not extract {src}"));
            }
            let top = fs::read_dir(&dir)
                .map_err(|e| e.to_string())?
                .flatten()
                .map(|e| e.path())
                .find(|p| p.join("qapi").is_dir())
                .ok_or_else(|| format!("{src}: no folder with qapi/ at its top"))?;
            let name = Path::new(src)
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let version = read_version(&top);
            let sum = qapi_tests::qemu_src::sha256(Path::new(src))?;
            let origin = match qapi_tests::qemu_src::EXTRACTS
                .iter()
                .find(|e| e.sha256 == sum)
            {
                Some(ex) => Origin::extract(ex),
                None => Origin {
                    source: format!("the tarball {name}"),
                    sha256: Some(sum),
                    commit: None,
                },
            };
            (top, origin, version)
        }
        Some(dir) => {
            let version = read_version(Path::new(dir));
            let origin = Origin {
                source: format!("the tree at {dir}"),
                sha256: None,
                commit: None,
            };
            (PathBuf::from(dir), origin, version)
        }
    };
    // The API before, for the report.
    let before: Vec<Option<Schema>> = BINDINGS
        .iter()
        .map(|(_, s)| read_schema(&vendor_dir(root).join(s)).ok())
        .collect();

    vendor(
        &tree,
        &schema_files(&tree)?,
        &vendor_dir(root),
        &version,
        &origin,
    )?;
    crate::older::vendor_missing(root)?;

    for (module, text) in render(root)? {
        let schema = BINDINGS
            .iter()
            .find(|(m, _)| *m == module)
            .map_or("", |(_, s)| s);
        let path = generated_path(root, module);
        qapi_codegen::write_if_changed(&path, &text).map_err(|e| e.to_string())?;
        eprintln!("xtask: wrote {} from {schema}", path.display());
    }
    for ((module, schema), old) in BINDINGS.iter().zip(before) {
        let new = read_schema(&vendor_dir(root).join(schema))?;
        match old {
            Some(old) => print!("{}", api_changes(module, &old, &new)),
            None => println!("{module}: no previous schema to compare with"),
        }
    }
    Ok(())
}

/// Where vendored files come from, for the MANIFEST.
struct Origin {
    source: String,
    sha256: Option<String>,
    /// The commit of QEMU's repository, when known.
    commit: Option<String>,
}

impl Origin {
    fn extract(ex: &qapi_tests::qemu_src::Extract) -> Origin {
        Origin {
            source: format!(
                "{}, an extract of QEMU's repository (shared/qemu)",
                ex.file_name()
            ),
            sha256: Some(ex.sha256.to_string()),
            commit: Some(ex.commit.to_string()),
        }
    }
}

/// Copy `files` of a QEMU tree into `dest`, QEMU's layout kept, with a
/// MANIFEST of where they come from and their sha256s, and QEMU's
/// licence.
fn vendor(
    tree: &Path,
    files: &[PathBuf],
    dest: &Path,
    version: &str,
    origin: &Origin,
) -> Result<(), String> {
    for sub in ["qapi", "qga", "storage-daemon"] {
        let _ = fs::remove_dir_all(dest.join(sub));
    }
    let mut manifest = String::new();
    manifest.push_str(&format!(
        "# QEMU schema files vendored by `cargo xtask regen`.\nqemu-version: {version}\n"
    ));
    if let Some(commit) = &origin.commit {
        manifest.push_str(&format!("qemu-commit: {commit}\n"));
    }
    manifest.push_str(&format!("source: {}\n", origin.source));
    if let Some(sum) = &origin.sha256 {
        manifest.push_str(&format!("source-sha256: {sum}\n"));
    }
    manifest.push_str("files:\n");
    for f in files {
        let to = dest.join(f);
        fs::create_dir_all(to.parent().expect("a parent")).map_err(|e| e.to_string())?;
        fs::copy(tree.join(f), &to).map_err(|e| format!("{}: {e}", f.display()))?;
        manifest.push_str(&format!(
            "  {}  {}\n",
            qapi_tests::qemu_src::sha256(&to)?,
            f.display()
        ));
    }
    fs::write(dest.join("MANIFEST"), manifest).map_err(|e| e.to_string())?;
    if tree.join("COPYING").exists() {
        fs::copy(tree.join("COPYING"), dest.join("COPYING")).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn read_version(tree: &Path) -> String {
    fs::read_to_string(tree.join("VERSION"))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|_| {
            tree.file_name()
                .map(|n| n.to_string_lossy().trim_start_matches("qemu-").to_string())
                .unwrap_or_else(|| "unknown".into())
        })
}

/// What changed in the API between two schemas (`qapi_codegen::diff`),
/// one change a line under the module's name, then their count.
pub fn api_changes(module: &str, old: &Schema, new: &Schema) -> String {
    let changes = qapi_codegen::diff::changes(old, new);
    if changes.is_empty() {
        return format!("{module}: no API changes\n");
    }
    let mut out = format!("{module}: API changes:\n");
    for c in &changes {
        out.push_str(&format!("  {c}\n"));
    }
    out.push_str(&format!("  {}\n", qapi_codegen::diff::summary(&changes)));
    out
}

/// `regen --qemu-src SRC --into DIR`: regenerate into a scratch copy of
/// the workspace's runtime and bindings crates (and the vendored schema)
/// in `DIR`, then build them, leaving the repository alone.  CI does
/// this with QEMU 7.2, so the way from one release to another stays
/// proven.
pub fn regen_into(root: &Path, source: &str, dir: &Path) -> Result<(), String> {
    const CRATES: [&str; 2] = ["qapi-runtime", "qapi-qemu"];
    let _ = fs::remove_dir_all(dir);
    for krate in CRATES {
        copy_tree(&root.join(krate), &dir.join(krate))?;
        // Only the libraries are built there: their dev-dependencies
        // (other workspace crates) are left out of the copies' manifests.
        let own = dir.join(krate).join("Cargo.toml");
        let text = fs::read_to_string(&own).map_err(|e| e.to_string())?;
        fs::write(&own, without_section(&text, "[dev-dependencies]")).map_err(|e| e.to_string())?;
    }
    copy_tree(&vendor_dir(root), &vendor_dir(dir))?;
    copy_tree(&root.join("schema/older"), &dir.join("schema/older"))?;
    let manifest = fs::read_to_string(root.join("Cargo.toml")).map_err(|e| e.to_string())?;
    // The root manifest with the copied crates as the only members, and
    // without the profile settings for packages the scratch workspace
    // lacks.
    let mut lines = Vec::new();
    let mut skip = false;
    for l in manifest.lines() {
        if l.starts_with('[') {
            skip = l.starts_with("[profile.dev.package.");
        }
        if skip {
            continue;
        }
        lines.push(if l.starts_with("members") {
            format!("members = {CRATES:?}")
        } else {
            l.to_string()
        });
    }
    let manifest = lines.join("\n");
    fs::write(dir.join("Cargo.toml"), manifest + "\n").map_err(|e| e.to_string())?;
    if root.join("Cargo.lock").exists() {
        fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).map_err(|e| e.to_string())?;
    }
    regen(dir, Some(source))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!(
        "xtask: building the regenerated qapi-qemu in {}",
        dir.display()
    );
    let status = Command::new(cargo)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", root.join("target/regen-scratch-target"))
        .args(["build", "-p", "qapi-qemu", "--all-features"])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "the bindings regenerated from {source} do not build ({status})"
        ));
    }
    Ok(())
}

/// A manifest's text without one of its sections.
fn without_section(text: &str, section: &str) -> String {
    let mut kept = Vec::new();
    let mut inside = false;
    for l in text.lines() {
        if l.starts_with('[') {
            inside = l.trim() == section;
        }
        if !inside {
            kept.push(l);
        }
    }
    kept.join("\n") + "\n"
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for entry in fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            fs::copy(&src, &dst).map_err(|e| format!("{}: {e}", src.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The checked-in bindings are what `cargo xtask regen` makes of the
    /// vendored schema (rust-analyzer's way: a test, so plain `cargo
    /// test` finds them stale, offline; the error says what to run).
    #[test]
    fn checked_in_bindings_are_fresh() {
        super::check(&qapi_tests::qemu_src::workspace_root()).unwrap_or_else(|e| panic!("{e}"));
    }

    /// The report after a regeneration: `qapi-gen diff`'s lines under
    /// the module's name, or "no API changes" (the guest agent's schema
    /// changed only in its documentation from 10.0 to 10.2).
    #[test]
    fn api_changes_reports_qapi_gen_diff_or_none() {
        let root = qapi_tests::qemu_src::workspace_root();
        let read = |p: &str| super::read_schema(&root.join(p)).unwrap();
        let qga = read("schema/qemu/qga/qapi-schema.json");
        let qga10 = read("schema/older/10.0/qga/qapi-schema.json");
        assert_eq!(
            super::api_changes("qga", &qga10, &qga),
            "qga: no API changes\n"
        );
        let qga72 = read("schema/older/7.2/qga/qapi-schema.json");
        let changes = qapi_codegen::diff::changes(&qga72, &qga);
        assert!(!changes.is_empty());
        let mut want = String::from("qga: API changes:\n");
        for c in &changes {
            want.push_str(&format!("  {c}\n"));
        }
        want.push_str(&format!("  {}\n", qapi_codegen::diff::summary(&changes)));
        assert_eq!(super::api_changes("qga", &qga72, &qga), want);
    }
}
