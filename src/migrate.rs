//! Turns the original Python Kisee's `settings.toml` into this server's
//! `settings.yaml`: every key of the original is either carried over, or
//! named in a comment that says why it was not.
//!
//! The original (21.9.0) reads `server.host`, `server.port` and
//! `server.hostname`; `jwt.iss`, `jwt.private_key` and `jwt.public_key` (PEM
//! text, not paths); `identity_backend.class` and its `options` table; and
//! a top-level `SENTRY_DSN`. Its quick-start also writes `server.debug`,
//! which nothing reads. Anything else in the file was ignored by it.

use std::fmt::Write as _;

use openssl::nid::Nid;
use openssl::pkey::{Id, PKey};
use toml::{Table, Value};

/// The original's in-memory demonstration backend.
const DEMO_BACKEND: &str = "kisee.providers.demo.DemoBackend";

/// The PostgreSQL backend that shipped in the original's wheel.
const POSTGRES_BACKEND: &str = "postgres_backend.pgsql.DataStore";

/// Where the migrated settings expect the JWT signing key, relative to the
/// settings file.
const SIGNING_KEY_FILE: &str = "jwt-signing.pem";

/// The shortest username the original's demo backend accepted by default.
const DEMO_USERNAME_MIN_LENGTH: i64 = 3;

/// The longest username the default pattern here accepts.
const USERNAME_MAX_LENGTH: i64 = 64;

/// Translates the original Kisee's `settings.toml` (text) into the text of
/// an equivalent `settings.yaml`.
///
/// Keys that have no equivalent become YAML comments naming them; steps the
/// operator must take (making a P-256 signing key, saving a kept key to a
/// file) are comments starting with `ACTION:`. Fails, naming every problem
/// at once, when the text is not TOML, when a key the original could not
/// start without is missing or unusable, or when the identity backend has
/// no counterpart here.
pub fn migrate_settings(original_toml: &str) -> Result<String, String> {
    let table: Table = original_toml
        .parse()
        .map_err(|err| format!("the original settings are not valid TOML: {err}"))?;
    let original = Original::read(&table)?;
    Ok(original.render())
}

/// What was read from the original file, ready to be written out.
struct Original {
    listen: Vec<String>,
    public_url: String,
    issuer: String,
    key: KeyVerdict,
    username_min_length: i64,
    /// Comments on the `server` section (how host and port were mapped).
    server_notes: Vec<String>,
    /// Keys of the original that are not carried over, each with why.
    leftovers: Vec<Leftover>,
}

/// What can be done with the original's `jwt.private_key`.
enum KeyVerdict {
    /// A P-256 key: it can keep signing here.
    Keep,
    /// Any other key (the original's shipped keys are secp256k1): a new
    /// P-256 key must be made. Holds what the key was, for the comment.
    Replace(String),
}

/// A key of the original that the new file does not carry.
struct Leftover {
    path: String,
    why: String,
}

/// Collects every problem of the original file instead of stopping at the
/// first one.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }

    fn into_result<T>(self, value: T) -> Result<T, String> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(format!(
                "cannot migrate the original settings:\n- {}",
                self.0.join("\n- ")
            ))
        }
    }
}

impl Original {
    fn read(root: &Table) -> Result<Self, String> {
        let mut problems = Problems::default();
        let mut leftovers = Vec::new();

        let server = section(root, "server", &mut problems);
        let jwt = section(root, "jwt", &mut problems);
        let backend = section(root, "identity_backend", &mut problems);

        let (listen, server_notes) = read_listen(&server, &mut problems);
        let public_url = read_public_url(&server, &mut problems);
        let issuer = required_string(&jwt, "jwt", "iss", &mut problems);
        let key = read_signing_key(&jwt, &mut problems);
        let username_min_length = read_backend(&backend, &mut problems, &mut leftovers);

        leftovers.extend(server_leftovers(&server));
        leftovers.extend(jwt_leftovers(&jwt));
        leftovers.extend(top_level_leftovers(root));

        let original = Original {
            listen,
            public_url,
            issuer: issuer.unwrap_or_default(),
            key,
            username_min_length,
            server_notes,
            leftovers,
        };
        problems.into_result(original)
    }
}

