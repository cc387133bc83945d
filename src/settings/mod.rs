//! The settings file: its typed form, how it is read, and every check made
//! before the server starts.
//!
//! Reading never stops at the first mistake: every problem is collected
//! with the dotted path of its key and reported together.

mod env;
mod reader;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use serde_yaml::Value;

use reader::Node;
pub use reader::Problem;

/// The shipped quick-start settings, used when no settings file exists at
/// the default path.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../settings.yaml");

/// Everything the server needs to know, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listening, TLS and request limits.
    pub server: ServerSettings,
    /// Token signing.
    pub jwt: JwtSettings,
    /// Where credentials are checked.
    pub backend: BackendSettings,
    /// Username and password policy for new accounts and new passwords.
    pub registration: RegistrationSettings,
    /// How password-reset tokens reach their user.
    pub recovery: RecoverySettings,
    /// Limits on failed logins and registrations.
    pub throttle: ThrottleSettings,
    /// Where `/metrics` is served.
    pub metrics: MetricsSettings,
    /// Log level and format.
    pub log: LogSettings,
}

/// `metrics.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// `None`: `/metrics` on the main listener; an address: served there only,
    /// over plain HTTP (default none).
    pub listen: Option<SocketAddr>,
}

/// `throttle.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Failed logins per username (default 5 in 5 minutes).
    pub per_user: Limit,
    /// Failed logins per client address (default 50 in 5 minutes).
    pub per_client: Limit,
    /// Registrations per client address (default 10 in 1 hour).
    pub registrations_per_client: Limit,
    /// Where counts are kept: `None` in this process (the default), or a
    /// Redis URL whose counts every replica shares.
    pub redis_url: Option<String>,
    /// Time allowed for each Redis call before local counts decide
    /// (default 250 ms).
    pub redis_timeout: Duration,
}

/// So many events in a sliding window; a count of 0 turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Events allowed in the window.
    pub count: usize,
    /// The window.
    pub window: Duration,
}

/// `server.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Addresses to listen on (default `127.0.0.1:8140`).
    pub listen: Vec<SocketAddr>,
    /// Base of every absolute link, without a trailing slash
    /// (default `https://localhost:8140`).
    pub public_url: String,
    /// Certificate and key; `None` serves plain HTTP.
    pub tls: Option<TlsSettings>,
    /// Largest accepted request body (default 64 KiB).
    pub max_body_bytes: usize,
    /// Exact origins allowed to call from a browser (default none).
    pub cors_origins: Vec<String>,
    /// Time allowed for a TLS handshake (default 10 s).
    pub handshake_timeout: Duration,
    /// Time allowed to receive a request's headers (default 10 s).
    pub header_timeout: Duration,
    /// Time allowed to receive a request's body (default 10 s).
    pub body_timeout: Duration,
    /// A connection with no traffic for this long is closed (default 60 s).
    pub idle_timeout: Duration,
    /// Connections served at once; more are refused (default 10 000).
    pub max_connections: usize,
}

/// `server.tls.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first.
    pub certificate: PathBuf,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1).
    pub private_key: PathBuf,
}

/// `jwt.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// The `iss` claim (default: the public URL).
    pub issuer: String,
    /// PEM signing key; `None` makes a fresh key at start.
    pub private_key: Option<PathBuf>,
    /// PEM keys published in the JWKS beside the signing key.
    pub additional_public_keys: Vec<PathBuf>,
    /// Lifetime of login tokens (default 1 h).
    pub lifetime: Duration,
    /// The `aud` claim, when set.
    pub audience: Option<String>,
    /// Lifetime of password-reset tokens (default 12 h).
    pub reset_lifetime: Duration,
}

/// `backend.*`: the kind chosen and its own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSettings {
    /// `backend.kind: memory`.
    Memory(MemorySettings),
    /// `backend.kind: ldap`.
    Ldap(Box<LdapSettings>),
    /// `backend.kind: pam`.
    Pam(PamSettings),
}

