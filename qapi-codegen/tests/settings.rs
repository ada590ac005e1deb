//! Settings that do not parse are errors from every call that generates,
//! never left out of the output.

use std::path::Path;

use qapi_codegen::qapi_parser::{Options, Schema};
use qapi_codegen::{Config, Error};

fn schema() -> Schema {
    let load = |_: &Path| Ok(b"{ 'struct': 'Named', 'data': { 'a': 'int' } }\n".to_vec());
    Schema::from_file_with(Path::new("t.json"), Options::default(), &load)
        .unwrap_or_else(|f| panic!("{}", f.render()))
}

/// The message of the `Error::Config` that `config` gives, from each of
/// `render`, `tokens` and `type_differences`.
fn config_error(config: &Config) -> String {
    let s = schema();
    let message = |e: Error| match e {
        Error::Config(m) => m,
        other => panic!("not a settings error: {other}"),
    };
    let rendered = message(config.render(&s, "t.json").unwrap_err());
    assert_eq!(message(config.tokens(&s).unwrap_err()), rendered);
    assert_eq!(message(config.type_differences(&s).unwrap_err()), rendered);
    rendered
}

#[test]
fn a_runtime_path_that_is_not_a_path_is_an_error() {
    for path in ["", "not a path", "qapi_types::<T>", "a::(", "1x", "::"] {
        let m = config_error(Config::new().runtime_path(path));
        assert!(
            m.starts_with("runtime_path: ") && m.contains(&format!("{path:?}")),
            "{path}: {m}"
        );
    }
    for path in [
        "::qapi_types",
        "crate",
        "crate::rt",
        "self::rt",
        "my_crate::qapi",
    ] {
        let (text, _) = Config::new()
            .runtime_path(path)
            .render(&schema(), "t.json")
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(text.contains(&format!("{path}::")), "{path}");
    }
}

#[test]
fn a_type_attribute_that_is_not_attributes_is_an_error() {
    // Whether or not the name is a type of the schema.
    for name in ["Named", ".", "NoSuchType"] {
        for attrs in [
            "#[derive(Hash)",
            "derive(Hash)",
            "#![allow(unused)]",
            "pub",
            "#[x] y",
        ] {
            let m = config_error(Config::new().type_attribute(name, attrs));
            assert!(
                m.starts_with(&format!("type_attribute for {name:?}: {attrs:?} ")),
                "{name} {attrs}: {m}"
            );
        }
    }
    let (text, _) = Config::new()
        .type_attribute("Named", "#[derive(Eq, Hash)] #[allow(missing_docs)]")
        .render(&schema(), "t.json")
        .unwrap();
    assert!(text.contains("#[derive(Eq, Hash)]\n#[allow(missing_docs)]\npub struct Named"));
}

#[test]
fn a_release_that_is_not_a_version_is_an_error() {
    let older = schema();
    let m = config_error(Config::new().older_schema("six", &older));
    assert!(m.starts_with("older_schema: the release \"six\" "), "{m}");
    let m = config_error(Config::new().release("latest"));
    assert!(m.starts_with("release: the release \"latest\" "), "{m}");
    let m = config_error(Config::new().older_schema("1.0", &older).release("2.x"));
    assert!(m.starts_with("release: the release \"2.x\" "), "{m}");
    Config::new()
        .older_schema("1.0", &older)
        .release("2.0.1")
        .render(&schema(), "t.json")
        .unwrap();
}
