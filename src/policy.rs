//! The rules new usernames, passwords and email addresses must follow.

use regex::Regex;

use crate::settings::{MAX_PASSWORD_BYTES, MAX_USERNAME_BYTES, RegistrationSettings};

/// The username pattern used when the settings give none.
pub const DEFAULT_USERNAME_PATTERN: &str = "^[A-Za-z0-9._@-]{1,64}$";

/// The default pattern, compiled.
#[allow(
    clippy::expect_used,
    reason = "a constant pattern, compiled in the tests below"
)]
pub fn default_username_regex() -> Regex {
    Regex::new(DEFAULT_USERNAME_PATTERN).expect("the default username pattern compiles")
}

/// A rule that a proposed username or password breaks. Its message is the
/// title of the 400 answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    /// The username does not match `registration.username_pattern`.
    #[error("Username does not match the allowed pattern")]
    Username,
    /// The password is shorter than `registration.password_min_length`.
    #[error("Password is too short")]
    PasswordTooShort,
    /// The password is longer than any hash function should be handed.
    #[error("Password is too long")]
    PasswordTooLong,
    /// The email address is not an address.
    #[error("Email is not valid")]
    Email,
}

/// Checks a proposed username against the configured pattern.
pub fn check_username(rules: &RegistrationSettings, username: &str) -> Result<(), PolicyViolation> {
    let fits = username.len() <= MAX_USERNAME_BYTES && rules.username_pattern.is_match(username);
    if fits {
        Ok(())
    } else {
        Err(PolicyViolation::Username)
    }
}

/// Checks a proposed password's length, counted in characters.
pub fn check_password(rules: &RegistrationSettings, password: &str) -> Result<(), PolicyViolation> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PolicyViolation::PasswordTooLong);
    }
    if password.chars().count() < rules.password_min_length {
        return Err(PolicyViolation::PasswordTooShort);
    }
    Ok(())
}

/// A plain shape check: one `@`, a non-empty local part, a dotted domain of
/// letters, digits and hyphens, no spaces or control characters. Deliverability
/// is for the mail system to decide.
pub fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .chars()
            .all(|c| c.is_ascii_graphic() && !"@<>()[]\\,;:\"".contains(c));
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    local_ok && labels_ok && domain.contains('.') && email.len() <= 254
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> RegistrationSettings {
        RegistrationSettings {
            password_min_length: 8,
            username_pattern: default_username_regex(),
        }
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(is_valid_email("alice@example.org"));
        assert!(is_valid_email("a.b+tag@mail.example.co"));
        for bad in [
            "alice",
            "@example.org",
            "alice@",
            "alice@example",
            "a b@example.org",
            "a@b@c.org",
            "a@-x.org",
            "a@x..org",
        ] {
            assert!(!is_valid_email(bad), "{bad} was accepted");
        }
    }

    #[test]
    fn passwords_are_counted_in_characters_and_bounded_in_bytes() {
        assert_eq!(
            check_password(&rules(), "ééééééé"),
            Err(PolicyViolation::PasswordTooShort)
        );
        assert_eq!(check_password(&rules(), "éééééééé"), Ok(()));
        let huge = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(
            check_password(&rules(), &huge),
            Err(PolicyViolation::PasswordTooLong)
        );
    }

    #[test]
    fn usernames_follow_the_pattern() {
        assert_eq!(check_username(&rules(), "alice.smith@corp"), Ok(()));
        assert_eq!(
            check_username(&rules(), "alice smith"),
            Err(PolicyViolation::Username)
        );
        assert_eq!(check_username(&rules(), ""), Err(PolicyViolation::Username));
    }
}