/// `backend.pam.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PamSettings {
    /// The PAM service, a file of `/etc/pam.d/` (default `kisee`).
    pub service: String,
    /// Put the account's Unix groups in the token (default true).
    pub groups: bool,
    /// PAM checks running at once (default 16).
    pub max_concurrent: usize,
    /// How long a login waits for PAM, slot included (default 10 s).
    pub timeout: Duration,
}

/// `backend.memory.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemorySettings {
    /// Accounts given in the settings file.
    pub users: Vec<StaticUser>,
    /// Where registered users and password changes are kept (default none:
    /// they live in memory only).
    pub users_file: Option<PathBuf>,
    /// Create a `root` account with a random password printed at start
    /// (default false).
    pub demo_root: bool,
    /// Allow self-registration and password changes (default false).
    pub registration: bool,
    /// Password hashes computed at once (default: the number of CPUs).
    pub hash_concurrency: usize,
}

/// `backend.ldap.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapSettings {
    /// Directory URLs, tried in order (`ldap://` or `ldaps://`).
    pub urls: Vec<String>,
    /// Upgrade `ldap://` connections with StartTLS (default true).
    pub starttls: bool,
    /// PEM CA certificates trusted for the directory; `None`: the system's.
    pub ca_certificate: Option<PathBuf>,
    /// Time allowed for connecting and for every operation (default 5 s).
    pub timeout: Duration,
    /// How long a server that failed is skipped (default 10 s).
    pub retry_dead_after: Duration,
    /// How a username becomes an entry.
    pub locate: LdapLocate,
    /// Where group names come from, when wanted.
    pub groups: Option<LdapGroups>,
    /// Attribute holding the `email` claim, when wanted.
    pub email_attribute: Option<String>,
    /// Attribute holding the `name` claim, when wanted.
    pub name_attribute: Option<String>,
    /// Connections kept for service-account searches, and for user binds
    /// (default 8 each).
    pub pool_size: usize,
}

/// How the LDAP backend finds a user's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LdapLocate {
    /// Bind straight to this DN, `{username}` replaced (RFC 4514-escaped).
    Template(String),
    /// Search for the entry, then bind as it.
    Search(LdapSearch),
}

/// `backend.ldap.search.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapSearch {
    /// Where to search (whole subtree).
    pub base_dn: String,
    /// The filter, `{username}` replaced (RFC 4515-escaped).
    pub filter: String,
    /// The service account searching; `None` searches anonymously.
    pub bind_dn: Option<String>,
    /// Its password (`bind_password` or `bind_password_file`).
    pub bind_password: Option<crate::secret::Secret>,
}

/// `backend.ldap.groups.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapGroups {
    /// Where to search for groups.
    pub base_dn: String,
    /// The filter, `{dn}` and `{username}` replaced (RFC 4515-escaped).
    pub filter: String,
    /// The attribute holding a group's name (default `cn`).
    pub name_attribute: String,
}

/// One entry of `backend.memory.users`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticUser {
    /// Login name.
    pub username: String,
    /// Argon2 PHC string.
    pub password_hash: String,
    /// Email address, for the token and for password recovery.
    pub email: Option<String>,
    /// Display name for the `name` claim.
    pub name: Option<String>,
    /// Groups for the `groups` claim.
    pub groups: Vec<String>,
}

/// `registration.*`.
#[derive(Debug, Clone)]
pub struct RegistrationSettings {
    /// Shortest accepted password, in characters (default 8).
    pub password_min_length: usize,
    /// Pattern a new username must match (default `^[A-Za-z0-9._@-]{1,64}$`).
    pub username_pattern: Regex,
}

/// `recovery.*`.
#[derive(Debug, Clone)]
pub enum RecoverySettings {
    /// Reset tokens go to the server's log at debug level (the default).
    Log,
    /// One message file per request in this folder, as a mail spool holds them.
    File(PathBuf),
}