/// A table of the root, or an empty one (with a problem) when it is
/// missing or not a table.
fn section(root: &Table, name: &str, problems: &mut Problems) -> Table {
    match root.get(name) {
        Some(Value::Table(table)) => table.clone(),
        Some(_) => {
            problems.add(format!("`{name}` must be a table"));
            Table::new()
        }
        None => {
            problems.add(format!("the `[{name}]` table is missing"));
            Table::new()
        }
    }
}

fn required_string(
    table: &Table,
    section: &str,
    key: &str,
    problems: &mut Problems,
) -> Option<String> {
    match table.get(key) {
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            problems.add(format!("`{section}.{key}` must be a string"));
            None
        }
        None => {
            problems.add(format!("`{section}.{key}` is missing"));
            None
        }
    }
}

/// `server.host` (one host or a list, as aiohttp took them) and
/// `server.port` become `server.listen` addresses.
fn read_listen(server: &Table, problems: &mut Problems) -> (Vec<String>, Vec<String>) {
    let mut notes = Vec::new();
    let port = read_port(server, problems);
    let hosts: Vec<String> = match server.get("host") {
        Some(Value::String(host)) => vec![host.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| match item {
                Value::String(host) => Some(host.clone()),
                _ => {
                    problems.add("`server.host` must hold strings only");
                    None
                }
            })
            .collect(),
        Some(_) => {
            problems.add("`server.host` must be a string or a list of strings");
            Vec::new()
        }
        None => {
            problems.add("`server.host` is missing");
            Vec::new()
        }
    };

    let mut listen = Vec::new();
    for host in hosts {
        let Some(ip) = listen_ip(&host) else {
            problems.add(format!(
                "`server.host` {}: Kisee listens on IP addresses, not names; \
                 write the address to bind",
                quoted(&host)
            ));
            continue;
        };
        if host == "localhost" {
            notes.push("server.host \"localhost\" is bound as 127.0.0.1.".to_owned());
        }
        if let Some(port) = port {
            listen.push(join_host_port(&ip, port));
        }
    }
    (listen, notes)
}

fn read_port(server: &Table, problems: &mut Problems) -> Option<u16> {
    // The quick-start wrote the port as a string; the original took either.
    let number = match server.get("port") {
        Some(Value::Integer(port)) => Some(*port),
        Some(Value::String(text)) => text.trim().parse::<i64>().ok(),
        Some(_) => None,
        None => {
            problems.add("`server.port` is missing");
            return None;
        }
    };
    let port = number.and_then(|n| u16::try_from(n).ok());
    if port.is_none() {
        problems.add("`server.port` must be a port number from 0 to 65535");
    }
    port
}

/// The IP address to bind for an original `server.host`, when it has one.
fn listen_ip(host: &str) -> Option<String> {
    if host == "localhost" {
        return Some("127.0.0.1".to_owned());
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| ip.to_string())
}

