//! A real Pasee 21.4.1 federating our Kisee: Pasee fetches our JSON-home
//! on every login, posts `{"login", "password"}` to the `jwt` link, checks
//! `tokens[0]` against the public keys in its settings (ours, from
//! `/public-key/`) and signs its own token for `kisee-<user>`.

use std::process::Command;

use serde_json::{Value, json};
use tempfile::TempDir;
use toml::Table;

use super::ours::{OursKisee, certificate_pem};
use super::peers::{Peer, free_port, installed};
use super::plain::{Reply, Req, send_ours, send_plain};
use crate::common::pki::{Pki, p256_key_pair};
use crate::common::tokens::{decode_unverified, verify_with_pem};
use crate::common::{Fixture, ISSUER, TestUser, alice};

/// The name Pasee knows our Kisee by: the prefix of its users' `sub`.
const IDP_NAME: &str = "kisee";

/// A running Pasee and its signing key.
struct Pasee {
    peer: Peer,
    _dir: TempDir,
    public_pem: String,
}

impl Pasee {
    /// Starts Pasee trusting `kisee` (its JSON-home endpoint, its public
    /// key from `/public-key/`), and `ca_pem` for HTTPS.
    async fn start(kisee: &OursKisee, ca_pem: &str, capabilities: &[&str]) -> Pasee {
        let program = installed("INTEROP_PASEE");
        let kisee_key = send_ours(&kisee.client, &Req::get("/public-key/"))
            .await
            .json();
        assert_eq!(kisee_key["algorithm"], "ES256", "{kisee_key}");
        let kisee_public_pem = kisee_key["public_key"].as_str().expect("a PEM");

        let dir = tempfile::tempdir().expect("temporary folder");
        let port = free_port();
        let (private_pem, public_pem) = p256_key_pair();
        let settings = PaseeSettings {
            port,
            private_pem: &private_pem,
            public_pem: &public_pem,
            kisee_endpoint: &format!("{}/", kisee.base),
            kisee_public_pem,
            capabilities,
            database: &dir.path().join("pasee.sqlite").display().to_string(),
        };
        let path = dir.path().join("settings.toml");
        std::fs::write(&path, settings.to_toml()).expect("write Pasee settings");
        let ca_path = dir.path().join("kisee-ca.pem");
        std::fs::write(&ca_path, ca_pem).expect("write the CA");

        // Pasee has no TLS setting: aiohttp verifies with Python's default
        // context, which reads the OpenSSL environment variables.
        let mut command = Command::new(program);
        command
            .arg("--settings-file")
            .arg(&path)
            .env("SSL_CERT_FILE", &ca_path)
            .current_dir(dir.path());
        let peer = Peer::start("Pasee", command, port, "/").await;
        Pasee {
            peer,
            _dir: dir,
            public_pem,
        }
    }

    async fn send(&self, req: &Req) -> Reply {
        send_plain(self.peer.addr, req).await
    }

    async fn login(&self, login: &str, password: &str) -> Reply {
        let body = json!({"login": login, "password": password});
        self.send(&Req::post(&format!("/tokens/?idp={IDP_NAME}")).json(&body))
            .await
    }

    fn context(&self, reply: &Reply) -> String {
        format!(
            "{} {}\n--- Pasee ---\n{}",
            reply.status,
            reply.text(),
            self.peer.output()
        )
    }
}

/// Pasee's settings.toml, in the format its `load_conf` reads.
struct PaseeSettings<'a> {
    port: u16,
    private_pem: &'a str,
    public_pem: &'a str,
    kisee_endpoint: &'a str,
    kisee_public_pem: &'a str,
    capabilities: &'a [&'a str],
    database: &'a str,
}

impl PaseeSettings<'_> {
    fn to_toml(&self) -> String {
        let field = |name: &str| {
            let mut field = Table::new();
            field.insert("name".into(), name.into());
            field.insert("required".into(), true.into());
            toml::Value::Table(field)
        };
        let mut idp_settings = Table::new();
        idp_settings.insert("public_keys".into(), vec![self.kisee_public_pem].into());
        let mut idp = Table::new();
        idp.insert("name".into(), IDP_NAME.into());
        idp.insert(
            "implementation".into(),
            "pasee.identity_providers.kisee.KiseeIdentityProvider".into(),
        );
        idp.insert("endpoint".into(), self.kisee_endpoint.into());
        idp.insert("capabilities".into(), self.capabilities.to_vec().into());
        idp.insert(
            "input_fields".into(),
            toml::Value::Array(vec![field("login"), field("password")]),
        );
        idp.insert("settings".into(), idp_settings.into());

        let mut storage_options = Table::new();
        storage_options.insert("file".into(), self.database.into());
        let mut storage = Table::new();
        storage.insert(
            "class".into(),
            "pasee.storage_backend.demo_backend.sqlite.DemoSqliteStorage".into(),
        );
        storage.insert("options".into(), storage_options.into());
        let mut jwt = Table::new();
        jwt.insert("iss".into(), "pasee.test".into());

        let mut root = Table::new();
        root.insert("host".into(), "127.0.0.1".into());
        root.insert("port".into(), i64::from(self.port).into());
        root.insert(
            "hostname".into(),
            format!("http://127.0.0.1:{}", self.port).into(),
        );
        root.insert("private_key".into(), self.private_pem.into());
        root.insert("public_key".into(), self.public_pem.into());
        root.insert("algorithm".into(), "ES256".into());
        root.insert("jwt".into(), jwt.into());
        root.insert("storage_backend".into(), storage.into());
        root.insert(
            "identity_providers".into(),
            toml::Value::Array(vec![idp.into()]),
        );
        toml::to_string(&root).expect("TOML")
    }
}

