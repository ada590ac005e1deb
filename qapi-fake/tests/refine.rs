//! What `Schema::refine` puts back from the parsed schema: integer
//! widths and alternates' names in QEMU's messages.

use qapi_fake::bindings_qmp_schema;
use serde_json::{json, Value};

fn refined() -> qapi_fake::Schema {
    let main = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schema/qemu/qapi/qapi-schema.json"
    );
    let options = qapi_parser::Options {
        rules: qapi_parser::Rules::Lenient,
    };
    let parsed =
        qapi_parser::Schema::from_file(main, options).unwrap_or_else(|f| panic!("{}", f.render()));
    let mut s = bindings_qmp_schema();
    s.refine(&parsed);
    s
}

fn desc(s: &qapi_fake::Schema, command: &str, args: Value) -> String {
    let Value::Object(args) = args else { panic!() };
    s.check_arguments(command, &args).unwrap_err().desc
}

#[test]
fn widths_and_alternates_names() {
    let plain = bindings_qmp_schema();
    let s = refined();
    let blkdebug = json!({"driver": "blkdebug", "node-name": "n", "image": 5});
    assert_eq!(
        desc(&s, "blockdev-add", blkdebug.clone()),
        "Invalid parameter type for 'image', expected: BlockdevRef"
    );
    let masked = desc(&plain, "blockdev-add", blkdebug);
    assert!(
        masked.starts_with("Invalid parameter type for 'image', expected: "),
        "{masked}"
    );
    assert!(!masked.ends_with("BlockdevRef"), "{masked}");
    let wide = json!({"driver": "blkdebug", "node-name": "n", "image": "x", "max-transfer": 5_000_000_000u64});
    assert_eq!(
        desc(&s, "blockdev-add", wide.clone()),
        "Parameter 'max-transfer' expects int32"
    );
    assert!(plain
        .check_arguments("blockdev-add", wide.as_object().unwrap())
        .is_ok());
    assert_eq!(
        desc(&s, "migrate-set-parameters", json!({"max-bandwidth": "x"})),
        "Parameter 'max-bandwidth' expects uint64"
    );
    assert_eq!(
        desc(
            &plain,
            "migrate-set-parameters",
            json!({"max-bandwidth": "x"})
        ),
        "Invalid parameter type for 'max-bandwidth', expected: integer"
    );
    assert_eq!(
        desc(
            &s,
            "block-latency-histogram-set",
            json!({"id": "x", "boundaries": [1, "a"]})
        ),
        "Parameter 'boundaries[1]' expects uint64"
    );
    // Negative numbers wrap for unsigned members, as in QEMU.
    let ok = json!({"max-bandwidth": -1});
    assert!(s
        .check_arguments("migrate-set-parameters", ok.as_object().unwrap())
        .is_ok());
}
