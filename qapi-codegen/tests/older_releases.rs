//! `Config::type_differences`: the reply members whose type in an older
//! release sends values the newer type does not take, found along the
//! ways values travel (Stats was named Counters in the older releases).

use qapi_codegen::qapi_parser::{Options, Rules, Schema};
use qapi_codegen::Config;

fn read(file: &str) -> Schema {
    let path = format!("{}/../schema/tests/{file}", env!("CARGO_MANIFEST_DIR"));
    Schema::from_file(
        path,
        Options {
            rules: Rules::Lenient,
        },
    )
    .unwrap_or_else(|f| panic!("{}", f.render()))
}

#[test]
fn type_differences_name_each_member_and_release() {
    let mut config = Config::new();
    config
        .older_schema("1.0", &read("compat-old.json"))
        .older_schema("0.5", &read("compat-oldest.json"));
    assert_eq!(
        config.type_differences(&read("compat-new.json")).unwrap(),
        [
            "Stats.count: str (string) in this schema, int in QEMU 0.5",
            "Stats.count: str (string) in this schema, int in QEMU 1.0",
        ]
    );
    // Without older releases there is nothing to compare.
    assert!(Config::new()
        .type_differences(&read("compat-new.json"))
        .unwrap()
        .is_empty());
}
