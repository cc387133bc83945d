//! `KISEE_...` environment variables that override keys of the settings file.

use std::collections::HashSet;

use serde_yaml::{Mapping, Value};

const PREFIX: &str = "KISEE_";

/// Writes every `KISEE_A__B=v` variable into the tree as `a.b: "v"` and
/// returns the dotted paths it set. Values stay strings; the reader parses
/// them as YAML where a string does not fit.
pub(super) fn apply_overrides(
    root: &mut Value,
    vars: impl IntoIterator<Item = (String, String)>,
) -> HashSet<String> {
    let mut set = HashSet::new();
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let keys: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if keys.iter().any(String::is_empty) {
            continue;
        }
        insert(root, &keys, Value::String(value));
        set.insert(keys.join("."));
    }
    set
}

fn insert(node: &mut Value, keys: &[String], value: Value) {
    let Some((first, rest)) = keys.split_first() else {
        *node = value;
        return;
    };
    if !node.is_mapping() {
        *node = Value::Mapping(Mapping::new());
    }
    if let Value::Mapping(map) = node {
        let key = Value::String(first.clone());
        let child = map.entry(key).or_insert(Value::Null);
        insert(child, rest, value);
    }
}
