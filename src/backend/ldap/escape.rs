//! Placing untrusted values into DN templates and search filters.
//!
//! A username goes into a DN escaped by RFC 4514 and into a filter escaped
//! by RFC 4515, so that no username can move a DN or widen a filter. The
//! substitution is a single pass: a value that itself contains `{dn}` or
//! `{username}` is never substituted again.

use std::borrow::Cow;

pub(super) use ldap3::{dn_escape, ldap_escape};

/// Replaces each `{name}` of `template` that `values` names; other braces
/// are kept as they are. Values must already be escaped for their place.
pub(super) fn fill(template: &str, values: &[(&str, Cow<'_, str>)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        let matched = values.iter().find(|(name, _)| {
            tail.strip_prefix('{')
                .and_then(|t| t.strip_prefix(*name))
                .is_some_and(|t| t.starts_with('}'))
        });
        match matched {
            Some((name, value)) => {
                out.push_str(value);
                rest = &tail[name.len() + 2..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The DN for `username` under a `bind_dn_template`.
pub(super) fn user_dn(template: &str, username: &str) -> String {
    fill(template, &[("username", dn_escape(username))])
}

/// A filter with `{username}` and `{dn}` escaped for a filter.
pub(super) fn filter(template: &str, username: &str, dn: &str) -> String {
    fill(
        template,
        &[("username", ldap_escape(username)), ("dn", ldap_escape(dn))],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_cannot_widen_a_filter() {
        assert_eq!(filter("(uid={username})", "*", ""), "(uid=\\2a)");
        assert_eq!(
            filter("(uid={username})", "a)(uid=*", ""),
            "(uid=a\\29\\28uid=\\2a)"
        );
        assert_eq!(
            filter("(uid={username})", "back\\slash", ""),
            "(uid=back\\5cslash)"
        );
    }

    #[test]
    fn a_username_cannot_move_a_dn() {
        let template = "uid={username},ou=people,dc=example,dc=org";
        assert_eq!(
            user_dn(template, "alice,ou=admins"),
            "uid=alice\\2cou\\3dadmins,ou=people,dc=example,dc=org"
        );
        assert_eq!(
            user_dn(template, "a+b"),
            "uid=a\\2bb,ou=people,dc=example,dc=org"
        );
        assert_eq!(
            user_dn(template, "#x "),
            "uid=\\23x\\20,ou=people,dc=example,dc=org"
        );
    }

    #[test]
    fn values_are_substituted_once() {
        assert_eq!(
            filter("(&(uid={username})(member={dn}))", "{dn}", "cn=x"),
            "(&(uid={dn})(member=cn=x))"
        );
        assert_eq!(
            fill("{other}{username}", &[("username", "u".into())]),
            "{other}u"
        );
    }
}
