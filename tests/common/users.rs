//! Static accounts for the settings file, with their passwords hashed here.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde_json::{Value, json};

/// One account: what goes into `backend.memory.users`, and its clear password.
#[derive(Clone, Debug)]
pub(crate) struct TestUser {
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) email: Option<String>,
    pub(crate) groups: Vec<String>,
    pub(crate) name: Option<String>,
    /// Hash with the library's default (expensive) parameters.
    pub(crate) real_cost: bool,
}

impl TestUser {
    pub(crate) fn new(username: &str, password: &str) -> Self {
        TestUser {
            username: username.to_owned(),
            password: password.to_owned(),
            email: None,
            groups: Vec::new(),
            name: None,
            real_cost: false,
        }
    }

    pub(crate) fn email(mut self, email: &str) -> Self {
        self.email = Some(email.to_owned());
        self
    }

    pub(crate) fn groups(mut self, groups: &[&str]) -> Self {
        self.groups = groups.iter().map(|g| (*g).to_owned()).collect();
        self
    }

    pub(crate) fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    pub(crate) fn real_cost(mut self) -> Self {
        self.real_cost = true;
        self
    }

    /// The entry for `backend.memory.users`.
    pub(crate) fn settings_entry(&self) -> Value {
        let hash = if self.real_cost {
            hash_password(&self.password, Params::default())
        } else {
            cheap_hash(&self.password)
        };
        let mut entry = json!({"username": self.username, "password_hash": hash});
        if let Some(email) = &self.email {
            entry["email"] = json!(email);
        }
        if !self.groups.is_empty() {
            entry["groups"] = json!(self.groups);
        }
        if let Some(name) = &self.name {
            entry["name"] = json!(name);
        }
        entry
    }
}

/// Alice has everything a token can carry: email, groups and a name.
pub(crate) fn alice() -> TestUser {
    TestUser::new("alice", "alice-Correct-Horse-1")
        .email("alice@example.org")
        .groups(&["admins", "staff"])
        .name("Alice Liddell")
}

/// Bob has an email only.
pub(crate) fn bob() -> TestUser {
    TestUser::new("bob", "bob-Battery-Staple-2").email("bob@example.org")
}

/// Carol has no email: password recovery cannot reach her.
pub(crate) fn carol() -> TestUser {
    TestUser::new("carol", "carol-Tr0ub4dor-3")
}

/// An Argon2id PHC string with parameters cheap enough for tests.
pub(crate) fn cheap_hash(password: &str) -> String {
    hash_password(
        password,
        Params::new(256, 1, 1, None).expect("argon2 params"),
    )
}

fn hash_password(password: &str, params: Params) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hash")
        .to_string()
}

/// Whether a PHC string is a hash of this password.
pub(crate) fn hash_matches(phc: &str, password: &str) -> bool {
    let parsed = PasswordHash::new(phc).expect("a PHC string");
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}