/// `log.*`.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// `error`, `warn`, `info` (default), `debug` or `trace`.
    pub level: String,
    /// Machine-readable JSON lines instead of text (default false).
    pub json: bool,
}

/// The longest username accepted anywhere; longer ones never reach a backend.
pub const MAX_USERNAME_BYTES: usize = 256;

/// The longest password accepted anywhere; longer ones never reach a hash.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why the settings could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The settings file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not YAML.
    #[error("{path} is not valid YAML: {message}")]
    Syntax {
        /// The settings file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// One or more keys are wrong.
    #[error("{} problem(s) in the settings", .0.len())]
    Invalid(Vec<Problem>),
}

impl Settings {
    /// Reads a settings file, applies `KISEE_...` overrides, and validates.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base_dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Self::from_yaml(&text, path, &base_dir, std::env::vars())
    }

    /// Parses and validates settings text; `origin` only names it in errors.
    pub fn from_yaml(
        text: &str,
        origin: &Path,
        base_dir: &Path,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let syntax = |message: String| SettingsError::Syntax {
            path: origin.into(),
            message,
        };
        let mut value: Value = serde_yaml::from_str(text).map_err(|e| syntax(e.to_string()))?;
        let from_env = env::apply_overrides(&mut value, vars);
        let base_dir = if base_dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base_dir
        };
        read(Node::root(value, base_dir, from_env))
    }
}

fn read(root: Node) -> Result<Settings, SettingsError> {
    let server = read_server(&root.section("server"));
    let jwt = read_jwt(&root.section("jwt"), &server.public_url);
    let backend = read_backend(&root.section("backend"));
    let registration = read_registration(&root.section("registration"));
    let recovery = read_recovery(&root.section("recovery"));
    let throttle = read_throttle(&root.section("throttle"));
    let metrics = read_metrics(&root.section("metrics"));
    let log = read_log(&root.section("log"));
    root.finish();

    let problems = root.problems();
    if !problems.is_empty() {
        return Err(SettingsError::Invalid(problems));
    }
    Ok(Settings {
        server,
        jwt,
        backend,
        registration,
        recovery,
        throttle,
        metrics,
        log,
    })
}

fn read_server(node: &Node) -> ServerSettings {
    let public_url = read_public_url(node);
    let tls = node.has("tls").then(|| read_tls(&node.section("tls")));
    let max_body_bytes = node.get("max_body_bytes", "a number of bytes", 65_536);
    if max_body_bytes == 0 {
        node.problem("max_body_bytes", "must be at least 1");
    }
    let server = ServerSettings {
        listen: read_listen(node),
        public_url,
        tls,
        max_body_bytes,
        cors_origins: node.get("cors_origins", "a list of origins", Vec::new()),
        handshake_timeout: positive(node, "handshake_timeout", Duration::from_secs(10)),
        header_timeout: positive(node, "header_timeout", Duration::from_secs(10)),
        body_timeout: positive(node, "body_timeout", Duration::from_secs(10)),
        idle_timeout: positive(node, "idle_timeout", Duration::from_secs(60)),
        max_connections: node.get("max_connections", "a number", 10_000),
    };
    node.finish();
    server
}

fn read_listen(node: &Node) -> Vec<SocketAddr> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Listen {
        One(String),
        Many(Vec<String>),
    }
    let texts = match node.opt("listen", "an address or a list of addresses") {
        None => vec!["127.0.0.1:8140".to_string()],
        Some(Listen::One(text)) => vec![text],
        Some(Listen::Many(texts)) => texts,
    };
    let mut addrs = Vec::new();
    for text in texts {
        match text.parse() {
            Ok(addr) => addrs.push(addr),
            Err(_) => node.problem("listen", format!("{text:?} is not an IP address and port")),
        }
    }
    if addrs.is_empty() {
        node.problem("listen", "at least one address is needed");
    }
    addrs
}

/// Whether `text` can be the base of absolute links: an http:// or
/// https:// URL with a host and no query.
pub(crate) fn is_public_url(text: &str) -> bool {
    text.parse::<http::Uri>().is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.authority().is_some()
            && uri.query().is_none()
    })
}

