//! `CONSENTRY_*` environment variables override config keys, so containers need no file edits.
//!
//! The variable name is the key path upper-cased, with `__` between tables (and before an array
//! index: `CONSENTRY_CRAWLERS__0__PASSWORD_FILE`):
//! `CONSENTRY_STORAGE__URL` sets `storage.url`, `CONSENTRY_DATA_DIR` sets `data_dir`,
//! `CONSENTRY_PROXY__BLOCK_STATUS=403` sets `proxy.block_status`. Values are read as TOML values
//! (`403`, `true`, `["a", "b"]`, `[{ name = "x", … }]`) and otherwise as plain strings. A name
//! ending in `_FILE` reads the value from that file (trailing newline dropped), for secrets
//! mounted as files: `CONSENTRY_ADMIN__TOKEN_FILE=/run/secrets/admin-token`. Unknown keys are
//! errors that name the variable, like unknown keys in the file.

use std::path::Path;

use super::{ConfigError, ConfigErrors};

pub const PREFIX: &str = "CONSENTRY_";
/// `CONSENTRY_*` variables that are not config keys.
const NOT_KEYS: [&str; 1] = ["CONSENTRY_LOG_FORMAT"];
const FILE_SUFFIX: &str = "_FILE";

/// One override: the variable it came from and the key path it sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub var: String,
    pub key: Vec<String>,
    pub value: toml::Value,
}

impl Override {
    pub fn dotted_key(&self) -> String {
        self.key.join(".")
    }
}

/// The overrides among `vars` (name, value), in name order; a variable that cannot be read
/// (a missing `_FILE`) is an error naming it.
pub fn overrides(vars: impl IntoIterator<Item = (String, String)>) -> Result<Vec<Override>, ConfigErrors> {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    let mut vars: Vec<(String, String)> =
        vars.into_iter().filter(|(name, _)| name.starts_with(PREFIX) && !NOT_KEYS.contains(&name.as_str())).collect();
    vars.sort();
    for (var, raw) in vars {
        let mut name = &var[PREFIX.len()..];
        let mut text = raw;
        if let Some(stripped) = name.strip_suffix(FILE_SUFFIX) {
            name = stripped;
            match std::fs::read_to_string(Path::new(&text)) {
                Ok(contents) => text = contents.trim_end_matches(['\n', '\r']).to_string(),
                Err(e) => {
                    problems.push(env_error(&var, name, format!("cannot read the file {text:?}: {e}")));
                    continue;
                }
            }
        }
        let key: Vec<String> = name.split("__").map(str::to_ascii_lowercase).collect();
        if key.iter().any(String::is_empty) {
            problems.push(env_error(&var, name, "not a key path (use __ between tables)".into()));
            continue;
        }
        found.push(Override { var, key, value: parse_value(&text) });
    }
    if problems.is_empty() { Ok(found) } else { Err(ConfigErrors(problems)) }
}

