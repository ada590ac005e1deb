use qapi_codegen::qapi_parser::{Options, Rules, Schema};

fn main() {
    // The demo schema, with an extra derive on one type.
    qapi_codegen::Config::new()
        .type_attribute("Named", "#[derive(Eq, Hash)]")
        .generate("../../schema/examples/demo.json")
        .unwrap_or_else(|e| panic!("{e}"));
    // The edge cases.
    for schema in [
        "keywords",
        "collisions",
        "recursion",
        "unions",
        "conditions",
    ] {
        qapi_codegen::Config::new()
            .generate(format!("../../schema/tests/{schema}.json"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // The language of QEMU releases before 6.2 (simple unions).
    qapi_codegen::Config::new()
        .rules(qapi_codegen::Rules::Lenient)
        .generate("../../schema/tests/legacy.json")
        .unwrap_or_else(|e| panic!("{e}"));
    // A newer release that also reads an older one's replies.
    let read = |file: &str| {
        Schema::from_file(
            format!("../../schema/tests/{file}"),
            Options {
                rules: Rules::Lenient,
            },
        )
        .unwrap_or_else(|f| panic!("{f}"))
    };
    qapi_codegen::Config::new()
        .older_schema("1.0", &read("compat-old.json"))
        .older_schema("0.5", &read("compat-oldest.json"))
        .release("2.0")
        .generate("../../schema/tests/compat-new.json")
        .unwrap_or_else(|e| panic!("{e}"));
}
