fn main() {
    // The demo schema, with an extra derive on one type.
    qapi_codegen::Config::new()
        .type_attribute("Named", "#[derive(Eq, Hash)]")
        .generate("../../schema/examples/demo.json")
        .unwrap_or_else(|e| panic!("{e}"));
    // The edge cases.
    for schema in ["keywords", "collisions", "recursion"] {
        qapi_codegen::Config::new()
            .generate(format!("../../schema/tests/{schema}.json"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
}
