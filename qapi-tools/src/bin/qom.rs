//! qom: QEMU's object model (QOM) from the command line.
//!
//! ```text
//! qom [-v] SOCKET|HOST:PORT list PATH
//! qom [-v] SOCKET|HOST:PORT get PATH.PROPERTY
//! qom [-v] SOCKET|HOST:PORT set PATH.PROPERTY VALUE
//! qom [-v] SOCKET|HOST:PORT tree [--values] [PATH]
//! ```
//!
//! `list` prints an object's properties with their types; `get` a
//! property's value (strings as they are, anything else as JSON); `set`
//! converts VALUE by the property's type (`on`/`off`, numbers, JSON for
//! structured values, else a string); `tree` prints the objects under
//! PATH (default `/`), indented, each with its QOM type, and with
//! `--values` every other property's value.  Errors (a path that does
//! not exist, QEMU refusing a value, the connection going away) end in
//! a message and exit code 1.

use std::process::ExitCode;

use qapi_types::blocking::Qmp;
use qapi_types::qmp::commands::{QomGet, QomList, QomSet};
use qapi_types::qmp::ObjectPropertyInfo;
use qapi_types::Error;
use serde_json::Value;

const USAGE: &str = "usage: qom [-v] SOCKET|HOST:PORT list PATH | get PATH.PROPERTY | \
                     set PATH.PROPERTY VALUE | tree [--values] [PATH]";

/// `PATH.PROPERTY` split at the last dot after the last slash.
fn split_property(arg: &str) -> Result<(&str, &str), String> {
    let slash = arg.rfind('/').map_or(0, |i| i + 1);
    match arg[slash..].rfind('.') {
        Some(dot) if dot > 0 => Ok((&arg[..slash + dot], &arg[slash + dot + 1..])),
        _ => Err(format!("'{arg}' is not PATH.PROPERTY (e.g. /machine.type)")),
    }
}

fn list(qmp: &Qmp, path: &str) -> Result<Vec<ObjectPropertyInfo>, Error> {
    let mut props = qmp.execute(&QomList { path: path.into() })?;
    props.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(props)
}

fn get(qmp: &Qmp, path: &str, property: &str) -> Result<Value, Error> {
    qmp.execute(&QomGet {
        path: path.into(),
        property: property.into(),
    })
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// VALUE as the JSON a property of QOM type `ty` wants.
fn convert(text: &str, ty: Option<&str>) -> Value {
    let json = serde_json::from_str::<Value>(text).ok();
    match ty {
        Some("bool") => match text {
            "on" | "yes" | "true" => Value::Bool(true),
            "off" | "no" | "false" => Value::Bool(false),
            _ => Value::String(text.into()),
        },
        Some("str") | Some("string") => Value::String(text.into()),
        Some(t) if t.starts_with("link<") || t.starts_with("child<") => Value::String(text.into()),
        _ => json.unwrap_or_else(|| Value::String(text.into())),
    }
}

fn tree(qmp: &Qmp, path: &str, values: bool, depth: usize, out: &mut String) -> Result<(), Error> {
    let indent = "  ".repeat(depth);
    let props = list(qmp, path)?;
    let ty = props
        .iter()
        .any(|p| p.name == "type")
        .then(|| get(qmp, path, "type").ok())
        .flatten()
        .map(|v| shown(&v))
        .unwrap_or_else(|| "?".into());
    let name = if depth == 0 {
        path.to_string()
    } else {
        path.rsplit('/').next().unwrap_or(path).to_string()
    };
    out.push_str(&format!("{indent}{name} ({ty})\n"));
    if values {
        for p in props.iter().filter(|p| !p.r#type.starts_with("child<")) {
            if p.name == "type" {
                continue;
            }
            let v = match get(qmp, path, &p.name) {
                Ok(v) => shown(&v),
                Err(Error::Qmp(e)) => format!("<error: {}>", e.desc),
                Err(e) => return Err(e),
            };
            out.push_str(&format!("{indent}  @{}: {v}  [{}]\n", p.name, p.r#type));
        }
    }
    for p in props.iter().filter(|p| p.r#type.starts_with("child<")) {
        let child = if path.ends_with('/') {
            format!("{path}{}", p.name)
        } else {
            format!("{path}/{}", p.name)
        };
        tree(qmp, &child, values, depth + 1, out)?;
    }
    Ok(())
}

fn run(qmp: &Qmp, args: &[&str]) -> Result<String, String> {
    let fail = |what: &str, e: Error| format!("{what}: {e}");
    match args {
        ["list", path] => {
            let props = list(qmp, path).map_err(|e| fail(path, e))?;
            Ok(props
                .iter()
                .map(|p| format!("{}  ({})\n", p.name, p.r#type))
                .collect())
        }
        ["get", arg] => {
            let (path, prop) = split_property(arg)?;
            let v = get(qmp, path, prop).map_err(|e| fail(arg, e))?;
            Ok(format!("{}\n", shown(&v)))
        }
        ["set", arg, value] => {
            let (path, prop) = split_property(arg)?;
            let ty = list(qmp, path)
                .map_err(|e| fail(path, e))?
                .into_iter()
                .find(|p| p.name == prop)
                .map(|p| p.r#type)
                .ok_or_else(|| format!("{path} has no property '{prop}' (`qom list {path}`)"))?;
            let v = convert(value, Some(&ty));
            qmp.execute(&QomSet {
                path: path.into(),
                property: prop.into(),
                value: v,
            })
            .map_err(|e| fail(arg, e))?;
            Ok(String::new())
        }
        ["tree", rest @ ..] => {
            let values = rest.contains(&"--values");
            let paths: Vec<&&str> = rest.iter().filter(|a| **a != "--values").collect();
            let path = match paths.as_slice() {
                [] => "/",
                [p] => p,
                _ => return Err(USAGE.into()),
            };
            let mut out = String::new();
            tree(qmp, path, values, 0, &mut out).map_err(|e| fail(path, e))?;
            Ok(out)
        }
        _ => Err(USAGE.into()),
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let before = args.len();
    args.retain(|a| a != "-v");
    if let Some(level) = qapi_tools::verbose::level(before - args.len()) {
        qapi_tools::verbose::install(level);
    }
    let Some((address, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    if rest.is_empty() || address.starts_with('-') {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let qmp = match qapi_tools::connect(address) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("qom: cannot connect to {address}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&qmp, &rest) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) if e == USAGE => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("qom: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_paths_and_values() {
        assert_eq!(
            split_property("/machine/peripheral/hd0.drive").unwrap(),
            ("/machine/peripheral/hd0", "drive")
        );
        assert_eq!(
            split_property("/machine.type").unwrap(),
            ("/machine", "type")
        );
        assert!(split_property("/machine").is_err());
        assert!(split_property("/a.b/c").is_err());
        assert_eq!(convert("on", Some("bool")), Value::Bool(true));
        assert_eq!(convert("500", Some("int")), Value::from(500));
        assert_eq!(convert("500", Some("str")), Value::from("500"));
        assert_eq!(convert("{\"a\":1}", Some("x")), serde_json::json!({"a": 1}));
        assert_eq!(convert("plain", Some("uint64")), Value::from("plain"));
    }
}