fn read_public_url(node: &Node) -> String {
    let default = "https://localhost:8140".to_string();
    let text: String = node.get("public_url", "a URL", default.clone());
    let url = text.trim_end_matches('/').to_string();
    if !is_public_url(&url) {
        node.problem(
            "public_url",
            "expected an http:// or https:// URL without a query",
        );
        return default;
    }
    url
}

fn read_tls(node: &Node) -> TlsSettings {
    let tls = TlsSettings {
        certificate: required_file(node, "certificate"),
        private_key: required_file(node, "private_key"),
    };
    node.finish();
    tls
}

/// A path that must be given and must name a readable file.
fn required_file(node: &Node, key: &str) -> PathBuf {
    let Some(path) = node.path(key) else {
        node.problem(key, "is required");
        return PathBuf::new();
    };
    check_readable(node, key, &path);
    path
}

fn check_readable(node: &Node, key: &str, path: &Path) {
    if let Err(err) = std::fs::File::open(path) {
        node.problem(key, format!("cannot read {}: {err}", path.display()));
    }
}

fn read_jwt(node: &Node, public_url: &str) -> JwtSettings {
    let private_key = node.path("private_key");
    if let Some(path) = &private_key {
        check_readable(node, "private_key", path);
    }
    let additional_public_keys = node.paths("additional_public_keys");
    for path in &additional_public_keys {
        check_readable(node, "additional_public_keys", path);
    }
    let jwt = JwtSettings {
        issuer: node.get("issuer", "a string", public_url.to_string()),
        private_key,
        additional_public_keys,
        lifetime: positive(node, "lifetime", Duration::from_secs(3600)),
        audience: node.opt("audience", "a string"),
        reset_lifetime: positive(node, "reset_lifetime", Duration::from_secs(12 * 3600)),
    };
    node.finish();
    jwt
}

fn positive(node: &Node, key: &str, default: Duration) -> Duration {
    let duration = node.duration(key, default);
    if duration.as_secs() == 0 {
        node.problem(key, "must be at least one second");
    }
    duration
}

fn read_backend(node: &Node) -> BackendSettings {
    let kind: String = node.get("kind", "memory, pam or ldap", "memory".to_string());
    // Every section present is validated, the chosen one is used: operators
    // keep several sections in one file and switch with `kind`.
    let memory = read_memory(&node.section("memory"));
    let ldap = (node.has("ldap") || kind == "ldap").then(|| read_ldap(&node.section("ldap")));
    let pam = read_pam(&node.section("pam"));
    node.finish();
    match (kind.as_str(), ldap) {
        ("ldap", Some(ldap)) => BackendSettings::Ldap(Box::new(ldap)),
        ("pam", _) => BackendSettings::Pam(pam),
        ("memory" | "ldap", _) => BackendSettings::Memory(memory),
        (other, _) => {
            node.problem(
                "kind",
                format!("expected memory, pam or ldap, not {other:?}"),
            );
            BackendSettings::Memory(memory)
        }
    }
}

fn read_pam(node: &Node) -> PamSettings {
    let service: String = node.get("service", "a PAM service name", "kisee".to_string());
    if service.is_empty() || service.contains(['/', '\0']) {
        node.problem("service", "expected the name of a file in /etc/pam.d");
    }
    let pam = PamSettings {
        service,
        groups: node.get("groups", "true or false", true),
        max_concurrent: node.get("max_concurrent", "a number", 16).max(1),
        timeout: positive(node, "timeout", crate::backend::pam::DEFAULT_TIMEOUT),
    };
    node.finish();
    pam
}