/// Our server with alice and open registration, reachable by Pasee.
async fn kisee_and_pasee(registration: bool, capabilities: &[&str]) -> (OursKisee, Pasee) {
    let pki = Pki::generate();
    let fixture = Fixture::new()
        .user(&alice())
        .set("backend.memory.registration", json!(registration));
    let kisee = OursKisee::start_reachable(fixture, &pki);
    let pasee = Pasee::start(&kisee, &certificate_pem(&pki.ca_der), capabilities).await;
    (kisee, pasee)
}

/// Checks a successful Pasee login and returns the access token's claims.
fn pasee_claims(pasee: &Pasee, reply: &Reply, user: &TestUser) -> serde_json::Map<String, Value> {
    assert_eq!(reply.status, 201, "{}", pasee.context(reply));
    let body = reply.json();
    let access = body["access_token"].as_str().expect("an access token");
    let refresh = body["refresh_token"].as_str().expect("a refresh token");

    let claims = verify_with_pem(&pasee.public_pem, access).claims;
    let expected_sub = format!("{IDP_NAME}-{}", user.username);
    assert_eq!(claims["sub"], json!(expected_sub), "{claims:?}");
    let refresh_claims = verify_with_pem(&pasee.public_pem, refresh).claims;
    assert_eq!(refresh_claims["sub"], json!(expected_sub));
    assert_eq!(refresh_claims["refresh_token"], json!(true));
    claims
}

#[tokio::test]
async fn a_login_through_pasee_gives_a_pasee_token_for_kisee_dash_user() {
    let (_kisee, pasee) = kisee_and_pasee(true, &["register_user"]).await;
    let alice = alice();

    let reply = pasee.login(&alice.username, &alice.password).await;

    let claims = pasee_claims(&pasee, &reply, &alice);
    // Pasee re-signs the claims it verified in our token.
    assert_eq!(claims["iss"], json!(ISSUER));
    assert_eq!(
        claims["groups"],
        json!([]),
        "groups come from Pasee's own storage"
    );
    let header =
        decode_unverified(reply.json()["access_token"].as_str().unwrap_or_default()).header;
    assert_eq!(header["alg"], "ES256");
}

#[tokio::test]
async fn pasee_refuses_what_kisee_refused() {
    let (_kisee, pasee) = kisee_and_pasee(true, &["register_user"]).await;
    let alice = alice();

    for (login, password) in [
        (alice.username.as_str(), "not-her-password"),
        ("nobody", "whatever-password"),
    ] {
        let reply = pasee.login(login, password).await;

        assert_eq!(reply.status, 403, "{login}: {}", pasee.context(&reply));
        let body = reply.json();
        assert_eq!(
            body["_meta"]["title"], "Can not authenticate on kisee",
            "{body}"
        );
        assert!(body.get("access_token").is_none(), "{body}");
    }
}

#[tokio::test]
async fn pasee_users_embeds_the_kisee_registration_link_which_registers() {
    let (kisee, pasee) = kisee_and_pasee(true, &["register_user"]).await;

    let reply = pasee.send(&Req::get("/users/")).await;

    assert_eq!(reply.status, 200, "{}", pasee.context(&reply));
    let link = reply.json()["register_user"].clone();
    let home = send_ours(&kisee.client, &Req::get("/")).await.json();
    assert_eq!(link["url"], home["resources"]["users"]["href"], "{link}");
    assert_eq!(link["action"], "post", "{link}");
    let fields: Vec<&str> = link["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(fields, ["username", "password", "email"], "{link}");

    // Registering through the advertised link makes a user Pasee can log in.
    let dave = TestUser::new("dave", "dave-Registered-4");
    let url = link["url"].as_str().expect("a URL");
    let path = url.strip_prefix(&kisee.base).expect("a link to our server");
    let body =
        json!({"username": dave.username, "password": dave.password, "email": "dave@example.org"});
    let created = send_ours(&kisee.client, &Req::post(path).json(&body)).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let reply = pasee.login(&dave.username, &dave.password).await;
    pasee_claims(&pasee, &reply, &dave);
}

#[tokio::test]
async fn a_read_only_kisee_serves_pasee_when_pasee_is_not_told_it_registers() {
    let (_kisee, pasee) = kisee_and_pasee(false, &[]).await;
    let alice = alice();

    let reply = pasee.login(&alice.username, &alice.password).await;
    pasee_claims(&pasee, &reply, &alice);

    let users = pasee.send(&Req::get("/users/")).await;
    assert_eq!(users.status, 200, "{}", pasee.context(&users));
    assert!(
        users.json().get("register_user").is_none(),
        "{}",
        users.text()
    );
}

/// Pasee takes `register_user` on trust: told a read-only Kisee registers,
/// its `/users/` fails, which is why the migration notes say to drop the
/// capability for PAM and read-only LDAP backends.
#[tokio::test]
async fn pasee_users_fails_when_told_a_read_only_kisee_registers() {
    let (_kisee, pasee) = kisee_and_pasee(false, &["register_user"]).await;

    let users = pasee.send(&Req::get("/users/")).await;

    assert_eq!(users.status, 500, "{}", pasee.context(&users));
}
