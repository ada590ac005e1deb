fn main() {
    qapi_codegen::Config::new()
        .type_attribute("DriveBus", "#[allow(clippy::enum_variant_names)]")
        .generate("../../schema/examples/demo.json")
        .unwrap_or_else(|e| panic!("{e}"));
}
