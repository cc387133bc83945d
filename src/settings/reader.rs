//! A reader over the parsed YAML tree that collects every problem with the
//! path of its key, so that all mistakes in a file are reported at once.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use crate::secret::Secret;

/// One mistake in the settings: the dotted path of the key and what was
/// expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path, `server.tls.certificate` or `backend.memory.users[0]`.
    pub path: String,
    /// What is wrong, never quoting a secret value.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// State shared by every node of one read.
struct Shared {
    problems: RefCell<Vec<Problem>>,
    base_dir: PathBuf,
    /// Paths whose value came from a `KISEE_...` environment variable.
    from_env: HashSet<String>,
}

/// A mapping in the settings tree, read key by key. Keys never asked for
/// are reported as unknown by [`Node::finish`].
pub(crate) struct Node {
    path: String,
    map: Mapping,
    seen: RefCell<BTreeSet<String>>,
    shared: Rc<Shared>,
}

impl Node {
    /// The root of a settings tree. `base_dir` anchors relative paths.
    pub(crate) fn root(value: Value, base_dir: &Path, from_env: HashSet<String>) -> Self {
        let shared = Rc::new(Shared {
            problems: RefCell::new(Vec::new()),
            base_dir: base_dir.to_path_buf(),
            from_env,
        });
        let root = Self::detached(String::new(), Mapping::new(), shared);
        match value {
            Value::Mapping(map) => Self { map, ..root },
            Value::Null => root,
            _ => {
                root.problem("", "the settings file must be a mapping of sections");
                root
            }
        }
    }

    fn detached(path: String, map: Mapping, shared: Rc<Shared>) -> Self {
        Self {
            path,
            map,
            seen: RefCell::new(BTreeSet::new()),
            shared,
        }
    }

    /// The problems found so far, in the order they were found.
    pub(crate) fn problems(&self) -> Vec<Problem> {
        self.shared.problems.borrow().clone()
    }

    /// The dotted path of `key` under this node.
    pub(crate) fn path_of(&self, key: &str) -> String {
        match (self.path.is_empty(), key.is_empty()) {
            (true, _) => key.to_string(),
            (false, true) => self.path.clone(),
            (false, false) => format!("{}.{key}", self.path),
        }
    }

    /// Records a problem with `key` under this node.
    pub(crate) fn problem(&self, key: &str, message: impl Into<String>) {
        let problem = Problem {
            path: self.path_of(key),
            message: message.into(),
        };
        self.shared.problems.borrow_mut().push(problem);
    }

