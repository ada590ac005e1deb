//! The rustdoc reference made from a schema's documentation: examples
//! under their own heading, annotated examples as text, deprecation
//! reasons with their markup converted, wire names shown and searchable,
//! a union's discriminator described and each branch's value shown, one
//! deprecation banner on a deprecated command that wraps a type.

use std::path::PathBuf;

const SCHEMA: &str = r#"{ 'pragma': { 'documentation-exceptions': [ 'Mode' ] } }

##
# = Disks
#
# Copying disks.
##

##
# @Mode:
#
# How to copy.
#
# @full: everything
#
# @top-only: the top image only
#
# Since: 1.0
##
{ 'enum': 'Mode', 'data': [ 'full', 'top-only', 'none' ] }

##
# @SizeOrName:
#
# A size or names.
#
# @size: a size
#
# @names: names
#
# Since: 1.0
##
{ 'alternate': 'SizeOrName', 'data': { 'size': 'int', 'names': ['str'] } }

##
# @copy-disk:
#
# Copy a disk.
#
# @node-name: the node to copy
#
# @base: where to stop
#
# @mode: how to copy
#
# Features:
#
# @deprecated: Member @base is deprecated.  Use @node-name instead.
#
# Since: 2.0
#
# .. note:: Copies take time.
#
# .. qmp-example::
#
#     -> { "execute": "copy-disk", "arguments": { "node-name": "a" } }
#     <- { "return": {} }
#
# .. qmp-example::
#    :annotated:
#
#    With a mode given as ``-mode full``::
#
#     -> { "execute": "copy-disk",
#          "arguments": { "node-name": "a", "mode": "full" } }
#     <- { "return": {} }
##
{ 'command': 'copy-disk',
  'data': { 'node-name': 'str',
            '*base': { 'type': 'str', 'features': [ 'deprecated' ] },
            '*mode': 'Mode' } }

##
# @Format:
#
# An image format.
#
# @qcow2: QEMU's own format
#
# @raw: no format at all
#
# @vmdk: VMware's
#
# Since: 1.0
##
{ 'enum': 'Format', 'data': [ 'qcow2', 'raw', 'vmdk' ] }

##
# @ImageQcow2:
#
# A qcow2 image's options.
#
# @lazy-refcounts: whether to delay refcount updates
#
# Since: 1.0
##
{ 'struct': 'ImageQcow2', 'data': { '*lazy-refcounts': 'bool' } }

##
# @ImageRaw:
#
# A raw image's options.
#
# @offset: where the image starts
#
# Since: 1.0
##
{ 'struct': 'ImageRaw', 'data': { '*offset': 'int' } }

##
# @Image:
#
# An image to open.
#
# @format: the image's format, which chooses the other members
#
# @filename: where the image is
#
# Since: 1.0
##
{ 'union': 'Image',
  'base': { 'format': 'Format', 'filename': 'str' },
  'discriminator': 'format',
  'data': { 'qcow2': 'ImageQcow2', 'raw': 'ImageRaw' } }

##
# == Old ways
##

##
# @old-open:
#
# Open an image, the old way.
#
# Features:
#
# @deprecated: Use @copy-disk instead.
#
# Since: 1.0
##
{ 'command': 'old-open', 'data': 'Image', 'boxed': true,
  'features': [ 'deprecated' ] }

##
# @old-copy:
#
# Copy a disk, the old way.
#
# Features:
#
# @deprecated: Use @copy-disk instead.
#
# Since: 1.0
##
{ 'command': 'old-copy', 'features': [ 'deprecated' ] }
"#;

fn generated() -> String {
    generate(SCHEMA, false)
}

fn generate(schema: &str, lenient: bool) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reference_docs");
    std::fs::create_dir_all(&dir).unwrap();
    // One file per call: the tests run at once, and one writing the
    // file while another reads it made the reader see it half written.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let path = dir.join(format!("schema-{n}.json"));
    std::fs::write(&path, schema).unwrap();
    let out = qapi_codegen::Config::new()
        .rules(if lenient {
            qapi_codegen::Rules::Lenient
        } else {
            qapi_codegen::Rules::Strict
        })
        .generate_string(&path)
        .unwrap_or_else(|e| panic!("{e}"));
    out.text
}

