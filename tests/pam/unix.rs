//! The host's own PAM with pam_unix, no pam_wrapper: a real account with a
//! real password in /etc/shadow, and a service file in /etc/pam.d. Root only.

use serde_json::json;

use crate::common::Fixture;
use crate::host::{PamService, SystemUser, assert_root};
use crate::{accepted_claims, assert_logs_hold_none_of, assert_refused, password, try_login};

const PAM_UNIX_STACK: &str = "auth required pam_unix.so\naccount required pam_unix.so\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pam_unix_accepts_the_accounts_password_and_refuses_a_wrong_one() {
    assert_root();
    let preload = std::env::var("LD_PRELOAD").unwrap_or_default();
    assert!(
        !preload.contains("pam_wrapper"),
        "the tests run under pam_wrapper: {preload}"
    );
    let user = SystemUser::create(1);
    let (secret, wrong) = (password("unix"), password("wrong"));
    user.set_password(&secret);
    let service = PamService::create(PAM_UNIX_STACK);
    let backend = json!({"kind": "pam", "pam": {"service": service.name, "groups": true}});
    let server = Fixture::new().set("backend", backend).start();

    // pam_unix delays every failure by about two seconds: run them together.
    let (right, refused, unknown) = tokio::join!(
        try_login(&server, &user.name, &secret),
        try_login(&server, &user.name, &wrong),
        try_login(&server, "kt-no-such-account", &secret),
    );

    let claims = accepted_claims(&server, &right).await;
    assert_eq!(claims["sub"], user.name.as_str());
    assert_eq!(claims["groups"], json!(user.group_names()));
    assert_refused(&refused);
    assert_refused(&unknown);
    assert_logs_hold_none_of(&server, &[&secret, &wrong]);
}
