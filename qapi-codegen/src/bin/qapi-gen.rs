//! `qapi-gen`: see `qapi-gen --help`.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    qapi_codegen::cli::run(&args)
}