/// The doc comment lines right before `item`, without `///`.
fn docs_before(text: &str, item: &str) -> String {
    let at = text.find(item).unwrap_or_else(|| panic!("no {item}"));
    let lines: Vec<&str> = text[..at].lines().collect();
    let mut docs: Vec<&str> = lines
        .iter()
        .rev()
        .skip(1)
        .take_while(|l| l.trim_start().starts_with("///") || l.trim_start().starts_with("#["))
        .copied()
        .collect();
    docs.reverse();
    docs.iter()
        .map(|l| {
            let l = l.trim_start();
            match l.strip_prefix("///") {
                Some(rest) => rest.strip_prefix(' ').unwrap_or(rest),
                None => l,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn examples_have_their_own_heading_after_the_other_sections() {
    let text = generated();
    let docs = docs_before(&text, "pub struct CopyDisk");
    let since = docs.find("# Since").expect("a Since heading");
    let examples = docs.find("# Examples").expect("an Examples heading");
    assert!(since < examples, "{docs}");
    // The note joins the description, above the headings.
    let note = docs.find("**Note:** Copies take time.").expect("the note");
    assert!(note < since, "{docs}");
    // Both examples are under the heading, nothing else after them.
    let tail = &docs[examples..];
    assert_eq!(tail.matches("```text").count(), 2, "{docs}");
    let prose = tail.split("\n#[").next().unwrap();
    assert!(prose.trim_end().ends_with("```"), "{docs}");
    // The wire name belongs to the description.
    assert!(docs.find("Wire name: `copy-disk`.") < Some(since), "{docs}");
}

#[test]
fn annotated_examples_are_text_not_raw_rst() {
    let text = generated();
    let docs = docs_before(&text, "pub struct CopyDisk");
    assert!(
        docs.contains("With a mode given as `-mode full`:"),
        "{docs}"
    );
    assert!(!docs.contains("``-mode"), "{docs}");
    assert!(!docs.contains("::\n"), "{docs}");
    assert!(!docs.contains(":annotated:"), "{docs}");
    // The transcript keeps its own indentation.
    assert!(
        docs.contains("\n     \"arguments\": { \"node-name\": \"a\", \"mode\""),
        "{docs}"
    );
}

#[test]
fn deprecation_reasons_are_kept_with_their_markup_converted() {
    let text = generated();
    // The command's banner.
    assert!(
        text.contains("#[deprecated = \"Use `copy-disk` instead.\"]"),
        "{}",
        docs_before(&text, "pub struct OldCopy")
    );
    // A member's: the reason given under the owner's `@deprecated`.
    let base = docs_before(&text, "pub base:");
    assert!(
        base.contains("#[deprecated = \"Member `base` is deprecated.  Use `node-name` instead.\"]")
            || base.contains(
                "#[deprecated = \"Member `base` is deprecated. Use `node-name` instead.\"]"
            ),
        "{base}"
    );
}

#[test]
fn wire_names_are_shown_and_searchable() {
    let text = generated();
    let node = docs_before(&text, "pub node_name:");
    assert!(node.contains("On the wire: `node-name`."), "{node}");
    assert!(node.contains("#[doc(alias = \"node-name\")]"), "{node}");
    // The same name in Rust: nothing to add (rustdoc rejects an alias
    // equal to the name).
    let mode = docs_before(&text, "pub mode:");
    assert!(!mode.contains("On the wire"), "{mode}");
    assert!(!mode.contains("alias"), "{mode}");
    // Enum values: always shown, described or not.
    let top = docs_before(&text, "TopOnly,");
    assert!(top.contains("On the wire: `top-only`."), "{top}");
    assert!(top.contains("#[doc(alias = \"top-only\")]"), "{top}");
    let full = docs_before(&text, "Full,");
    assert!(full.contains("On the wire: `full`."), "{full}");
    let none = docs_before(&text, "None,");
    assert!(none.contains("`none`"), "{none}");
    // An alternate's branches have no name on the wire.
    let size = docs_before(&text, "Size(");
    assert!(!size.contains("On the wire"), "{size}");
}

#[test]
fn the_manual_has_a_module_per_section_with_links_to_what_it_defines() {
    let text = generated();
    let at = text.find("pub mod manual {").expect("a manual module");
    let manual = &text[at..];
    assert!(manual.contains("//! - [Disks](self::disks)"), "{manual}");
    assert!(
        manual.contains("//!   - [Old ways](self::old_ways)"),
        "{manual}"
    );
    let disks =
        &manual[manual.find("pub mod disks {").unwrap()..manual.find("pub mod old_ways").unwrap()];
    assert!(disks.contains("//! Copying disks."), "{disks}");
    assert!(
        disks.contains("//! - [`copy-disk`](super::super::commands::CopyDisk)"),
        "{disks}"
    );
    assert!(
        disks.contains("//! - [`Mode`](super::super::Mode)"),
        "{disks}"
    );
    assert!(!disks.contains("old-copy"), "{disks}");
    let old = &manual[manual.find("pub mod old_ways {").unwrap()..];
    assert!(
        old.contains("//! - [`old-copy`](super::super::commands::OldCopy)"),
        "{old}"
    );
}

#[test]
fn a_union_describes_its_discriminator_and_shows_each_branch_value() {
    // A described branch: QEMU's strict rules refuse it, but schemas read
    // with the lenient ones (other releases') may have it.
    let described = "# @filename: where the image is\n#\n\
                     # @qcow2: QEMU's own format, with its options\n#\n";
    let schema = SCHEMA.replace("# @filename: where the image is\n#\n", described);
    assert_ne!(schema, SCHEMA);
    let text = generate(&schema, true);
    // The discriminator has no field of its own: its text goes to the
    // `branch` field (found by the discriminator's name) and the enum.
    let field = docs_before(&text, "pub branch: ImageBranch");
    let about = "`format`: the image's format, which chooses the other members";
    assert!(field.contains(about), "{field}");
    assert!(field.contains("#[doc(alias = \"format\")]"), "{field}");
    let branches = docs_before(&text, "pub enum ImageBranch");
    assert!(branches.contains(about), "{branches}");
    // Each branch shows the discriminator's value on the wire, whether
    // the schema describes the branch or not.
    let at = text.find("pub enum ImageBranch").unwrap();
    let qcow2 = docs_before(&text[at..], "Qcow2(");
    assert!(
        qcow2.contains("QEMU's own format, with its options"),
        "{qcow2}"
    );
    assert!(
        qcow2.contains("`\"format\": \"qcow2\"`: the members of [`ImageQcow2`]."),
        "{qcow2}"
    );
    let raw = docs_before(&text[at..], "Raw(");
    assert_eq!(raw, "`\"format\": \"raw\"`: the members of [`ImageRaw`].");
    let vmdk = docs_before(&text[at..], "Vmdk,");
    assert_eq!(vmdk, "`\"format\": \"vmdk\"`: no further members.");
}

#[test]
fn a_deprecated_command_wrapping_a_type_shows_its_banner_once() {
    let text = generated();
    // rustdoc repeats a deprecated type's banner on each of its fields:
    // the one field is hidden, and the type's docs say what it holds.
    assert!(
        text.contains("pub struct OldOpen(#[doc(hidden)] pub super::Image);"),
        "{}",
        &text[text.find("pub struct OldOpen").unwrap()..][..200]
    );
    let docs = docs_before(&text, "pub struct OldOpen(");
    assert_eq!(docs.matches("#[deprecated").count(), 1, "{docs}");
    assert!(
        docs.contains(
            "The one field, `.0`, is the command's arguments: a [`Image`](super::Image)."
        ),
        "{docs}"
    );
    // Other commands' fields stay shown.
    assert!(!text.contains("pub struct CopyDisk(#[doc(hidden)]"));
}