fn read_ldap(node: &Node) -> LdapSettings {
    let urls: Vec<String> = node.get("urls", "a list of ldap:// or ldaps:// URLs", Vec::new());
    if urls.is_empty() {
        node.problem("urls", "at least one directory URL is needed");
    }
    for url in &urls {
        if !(url.starts_with("ldap://") || url.starts_with("ldaps://")) {
            node.problem("urls", format!("{url:?} is not an ldap:// or ldaps:// URL"));
        }
    }
    let ca_certificate = node.path("ca_certificate");
    if let Some(path) = &ca_certificate {
        check_readable(node, "ca_certificate", path);
    }
    let ldap = LdapSettings {
        urls,
        starttls: node.get("starttls", "true or false", true),
        ca_certificate,
        timeout: positive(node, "timeout", Duration::from_secs(5)),
        retry_dead_after: node.duration("retry_dead_after", Duration::from_secs(10)),
        locate: read_ldap_locate(node),
        groups: node
            .has("groups")
            .then(|| read_ldap_groups(&node.section("groups"))),
        email_attribute: None,
        name_attribute: None,
        pool_size: node.get("pool_size", "a number", 8).max(1),
    };
    let attributes = node.section("attributes");
    let ldap = LdapSettings {
        email_attribute: attributes.opt("email", "an attribute name"),
        name_attribute: attributes.opt("name", "an attribute name"),
        ..ldap
    };
    attributes.finish();
    node.finish();
    ldap
}

fn read_ldap_locate(node: &Node) -> LdapLocate {
    let template: Option<String> = node.opt("bind_dn_template", "a DN with {username}");
    let search = node
        .has("search")
        .then(|| read_ldap_search(&node.section("search")));
    match (template, search) {
        (Some(template), None) => {
            if !template.contains("{username}") {
                node.problem("bind_dn_template", "must contain {username}");
            }
            LdapLocate::Template(template)
        }
        (None, Some(search)) => LdapLocate::Search(search),
        (Some(_), Some(search)) => {
            node.problem("", "give either bind_dn_template or search, not both");
            LdapLocate::Search(search)
        }
        (None, None) => {
            node.problem("", "give bind_dn_template or search to find users");
            LdapLocate::Template(String::new())
        }
    }
}

fn read_ldap_search(node: &Node) -> LdapSearch {
    let search = LdapSearch {
        base_dn: required_string(node, "base_dn"),
        filter: ldap_filter(node, "filter", "(uid={username})", &["{username}"]),
        bind_dn: node.opt("bind_dn", "a DN"),
        bind_password: node.secret("bind_password"),
    };
    if search.bind_dn.is_some() != search.bind_password.is_some() {
        node.problem("bind_password", "bind_dn and bind_password go together");
    }
    node.finish();
    search
}

fn read_ldap_groups(node: &Node) -> LdapGroups {
    let groups = LdapGroups {
        base_dn: required_string(node, "base_dn"),
        filter: ldap_filter(node, "filter", "(member={dn})", &["{dn}", "{username}"]),
        name_attribute: node.get("name_attribute", "an attribute name", "cn".to_string()),
    };
    node.finish();
    groups
}

fn required_string(node: &Node, key: &str) -> String {
    node.opt(key, "a string").unwrap_or_else(|| {
        node.problem(key, "is required");
        String::new()
    })
}

/// A filter in parentheses that uses one of `placeholders`.
fn ldap_filter(node: &Node, key: &str, default: &str, placeholders: &[&str]) -> String {
    let filter: String = node.get(key, "an LDAP filter", default.to_string());
    let balanced = filter.starts_with('(') && filter.ends_with(')');
    if !balanced || !placeholders.iter().any(|p| filter.contains(p)) {
        let uses = placeholders.join(" or ");
        node.problem(
            key,
            format!("expected a filter in parentheses that uses {uses}"),
        );
    }
    filter
}

