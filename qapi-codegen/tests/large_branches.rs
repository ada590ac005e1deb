//! Union branches estimated at 128 bytes or more are boxed in the types
//! replies and events carry (every value of a union is as large as its
//! largest branch, and decoded values are moved several times); small
//! branches, and unions only sent as arguments, keep their payload
//! inline.

use std::path::PathBuf;

const SCHEMA: &str = "\
{ 'enum': 'Kind', 'data': [ 'big', 'small' ] }
{ 'struct': 'Big', 'data': { 'a': 'str', 'b': 'str', 'c': 'str', 'd': 'str',
                             'e': 'str', 'f': 'int', '*g': 'int' } }
{ 'struct': 'Small', 'data': { 'n': 'int' } }
{ 'union': 'Out', 'base': { 'kind': 'Kind' }, 'discriminator': 'kind',
  'data': { 'big': 'Big', 'small': 'Small' } }
{ 'union': 'In', 'base': { 'kind': 'Kind' }, 'discriminator': 'kind',
  'data': { 'big': 'Big', 'small': 'Small' } }
{ 'command': 'query-out', 'returns': [ 'Out' ] }
{ 'command': 'set-in', 'data': { 'x': 'In' } }
";

#[test]
fn large_branches_of_output_unions_are_boxed() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("large_branches");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("schema.json");
    std::fs::write(&path, SCHEMA).unwrap();
    let out = qapi_codegen::Config::new()
        .rules(qapi_codegen::Rules::Lenient)
        .generate_string(&path)
        .unwrap();
    let text = out.text.split_whitespace().collect::<String>();
    let variant = |union: &str, v: &str| {
        let at = text
            .find(&format!("pubenum{union}Branch{{"))
            .unwrap_or_else(|| panic!("no {union}Branch in {}", out.text));
        let end = at + text[at..].find("}").unwrap();
        text[at..end]
            .split(',')
            .find(|s| s.contains(&format!("{v}(")))
            .unwrap_or_else(|| panic!("no {v} in {union}Branch"))
            .to_string()
    };
    assert!(variant("Out", "Big").ends_with("Big(::std::boxed::Box<Big>)"));
    assert!(variant("Out", "Small").ends_with("Small(Small)"));
    assert!(variant("In", "Big").ends_with("Big(Big)"));
    assert!(variant("In", "Small").ends_with("Small(Small)"));
}