fn join_host_port(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// `server.hostname` is the base of every absolute link, as
/// `server.public_url` is here.
fn read_public_url(server: &Table, problems: &mut Problems) -> String {
    let Some(hostname) = required_string(server, "server", "hostname", problems) else {
        return String::new();
    };
    if !crate::settings::is_public_url(&hostname) {
        problems.add(format!(
            "`server.hostname` {} is not an http:// or https:// URL without a query",
            quoted(&hostname)
        ));
    }
    hostname.trim_end_matches('/').to_owned()
}

/// Whether the original's signing key can keep signing ES256 tokens here.
fn read_signing_key(jwt: &Table, problems: &mut Problems) -> KeyVerdict {
    let Some(pem) = required_string(jwt, "jwt", "private_key", problems) else {
        return KeyVerdict::Replace("missing".to_owned());
    };
    let Ok(key) = PKey::private_key_from_pem(pem.trim().as_bytes()) else {
        return KeyVerdict::Replace("not a PEM private key this server can read".to_owned());
    };
    if key.id() != Id::EC {
        return KeyVerdict::Replace("not an elliptic-curve key".to_owned());
    }
    let curve = key.ec_key().ok().and_then(|ec| ec.group().curve_name());
    match curve {
        Some(Nid::X9_62_PRIME256V1) => KeyVerdict::Keep,
        Some(nid) => {
            let name = nid.short_name().unwrap_or("an unnamed curve");
            KeyVerdict::Replace(format!("a {name} key"))
        }
        None => KeyVerdict::Replace("a key on an unnamed curve".to_owned()),
    }
}

/// The identity backend: only the demo has a counterpart (the memory
/// backend). Returns the shortest username to accept.
fn read_backend(backend: &Table, problems: &mut Problems, leftovers: &mut Vec<Leftover>) -> i64 {
    let Some(class) = required_string(backend, "identity_backend", "class", problems) else {
        return DEMO_USERNAME_MIN_LENGTH;
    };
    if class == POSTGRES_BACKEND {
        problems.add(format!(
            "identity_backend.class {}: Kisee has no PostgreSQL backend; serve the \
             accounts from LDAP or PAM (backend.kind), or list them in \
             backend.memory.users with Argon2 hashes (their passwords must be reset)",
            quoted(&class)
        ));
        return DEMO_USERNAME_MIN_LENGTH;
    }
    if class != DEMO_BACKEND {
        problems.add(format!(
            "identity_backend.class {}: only the demo backend ({DEMO_BACKEND}) has a \
             counterpart here; choose backend.kind memory, pam or ldap by hand",
            quoted(&class)
        ));
        return DEMO_USERNAME_MIN_LENGTH;
    }

    for key in backend
        .keys()
        .filter(|k| !matches!(k.as_str(), "class" | "options"))
    {
        leftovers.push(unknown(&["identity_backend", key]));
    }
    let options = match backend.get("options") {
        None => return DEMO_USERNAME_MIN_LENGTH,
        Some(Value::Table(options)) => options,
        Some(_) => {
            problems.add("`identity_backend.options` must be a table");
            return DEMO_USERNAME_MIN_LENGTH;
        }
    };
    for key in options
        .keys()
        .filter(|k| k.as_str() != "username_min_length")
    {
        leftovers.push(Leftover {
            path: key_path(&["identity_backend", "options", key]),
            why: "not an option of the demo backend, which ignored it".to_owned(),
        });
    }
    match options.get("username_min_length") {
        None => DEMO_USERNAME_MIN_LENGTH,
        Some(Value::Integer(n)) if (1..=USERNAME_MAX_LENGTH).contains(n) => *n,
        Some(_) => {
            problems.add(format!(
                "`identity_backend.options.username_min_length` must be a number \
                 from 1 to {USERNAME_MAX_LENGTH}"
            ));
            DEMO_USERNAME_MIN_LENGTH
        }
    }
}

fn server_leftovers(server: &Table) -> Vec<Leftover> {
    let mut leftovers = Vec::new();
    for (key, value) in server {
        match key.as_str() {
            "host" | "port" | "hostname" => {}
            "debug" => leftovers.push(Leftover {
                path: format!("server.debug = {}", scalar_text(value)),
                why: "written by the original's quick-start but never read by it; for \
                      more detail here set log.level: debug"
                    .to_owned(),
            }),
            _ => leftovers.push(unknown(&["server", key])),
        }
    }
    leftovers
}

fn jwt_leftovers(jwt: &Table) -> Vec<Leftover> {
    let mut leftovers = Vec::new();
    for key in jwt.keys() {
        match key.as_str() {
            "iss" | "private_key" => {}
            "public_key" => leftovers.push(Leftover {
                path: "jwt.public_key".to_owned(),
                why: "not needed: the public key is derived from jwt.private_key and \
                      published at /public-key/ and /.well-known/jwks.json"
                    .to_owned(),
            }),
            _ => leftovers.push(unknown(&["jwt", key])),
        }
    }
    leftovers
}

fn top_level_leftovers(root: &Table) -> Vec<Leftover> {
    let mut leftovers = Vec::new();
    for (key, value) in root {
        match key.as_str() {
            "server" | "jwt" | "identity_backend" => {}
            "SENTRY_DSN" => leftovers.push(Leftover {
                path: "SENTRY_DSN".to_owned(),
                why: "no Sentry integration here: faults are logged at error level \
                      (log.format: json feeds a log collector)"
                    .to_owned(),
            }),
            _ => {
                leftovers.extend(leaf_paths(&[key], value).into_iter().map(|path| Leftover {
                    path,
                    why: "not read by the original Kisee 21.9.0, and no equivalent here".to_owned(),
                }));
            }
        }
    }
    leftovers
}

fn unknown(path: &[&str]) -> Leftover {
    Leftover {
        path: key_path(path),
        why: "not read by the original Kisee 21.9.0, and no equivalent here".to_owned(),
    }
}

/// The dotted paths of every leaf under `value`, so that a whole unknown
/// table is named key by key, never by its values.
fn leaf_paths(prefix: &[&str], value: &Value) -> Vec<String> {
    match value {
        Value::Table(table) if !table.is_empty() => table
            .iter()
            .flat_map(|(key, inner)| {
                let mut path = prefix.to_vec();
                path.push(key);
                leaf_paths(&path, inner)
            })
            .collect(),
        _ => vec![key_path(prefix)],
    }
}

/// A dotted key path, quoting the segments that are not bare TOML keys.
fn key_path(segments: &[&str]) -> String {
    segments
        .iter()
        .map(|segment| {
            let bare = !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if bare {
                (*segment).to_owned()
            } else {
                quoted(segment)
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A scalar shown in a comment; tables and lists are only described.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => quoted(text),
        Value::Integer(_) | Value::Float(_) | Value::Boolean(_) | Value::Datetime(_) => {
            value.to_string()
        }
        Value::Array(_) => "a list".to_owned(),
        Value::Table(_) => "a table".to_owned(),
    }
}

/// A double-quoted scalar: JSON string syntax is valid YAML, and escapes
/// every character that could end a comment line.
fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

impl Original {
    fn render(&self) -> String {
        let mut out = String::new();
        self.render_header(&mut out);
        self.render_server(&mut out);
        self.render_jwt(&mut out);
        self.render_backend(&mut out);
        self.render_leftovers(&mut out);
        out
    }

    fn render_header(&self, out: &mut String) {
        out.push_str(
            "# Kisee settings migrated from the original Kisee's settings.toml.\n\
             # Lines starting with `ACTION:` name a step to take before starting.\n\
             # Every key left out takes its default (see the settings reference);\n\
             # throttling of failed logins is on by default here, unlike the original.\n\n",
        );
    }

    fn render_server(&self, out: &mut String) {
        out.push_str("server:\n");
        out.push_str("  # From server.host and server.port.\n");
        for note in &self.server_notes {
            let _ = writeln!(out, "  # {note}");
        }
        match self.listen.as_slice() {
            [one] => {
                let _ = writeln!(out, "  listen: {}", quoted(one));
            }
            many => {
                out.push_str("  listen:\n");
                for addr in many {
                    let _ = writeln!(out, "    - {}", quoted(addr));
                }
            }
        }
        out.push_str("  # From server.hostname: the base of every absolute link.\n");
        let _ = writeln!(out, "  public_url: {}", quoted(&self.public_url));
        out.push_str(
            "  # The original served plain HTTP, so a TLS proxy was in front of it.\n  \
             # Keep that proxy and leave `tls` out, or let Kisee serve HTTPS itself:\n  \
             # tls:\n  \
             #   certificate: certs/server.pem      # PEM chain, leaf first\n  \
             #   private_key: certs/server-key.pem\n\n",
        );
    }

    fn render_jwt(&self, out: &mut String) {
        out.push_str("jwt:\n  # From jwt.iss.\n");
        let _ = writeln!(out, "  issuer: {}", quoted(&self.issuer));
        match &self.key {
            KeyVerdict::Keep => out.push_str(
                "  # ACTION: the original's jwt.private_key is a P-256 key and can keep\n  \
                 # signing: save its PEM text, as it is in settings.toml, into\n  \
                 # jwt-signing.pem beside this file (readable by Kisee only). Pasee's\n  \
                 # public_keys then need no change.\n",
            ),
            KeyVerdict::Replace(what) => {
                let _ = write!(
                    out,
                    "  # ACTION: the original's jwt.private_key ({what}) cannot be carried\n  \
                     # over: ES256 is defined on P-256 only (RFC 7518) and current JWT\n  \
                     # libraries refuse secp256k1 keys. Make a P-256 key beside this file:\n  \
                     #   openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {SIGNING_KEY_FILE}\n  \
                     # then add its public PEM (GET /public-key/, or\n  \
                     #   openssl pkey -in {SIGNING_KEY_FILE} -pubout\n  \
                     # ) to Pasee's public_keys next to the old key until the last token\n  \
                     # signed by the original has expired (one hour).\n"
                );
            }
        }
        let _ = writeln!(out, "  private_key: {SIGNING_KEY_FILE}");
        out.push_str(
            "  # The original's fixed lifetimes, which are also the defaults here.\n  \
             lifetime: 1h\n  \
             reset_lifetime: 12h\n\n",
        );
    }

    fn render_backend(&self, out: &mut String) {
        out.push_str(
            "# From identity_backend.class = \"kisee.providers.demo.DemoBackend\": the\n\
             # in-memory demo, with its `root` account whose random password is printed\n\
             # at start, and open registration. Like the original's demo, nothing is kept\n\
             # across restarts unless backend.memory.users_file is set.\n\
             backend:\n  \
             kind: memory\n  \
             memory:\n    \
             users: []\n    \
             demo_root: true\n    \
             registration: true\n\n",
        );
        let _ = write!(
            out,
            "registration:\n  \
             # The demo backend refused usernames shorter than {min} characters\n  \
             # (identity_backend.options.username_min_length) and accepted any\n  \
             # character; here usernames also keep to a safe character set.\n  \
             username_pattern: {pattern}\n  \
             # The original checked no password length; 8 is the default here.\n  \
             password_min_length: 8\n\n",
            min = self.username_min_length,
            pattern = quoted(&format!(
                "^[A-Za-z0-9._@-]{{{},{USERNAME_MAX_LENGTH}}}$",
                self.username_min_length
            )),
        );
        out.push_str(
            "recovery:\n  \
             # The demo printed password-reset tokens on its terminal; `log` writes\n  \
             # them to the server's log at debug level only.\n  \
             delivery: log\n",
        );
    }

    fn render_leftovers(&self, out: &mut String) {
        if self.leftovers.is_empty() {
            return;
        }
        out.push_str("\n# Keys of the original settings that are not carried over:\n");
        for leftover in &self.leftovers {
            let _ = writeln!(out, "#   {}: {}", leftover.path, leftover.why);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "a test fails by panicking"
    )]

    use openssl::ec::{EcGroup, EcKey};

    use super::*;
    use crate::settings::{BackendSettings, Settings};

    /// A private key PEM (SEC1, as `openssl ecparam -genkey` writes) on a curve.
    fn ec_key_pem(curve: Nid) -> String {
        let group = EcGroup::from_curve_name(curve).unwrap();
        let key = EcKey::generate(&group).unwrap();
        String::from_utf8(key.private_key_to_pem().unwrap()).unwrap()
    }

    fn public_pem_of(private_pem: &str) -> String {
        let key = EcKey::private_key_from_pem(private_pem.as_bytes()).unwrap();
        String::from_utf8(key.public_key_to_pem().unwrap()).unwrap()
    }

    /// The example settings file of the original's documentation, key for
    /// key and value for value; the key pair is made here, on secp256k1
    /// like the one the example carries.
    fn documented_example() -> String {
        documented_example_with(&ec_key_pem(Nid::SECP256K1))
    }

    fn documented_example_with(private: &str) -> String {
        let public = public_pem_of(private);
        format!(
            r#"[server]
host = "0.0.0.0"
hostname = "http://localhost:8140"
port = 8140
debug = true

[identity_backend]
  class = "kisee.providers.demo.DemoBackend"
  [identity_backend.options]
    no = "option required"

[email]
  host = "localhost"
  sender = "sender@example.com"
  forgotten_password_tpl_txt = "forgotten_password_tpl.txt"
  forgotten_password_tpl_html = "forgotten_password_tpl.html"

[jwt]
  iss = "example.com"
  private_key = '''
{private}'''
  public_key = '''
{public}'''
"#
        )
    }

    /// What the original's `kisee-quickstart` writes when every default is
    /// accepted: the port as a string, debug off, a fresh secp256k1 pair.
    fn quickstart_default() -> String {
        toml::to_string(&quickstart_table()).unwrap()
    }

    fn quickstart_table() -> Table {
        let private = ec_key_pem(Nid::SECP256K1);
        let public = public_pem_of(&private);
        let mut root = Table::new();
        let mut server = Table::new();
        server.insert("host".into(), "127.0.0.1".into());
        server.insert("port".into(), "8140".into());
        server.insert("hostname".into(), "http://localhost:8140".into());
        server.insert("debug".into(), false.into());
        let mut backend = Table::new();
        backend.insert("class".into(), DEMO_BACKEND.into());
        let mut jwt = Table::new();
        jwt.insert("iss".into(), "example.com".into());
        jwt.insert("private_key".into(), private.into());
        jwt.insert("public_key".into(), public.into());
        root.insert("server".into(), server.into());
        root.insert("identity_backend".into(), backend.into());
        root.insert("jwt".into(), jwt.into());
        root
    }

    /// Parses migrated settings the way the server does, from a folder
    /// holding the P-256 key the output points at.
    fn load(yaml: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(SIGNING_KEY_FILE),
            ec_key_pem(Nid::X9_62_PRIME256V1),
        )
        .unwrap();
        let origin = dir.path().join("settings.yaml");
        Settings::from_yaml(yaml, &origin, dir.path(), Vec::new())
            .unwrap_or_else(|err| panic!("{err:?}\n--- migrated ---\n{yaml}"))
    }

    fn memory(settings: &Settings) -> &crate::settings::MemorySettings {
        match &settings.backend {
            BackendSettings::Memory(memory) => memory,
            _ => panic!("not the memory backend"),
        }
    }

    #[test]
    fn the_documented_example_migrates_to_settings_the_server_accepts() {
        let yaml = migrate_settings(&documented_example()).unwrap();

        let settings = load(&yaml);
        assert_eq!(
            settings.server.listen,
            vec!["0.0.0.0:8140".parse().unwrap()]
        );
        assert_eq!(settings.server.public_url, "http://localhost:8140");
        assert!(settings.server.tls.is_none());
        assert_eq!(settings.jwt.issuer, "example.com");
        let key = settings.jwt.private_key.as_deref().unwrap();
        assert!(key.ends_with(SIGNING_KEY_FILE), "{}", key.display());
        let memory = memory(&settings);
        assert!(memory.demo_root && memory.registration && memory.users.is_empty());
        assert!(settings.registration.username_pattern.is_match("abc"));
        assert!(!settings.registration.username_pattern.is_match("ab"));
    }

    #[test]
    fn the_documented_example_names_every_key_it_does_not_carry() {
        let yaml = migrate_settings(&documented_example()).unwrap();

        for path in [
            "server.debug",
            "identity_backend.options.no",
            "email.host",
            "email.sender",
            "email.forgotten_password_tpl_txt",
            "email.forgotten_password_tpl_html",
            "jwt.public_key",
        ] {
            assert!(
                yaml.lines()
                    .any(|l| l.starts_with("#   ") && l.contains(path)),
                "{path} is not named\n{yaml}"
            );
        }
    }

    #[test]
    fn a_secp256k1_key_asks_for_a_new_p256_key() {
        let yaml = migrate_settings(&documented_example()).unwrap();

        assert!(yaml.contains("ACTION:"), "{yaml}");
        assert!(yaml.contains("secp256k1"), "{yaml}");
        assert!(
            yaml.contains(
                "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out jwt-signing.pem"
            ),
            "{yaml}"
        );
        assert!(yaml.contains("private_key: jwt-signing.pem"), "{yaml}");
    }

    #[test]
    fn no_key_material_is_copied_into_the_output() {
        let original = documented_example();
        let yaml = migrate_settings(&original).unwrap();

        assert!(!yaml.contains("BEGIN"), "{yaml}");
        let private_body = original
            .lines()
            .find(|l| l.len() > 40 && !l.contains('='))
            .unwrap();
        assert!(!yaml.contains(private_body));
    }

    #[test]
    fn a_p256_key_is_kept() {
        let original = documented_example_with(&ec_key_pem(Nid::X9_62_PRIME256V1));
        let yaml = migrate_settings(&original).unwrap();

        assert!(yaml.contains("is a P-256 key and can keep"), "{yaml}");
        assert!(!yaml.contains("openssl genpkey"), "{yaml}");
        load(&yaml);
    }

    #[test]
    fn the_quickstart_default_migrates_with_its_port_written_as_a_string() {
        let yaml = migrate_settings(&quickstart_default()).unwrap();

        let settings = load(&yaml);
        assert_eq!(
            settings.server.listen,
            vec!["127.0.0.1:8140".parse().unwrap()]
        );
        assert_eq!(settings.server.public_url, "http://localhost:8140");
        assert!(yaml.contains("#   server.debug = false: written"), "{yaml}");
    }

    #[test]
    fn username_min_length_carries_into_the_username_pattern() {
        let mut original = quickstart_table();
        let mut options = Table::new();
        options.insert("username_min_length".into(), 5.into());
        let backend = original["identity_backend"].as_table_mut().unwrap();
        backend.insert("options".into(), options.into());
        let yaml = migrate_settings(&toml::to_string(&original).unwrap()).unwrap();

        let settings = load(&yaml);
        assert!(settings.registration.username_pattern.is_match("abcde"));
        assert!(!settings.registration.username_pattern.is_match("abcd"));
    }

    #[test]
    fn several_hosts_and_ipv6_become_several_listen_addresses() {
        let original =
            quickstart_default().replace("host = \"127.0.0.1\"", "host = [\"::1\", \"localhost\"]");
        let yaml = migrate_settings(&original).unwrap();

        let settings = load(&yaml);
        let expected: Vec<std::net::SocketAddr> = vec![
            "[::1]:8140".parse().unwrap(),
            "127.0.0.1:8140".parse().unwrap(),
        ];
        assert_eq!(settings.server.listen, expected);
        assert!(yaml.contains("bound as 127.0.0.1"), "{yaml}");
    }

    #[test]
    fn sentry_and_unknown_keys_are_named_in_comments() {
        let original = format!(
            "SENTRY_DSN = \"https://key@sentry.example/1\"\nmystery = 1\n{}",
            quickstart_default().replace("[jwt]", "[jwt]\nalgorithm = \"ES256\"")
        );
        let yaml = migrate_settings(&original).unwrap();

        assert!(yaml.contains("#   SENTRY_DSN: no Sentry"), "{yaml}");
        assert!(yaml.contains("#   mystery: not read"), "{yaml}");
        assert!(yaml.contains("#   jwt.algorithm: not read"), "{yaml}");
        assert!(
            !yaml.contains("sentry.example"),
            "values are not copied: {yaml}"
        );
        load(&yaml);
    }

    #[test]
    fn a_key_name_cannot_break_out_of_its_comment() {
        let original = format!("\"evil\\nkey: 1\" = true\n{}", quickstart_default());
        let yaml = migrate_settings(&original).unwrap();

        assert!(yaml.contains("#   \"evil\\nkey: 1\": not read"), "{yaml}");
        load(&yaml);
    }

    #[test]
    fn other_backends_are_refused_with_a_reason() {
        let postgres = quickstart_default().replace(DEMO_BACKEND, POSTGRES_BACKEND);
        let err = migrate_settings(&postgres).unwrap_err();
        assert!(err.contains("no PostgreSQL backend"), "{err}");

        let custom = quickstart_default().replace(DEMO_BACKEND, "mycompany.ldap.Backend");
        let err = migrate_settings(&custom).unwrap_err();
        assert!(err.contains("mycompany.ldap.Backend"), "{err}");
    }

    #[test]
    fn every_missing_required_key_is_reported_at_once() {
        let err = migrate_settings("[server]\nport = 99999\nhost = \"example.org\"\n").unwrap_err();

        for expected in [
            "server.port",
            "example.org",
            "server.hostname",
            "[jwt]",
            "[identity_backend]",
        ] {
            assert!(err.contains(expected), "{expected} in {err}");
        }
    }

    #[test]
    fn text_that_is_not_toml_is_refused() {
        let err = migrate_settings("[server\nhost = ").unwrap_err();
        assert!(err.contains("not valid TOML"), "{err}");
    }
}