fn read_memory(node: &Node) -> MemorySettings {
    let users: Vec<StaticUser> = node.list("users").iter().filter_map(read_user).collect();
    let mut names = HashSet::new();
    for user in &users {
        if !names.insert(user.username.as_str()) {
            node.problem(
                "users",
                format!("username {:?} is listed twice", user.username),
            );
        }
    }
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let memory = MemorySettings {
        users,
        users_file: node.path("users_file"),
        demo_root: node.get("demo_root", "true or false", false),
        registration: node.get("registration", "true or false", false),
        hash_concurrency: node.get("hash_concurrency", "a number", cpus).max(1),
    };
    node.finish();
    memory
}

fn read_user(node: &Node) -> Option<StaticUser> {
    let username: Option<String> = node.opt("username", "a string");
    let password_hash: Option<String> = node.opt("password_hash", "an Argon2 PHC string");
    if username.is_none() {
        node.problem("username", "is required");
    }
    match &password_hash {
        None => node.problem("password_hash", "is required"),
        Some(phc) if !crate::backend::hasher::is_supported_hash(phc) => node.problem(
            "password_hash",
            "expected an Argon2 PHC string ($argon2id$...)",
        ),
        Some(_) => {}
    }
    let email: Option<String> = node.opt("email", "an email address");
    if email
        .as_deref()
        .is_some_and(|e| !crate::policy::is_valid_email(e))
    {
        node.problem("email", "is not a valid email address");
    }
    let name = node.opt("name", "a string");
    let groups = node.get("groups", "a list of group names", Vec::new());
    node.finish();
    Some(StaticUser {
        username: username?,
        password_hash: password_hash?,
        email,
        name,
        groups,
    })
}

fn read_registration(node: &Node) -> RegistrationSettings {
    let password_min_length = node.get("password_min_length", "a number", 8);
    if !(1..=MAX_PASSWORD_BYTES).contains(&password_min_length) {
        node.problem(
            "password_min_length",
            format!("must be from 1 to {MAX_PASSWORD_BYTES}"),
        );
    }
    let default_pattern = crate::policy::DEFAULT_USERNAME_PATTERN;
    let pattern: String = node.get(
        "username_pattern",
        "a regular expression",
        default_pattern.into(),
    );
    let username_pattern = Regex::new(&pattern).unwrap_or_else(|err| {
        node.problem(
            "username_pattern",
            format!("is not a valid regular expression: {err}"),
        );
        crate::policy::default_username_regex()
    });
    node.finish();
    RegistrationSettings {
        password_min_length,
        username_pattern,
    }
}

fn read_recovery(node: &Node) -> RecoverySettings {
    let delivery: String = node.get("delivery", "log or file", "log".to_string());
    let folder = node.path("folder");
    let recovery = match (delivery.as_str(), folder) {
        ("log", _) => RecoverySettings::Log,
        ("file", Some(folder)) => RecoverySettings::File(folder),
        ("file", None) => {
            node.problem("folder", "is required when delivery is file");
            RecoverySettings::Log
        }
        (other, _) => {
            node.problem("delivery", format!("expected log or file, not {other:?}"));
            RecoverySettings::Log
        }
    };
    node.finish();
    recovery
}

fn read_throttle(node: &Node) -> ThrottleSettings {
    let store: String = node.get("store", "memory or redis", "memory".to_string());
    let redis_url: Option<String> = node.opt("redis_url", "a redis:// URL");
    let redis_url = match (store.as_str(), redis_url) {
        ("memory", _) => None,
        ("redis", Some(url)) if url.starts_with("redis://") => Some(url),
        ("redis", Some(url)) if url.starts_with("rediss://") => {
            node.problem(
                "redis_url",
                "TLS to Redis (rediss://) is not supported; use redis:// on a trusted network",
            );
            None
        }
        ("redis", _) => {
            node.problem(
                "redis_url",
                "a redis:// URL is required when store is redis",
            );
            None
        }
        (other, _) => {
            node.problem("store", format!("expected memory or redis, not {other:?}"));
            None
        }
    };
    let throttle = ThrottleSettings {
        per_user: read_limit(node, "per_user", "failures", 5, 300),
        per_client: read_limit(node, "per_client", "failures", 50, 300),
        registrations_per_client: read_limit(node, "registrations_per_client", "count", 10, 3600),
        redis_url,
        redis_timeout: positive_millis(node, "redis_timeout", Duration::from_millis(250)),
    };
    node.finish();
    throttle
}