    /// The raw value of `key`, marking it as known. `null` counts as absent.
    fn raw(&self, key: &str) -> Option<Value> {
        self.seen.borrow_mut().insert(key.to_string());
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.clone()),
        }
    }

    /// Whether `key` is present with a non-null value (without marking it).
    pub(crate) fn has(&self, key: &str) -> bool {
        !matches!(self.map.get(key), None | Some(Value::Null))
    }

    /// `key` deserialized as `T`; absent or `null` gives `None`, a value of
    /// the wrong shape records a problem and gives `None`.
    pub(crate) fn opt<T: DeserializeOwned>(&self, key: &str, expected: &str) -> Option<T> {
        let value = self.raw(key)?;
        let path = self.path_of(key);
        if let Ok(parsed) = serde_yaml::from_value::<T>(value.clone()) {
            return Some(parsed);
        }
        // An environment variable always arrives as a string: read it as
        // YAML so that `KISEE_SERVER__MAX_BODY_BYTES=1024` is a number.
        if let (true, Value::String(text)) = (self.shared.from_env.contains(&path), &value) {
            let reparsed = serde_yaml::from_str::<Value>(text).ok();
            if let Some(parsed) = reparsed.and_then(|v| serde_yaml::from_value::<T>(v).ok()) {
                return Some(parsed);
            }
        }
        self.problem(key, format!("expected {expected}"));
        None
    }

    /// `key` as `T`, or `default` when absent.
    pub(crate) fn get<T: DeserializeOwned>(&self, key: &str, expected: &str, default: T) -> T {
        self.opt(key, expected).unwrap_or(default)
    }

    /// A duration written `30s`, `5m`, `1h`, `2d` or as a number of seconds.
    pub(crate) fn duration(&self, key: &str, default: Duration) -> Duration {
        let Some(value) = self.raw(key) else {
            return default;
        };
        let parsed = match &value {
            Value::Number(n) => n.as_u64().map(Duration::from_secs),
            Value::String(s) => parse_duration(s),
            _ => None,
        };
        parsed.unwrap_or_else(|| {
            self.problem(
                key,
                "expected a duration such as 30s, 5m, 1h or a number of seconds",
            );
            default
        })
    }

    /// A path, resolved against the settings file's folder when relative.
    pub(crate) fn path(&self, key: &str) -> Option<PathBuf> {
        let text: String = self.opt(key, "a file path")?;
        Some(self.resolve(&text))
    }

    /// A list of paths, each resolved like [`Node::path`].
    pub(crate) fn paths(&self, key: &str) -> Vec<PathBuf> {
        let texts: Vec<String> = self.get(key, "a list of file paths", Vec::new());
        texts.iter().map(|t| self.resolve(t)).collect()
    }

    fn resolve(&self, text: &str) -> PathBuf {
        let path = PathBuf::from(text);
        if path.is_absolute() {
            path
        } else {
            self.shared.base_dir.join(path)
        }
    }

    /// A secret given inline as `key` or read from the file named by
    /// `key_file` (trailing newline removed). Both at once is a mistake.
    pub(crate) fn secret(&self, key: &str) -> Option<Secret> {
        let file_key = format!("{key}_file");
        let inline: Option<String> = self.opt(key, "a string");
        let file = self.path(&file_key);
        match (inline, file) {
            (Some(_), Some(_)) => {
                self.problem(key, format!("give either {key} or {file_key}, not both"));
                None
            }
            (Some(value), None) => Some(Secret::new(value)),
            (None, Some(path)) => self.read_secret_file(&file_key, &path),
            (None, None) => None,
        }
    }

    fn read_secret_file(&self, key: &str, path: &Path) -> Option<Secret> {
        match std::fs::read_to_string(path) {
            Ok(text) => Some(Secret::new(text.trim_end_matches(['\r', '\n']))),
            Err(err) => {
                self.problem(key, format!("cannot read {}: {err}", path.display()));
                None
            }
        }
    }

    /// The mapping under `key`; absent gives an empty node.
    pub(crate) fn section(&self, key: &str) -> Node {
        let path = self.path_of(key);
        let map = match self.raw(key) {
            None => Mapping::new(),
            Some(Value::Mapping(map)) => map,
            Some(_) => {
                self.problem(key, "expected a mapping");
                Mapping::new()
            }
        };
        Node::detached(path, map, Rc::clone(&self.shared))
    }

    /// The list of mappings under `key`, one node per element.
    pub(crate) fn list(&self, key: &str) -> Vec<Node> {
        let items = match self.raw(key) {
            None => return Vec::new(),
            Some(Value::Sequence(items)) => items,
            Some(_) => {
                self.problem(key, "expected a list");
                return Vec::new();
            }
        };
        let base = self.path_of(key);
        let mut nodes = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            let path = format!("{base}[{index}]");
            let node = Node::detached(path, Mapping::new(), Rc::clone(&self.shared));
            match item {
                Value::Mapping(map) => nodes.push(Node { map, ..node }),
                _ => node.problem("", "expected a mapping"),
            }
        }
        nodes
    }

    /// Reports every key of this mapping that was never read.
    pub(crate) fn finish(&self) {
        let seen = self.seen.borrow();
        for key in self.map.keys() {
            let name = match key {
                Value::String(s) => s.clone(),
                other => format!("{other:?}"),
            };
            if !seen.contains(&name) {
                self.problem(&name, "unknown key");
            }
        }
    }
}

/// Parses `30s`, `5m`, `1h`, `2d`, `1500ms` or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let amount: u64 = digits.parse().ok()?;
    let seconds = match unit.trim() {
        "" | "s" => amount,
        "ms" => return Some(Duration::from_millis(amount)),
        "m" => amount.checked_mul(60)?,
        "h" => amount.checked_mul(3600)?,
        "d" => amount.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(yaml: &str) -> Node {
        let value = serde_yaml::from_str(yaml).unwrap_or(Value::Null);
        Node::root(value, Path::new("/etc/kisee"), HashSet::new())
    }

    #[test]
    fn durations_accept_units_and_bare_seconds() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("12h"), Some(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("5 minutes"), None);
        assert_eq!(parse_duration("h"), None);
    }

    #[test]
    fn every_problem_is_collected_with_its_path() {
        let root = node("server: {listn: 1, max_body_bytes: many}\nextra: 2\n");
        let server = root.section("server");
        let _: Option<u64> = server.opt("max_body_bytes", "a number of bytes");
        server.finish();
        root.finish();
        let paths: Vec<String> = root_problems(&root);
        assert_eq!(paths, ["server.max_body_bytes", "server.listn", "extra"]);
    }

    fn root_problems(root: &Node) -> Vec<String> {
        root.problems().into_iter().map(|p| p.path).collect()
    }

    #[test]
    fn relative_paths_resolve_against_the_settings_folder() {
        let root = node("a: certs/x.pem\nb: /abs/y.pem\n");
        assert_eq!(
            root.path("a"),
            Some(PathBuf::from("/etc/kisee/certs/x.pem"))
        );
        assert_eq!(root.path("b"), Some(PathBuf::from("/abs/y.pem")));
    }

    #[test]
    fn a_secret_can_come_from_a_file_but_not_from_both() {
        let dir = tempfile_dir();
        let file = dir.join("secret");
        std::fs::write(&file, "s3cret\n").ok();
        let yaml = format!(
            "p_file: {}\nq: x\nq_file: {}\n",
            file.display(),
            file.display()
        );
        let root = node(&yaml);
        assert_eq!(
            root.secret("p").map(|s| s.expose().to_string()),
            Some("s3cret".into())
        );
        assert!(root.secret("q").is_none());
        assert_eq!(root_problems(&root), ["q"]);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kisee-reader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        dir
    }
}