/// A TOML value if the text is one, else the text as a string (`postgres://…` is not TOML).
fn parse_value(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("value = {text}"))
        .ok()
        .and_then(|mut table| table.remove("value"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

/// Sets every override in `table`, creating tables on the way.
pub fn apply(table: &mut toml::Table, overrides: &[Override]) -> Result<(), ConfigErrors> {
    let problems: Vec<ConfigError> = overrides
        .iter()
        .filter_map(|o| set(table, &o.key, &o.value).err().map(|p| env_error(&o.var, &o.dotted_key(), p)))
        .collect();
    if problems.is_empty() { Ok(()) } else { Err(ConfigErrors(problems)) }
}

fn set(table: &mut toml::Table, key: &[String], value: &toml::Value) -> Result<(), String> {
    match key {
        [] => Ok(()),
        [last] => {
            table.insert(last.clone(), value.clone());
            Ok(())
        }
        [first, rest @ ..] => {
            let slot = table.entry(first.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            set_in(slot, first, rest, value)
        }
    }
}

/// Descends into a table, or into an array of tables by index (`CRAWLERS__0__PASSWORD`).
fn set_in(slot: &mut toml::Value, name: &str, rest: &[String], value: &toml::Value) -> Result<(), String> {
    match slot {
        toml::Value::Table(inner) => set(inner, rest, value),
        toml::Value::Array(items) => {
            let Some((index, deeper)) = rest.split_first() else {
                return Err(format!("`{name}` is an array: name an element, e.g. {name}__0__…"));
            };
            let at: usize = index.parse().map_err(|_| format!("`{name}` is an array: {index:?} is not an index"))?;
            let len = items.len();
            let item = items.get_mut(at).ok_or_else(|| format!("`{name}` has {len} elements, no [{at}]"))?;
            if deeper.is_empty() {
                *item = value.clone();
                return Ok(());
            }
            set_in(item, &format!("{name}[{at}]"), deeper, value)
        }
        _ => Err(format!("`{name}` is not a table")),
    }
}

/// Names the variable in errors about keys it set (or keys inside a table it set).
pub fn attribute(mut errors: ConfigErrors, overrides: &[Override]) -> ConfigErrors {
    for error in &mut errors.0 {
        let set_by = overrides.iter().find(|o| {
            let key = o.dotted_key();
            error.key == key || error.key.starts_with(&format!("{key}.")) || error.key.starts_with(&format!("{key}["))
        });
        if let Some(o) = set_by {
            error.problem = format!("{} (set by the environment variable {})", error.problem, o.var);
        }
    }
    errors
}

fn env_error(var: &str, key: &str, problem: String) -> ConfigError {
    // `CONSENTRY_` alone names no key at all: say so instead of printing an empty key.
    let key = if key.is_empty() { "(no key)".to_string() } else { key.to_ascii_lowercase().replace("__", ".") };
    ConfigError { file: format!("environment {var}"), key, problem }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn names_map_to_key_paths_and_values_to_toml() {
        let found = overrides(vars(&[
            ("CONSENTRY_PROXY__BLOCK_STATUS", "403"),
            ("CONSENTRY_STORAGE__URL", "postgres://u@db/consentry"),
            ("CONSENTRY_DATA_DIR", "/data"),
            ("CONSENTRY_LOG_FORMAT", "json"),
            ("HOME", "/root"),
        ]))
        .expect("valid");
        let keys: Vec<String> = found.iter().map(Override::dotted_key).collect();
        assert_eq!(keys, ["data_dir", "proxy.block_status", "storage.url"]);
        assert_eq!(found[1].value, toml::Value::Integer(403));
        assert_eq!(found[2].value, toml::Value::String("postgres://u@db/consentry".into()));
    }

    #[test]
    fn file_variables_read_secrets_from_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").expect("write");
        let found = overrides(vars(&[("CONSENTRY_ADMIN__TOKEN_FILE", path.to_str().expect("path"))])).expect("valid");
        assert_eq!(found[0].dotted_key(), "admin.token");
        assert_eq!(found[0].value, toml::Value::String("s3cret".into()));
        let missing = overrides(vars(&[("CONSENTRY_ADMIN__TOKEN_FILE", "/nonexistent/token")])).expect_err("missing");
        assert!(missing.to_string().contains("CONSENTRY_ADMIN__TOKEN_FILE"), "{missing}");
    }

    #[test]
    fn array_elements_are_named_by_index() {
        let mut table: toml::Table =
            toml::from_str("[[crawlers]]\nname = \"a\"\n[[crawlers]]\nname = \"b\"\n").expect("toml");
        let found = overrides(vars(&[("CONSENTRY_CRAWLERS__1__PASSWORD", "pw")])).expect("parsed");
        apply(&mut table, &found).expect("applied");
        assert_eq!(table["crawlers"][1]["password"].as_str(), Some("pw"));
        let found = overrides(vars(&[("CONSENTRY_CRAWLERS__5__PASSWORD", "pw")])).expect("parsed");
        let error = apply(&mut table, &found).expect_err("out of range");
        assert!(error.to_string().contains("has 2 elements"), "{error}");
    }

    #[test]
    fn a_scalar_in_the_way_of_a_table_is_an_error() {
        let mut table: toml::Table = toml::from_str("node = \"a\"").expect("toml");
        let found = overrides(vars(&[("CONSENTRY_NODE__NAME", "x")])).expect("parsed");
        let error = apply(&mut table, &found).expect_err("node is a string");
        assert!(error.to_string().contains("`node` is not a table"), "{error}");
    }
}