fn positive_millis(node: &Node, key: &str, default: Duration) -> Duration {
    let duration = node.duration(key, default);
    if duration.is_zero() {
        node.problem(key, "must be more than zero");
    }
    duration
}

fn read_limit(node: &Node, key: &str, count_key: &str, count: usize, seconds: u64) -> Limit {
    let section = node.section(key);
    let limit = Limit {
        count: section.get(count_key, "a number (0 turns the limit off)", count),
        window: positive(&section, "window", Duration::from_secs(seconds)),
    };
    section.finish();
    limit
}

fn read_metrics(node: &Node) -> MetricsSettings {
    let text: Option<String> = node.opt("listen", "an IP address and port");
    let listen = text.and_then(|text| {
        text.parse()
            .map_err(|_| node.problem("listen", format!("{text:?} is not an IP address and port")))
            .ok()
    });
    node.finish();
    MetricsSettings { listen }
}

fn read_log(node: &Node) -> LogSettings {
    let level: String = node.get("level", "a log level", "info".to_string());
    if !matches!(
        level.as_str(),
        "error" | "warn" | "info" | "debug" | "trace"
    ) {
        node.problem("level", "expected error, warn, info, debug or trace");
    }
    let format: String = node.get("format", "text or json", "text".to_string());
    if !matches!(format.as_str(), "text" | "json") {
        node.problem("format", "expected text or json");
    }
    node.finish();
    LogSettings {
        level,
        json: format == "json",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str, vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Settings::from_yaml(
            yaml,
            Path::new("test.yaml"),
            Path::new("/nonexistent"),
            vars,
        )
    }

    fn problem_paths(result: Result<Settings, SettingsError>) -> Vec<String> {
        match result {
            Err(SettingsError::Invalid(problems)) => problems.into_iter().map(|p| p.path).collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_file_gives_the_documented_defaults() {
        let settings = parse("", &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            settings.server.listen,
            ["127.0.0.1:8140".parse().unwrap_or_else(|_| panic!())]
        );
        assert_eq!(settings.jwt.lifetime, Duration::from_secs(3600));
        assert_eq!(settings.jwt.issuer, "https://localhost:8140");
        assert_eq!(settings.registration.password_min_length, 8);
        assert!(settings.server.tls.is_none());
    }

    #[test]
    fn all_mistakes_are_reported_together() {
        let yaml =
            "server: {listn: x, max_body_bytes: lots}\njwt: {lifetime: soon}\nlog: {level: loud}\n";
        let paths = problem_paths(parse(yaml, &[]));
        assert_eq!(
            paths,
            [
                "server.max_body_bytes",
                "server.listn",
                "jwt.lifetime",
                "log.level"
            ]
        );
    }

    #[test]
    fn environment_variables_override_nested_keys() {
        let vars = [
            ("KISEE_JWT__ISSUER", "https://sso"),
            ("KISEE_SERVER__MAX_BODY_BYTES", "99"),
        ];
        let settings = parse("jwt: {issuer: x}\n", &vars).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.jwt.issuer, "https://sso");
        assert_eq!(settings.server.max_body_bytes, 99);
    }

    #[test]
    fn an_unknown_environment_override_is_reported_by_path() {
        let paths = problem_paths(parse("", &[("KISEE_SERVER__LISTN", "x")]));
        assert_eq!(paths, ["server.listn"]);
    }

    #[test]
    fn static_users_are_checked_field_by_field() {
        let yaml = "backend: {memory: {users: [{username: a, pasword_hash: x}]}}\n";
        let paths = problem_paths(parse(yaml, &[]));
        assert_eq!(
            paths,
            [
                "backend.memory.users[0].password_hash",
                "backend.memory.users[0].pasword_hash"
            ]
        );
    }
}
