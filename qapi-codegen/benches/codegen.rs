//! Generating the token stream (no formatting) for QEMU 10.0.2's full
//! QMP schema; the schema is read once, outside the timing.  The
//! `tokens/qmp-10.0.2` case is the goal's measure; the others break it
//! down (without docs, without the introspection constant), and
//! `floor/same-tokens` rebuilds the very tokens of the full output from a
//! flat list, with no generation logic at all: what proc-macro2 alone
//! costs for an output of this size.

use criterion::{criterion_group, criterion_main, Criterion};
use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use qapi_parser::{Options, Schema};

fn codegen(c: &mut Criterion) {
    let tree = qapi_tests::qemu_src::ensure("10.0.2").expect("QEMU sources");
    let schema = Schema::from_file(tree.join("qapi/qapi-schema.json"), Options::default())
        .unwrap_or_else(|f| panic!("{f}"));
    let full = qapi_codegen::Config::new();
    c.bench_function("tokens/qmp-10.0.2", |b| b.iter(|| full.tokens(&schema)));
    let mut no_docs = qapi_codegen::Config::new();
    no_docs.docs(false);
    c.bench_function("tokens/qmp-10.0.2/no-docs", |b| {
        b.iter(|| no_docs.tokens(&schema))
    });
    let mut no_info = qapi_codegen::Config::new();
    no_info.introspection(false);
    c.bench_function("tokens/qmp-10.0.2/no-introspection", |b| {
        b.iter(|| no_info.tokens(&schema))
    });

    let output = full
        .tokens(&schema)
        .expect("the default settings are valid");
    let mut flat = Vec::new();
    flatten(output.clone(), &mut flat);
    let rebuilt = rebuild(&flat);
    assert_eq!(rebuilt.to_string(), output.to_string());
    println!("full output: {} tokens", flat.len());
    c.bench_function("floor/same-tokens", |b| b.iter(|| rebuild(&flat)));
}

/// A token stream as a flat list: groups become an opening and a closing.
enum Flat {
    Ident(String),
    Punct(char, Spacing),
    Literal(String),
    Open(Delimiter),
    Close,
}

fn flatten(tokens: TokenStream, out: &mut Vec<Flat>) {
    for t in tokens {
        match t {
            TokenTree::Ident(i) => out.push(Flat::Ident(i.to_string())),
            TokenTree::Punct(p) => out.push(Flat::Punct(p.as_char(), p.spacing())),
            TokenTree::Literal(l) => out.push(Flat::Literal(l.to_string())),
            TokenTree::Group(g) => {
                out.push(Flat::Open(g.delimiter()));
                flatten(g.stream(), out);
                out.push(Flat::Close);
            }
        }
    }
}

fn rebuild(flat: &[Flat]) -> TokenStream {
    let mut stack: Vec<(Delimiter, TokenStream)> = vec![(Delimiter::None, TokenStream::new())];
    for f in flat {
        let token: TokenTree = match f {
            Flat::Ident(s) => match s.strip_prefix("r#") {
                Some(raw) => Ident::new_raw(raw, Span::call_site()).into(),
                None => Ident::new(s, Span::call_site()).into(),
            },
            Flat::Punct(c, s) => Punct::new(*c, *s).into(),
            Flat::Literal(s) => s.parse::<Literal>().expect("a literal").into(),
            Flat::Open(d) => {
                stack.push((*d, TokenStream::new()));
                continue;
            }
            Flat::Close => {
                let (d, inner) = stack.pop().expect("balanced");
                Group::new(d, inner).into()
            }
        };
        stack.last_mut().expect("balanced").1.extend([token]);
    }
    stack.pop().expect("balanced").1
}

criterion_group!(benches, codegen);
criterion_main!(benches);
