//! What the test directory holds: people, groups and the service account,
//! and the LDIF that loads them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The directory's suffix.
pub(crate) const SUFFIX: &str = "dc=example,dc=org";
/// Where people live.
pub(crate) const PEOPLE: &str = "ou=people,dc=example,dc=org";
/// Where groups live.
pub(crate) const GROUPS: &str = "ou=groups,dc=example,dc=org";
/// The service account that may read everything.
pub(crate) const READER_DN: &str = "cn=reader,dc=example,dc=org";
/// Its password.
pub(crate) const READER_PASSWORD: &str = "reader-Svc-Pw-83kq";
/// The directory manager (rootdn); never given to Kisee.
pub(crate) const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
/// Its password.
pub(crate) const ADMIN_PASSWORD: &str = "admin-Root-Pw-51zt";

/// One person in `ou=people`, named by `uid`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Person {
    pub(crate) uid: &'static str,
    pub(crate) cn: &'static str,
    pub(crate) mail: &'static str,
    pub(crate) password: &'static str,
}

impl Person {
    /// The entry's DN, with the uid escaped as RFC 4514 asks.
    pub(crate) fn dn(&self) -> String {
        format!("uid={},{PEOPLE}", escape_dn_value(self.uid))
    }

    /// The groups this person is a member of, sorted.
    pub(crate) fn groups(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = GROUP_MEMBERS
            .iter()
            .filter(|(_, members)| members.contains(&self.uid))
            .map(|(group, _)| *group)
            .collect();
        names.sort_unstable();
        names
    }
}

pub(crate) const ALICE: Person = person(
    "alice",
    "Alice Liddell",
    "alice@example.org",
    "alice-Ldap-Pw-17xv",
);

pub(crate) const BOB: Person = person("bob", "Bob Marley", "bob@example.org", "bob-Ldap-Pw-29mc");

pub(crate) const CAROL: Person = person(
    "carol",
    "Carol Danvers",
    "carol@example.org",
    "carol-Ldap-Pw-38np",
);

/// Two people with the same `cn`, for a search that finds several entries.
pub(crate) const TWINS: [Person; 2] = [
    person("twin1", "Twin", "twin1@example.org", "twin1-Ldap-Pw-44hd"),
    person("twin2", "Twin", "twin2@example.org", "twin2-Ldap-Pw-45je"),
];

/// People whose uid needs escaping in a DN, in a filter, or in LDIF.
pub(crate) const AWKWARD: [Person; 9] = [
    person(
        "smith, john",
        "John Smith",
        "john.smith@example.org",
        "awk1-Ldap-Pw-q1",
    ),
    person("a+b", "A Plus B", "a.plus.b@example.org", "awk2-Ldap-Pw-q2"),
    person(
        "star*user",
        "Star User",
        "star@example.org",
        "awk3-Ldap-Pw-q3",
    ),
    person(
        "paren(x)",
        "Paren X",
        "paren@example.org",
        "awk4-Ldap-Pw-q4",
    ),
    person(
        "back\\slash",
        "Back Slash",
        "backslash@example.org",
        "awk5-Ldap-Pw-q5",
    ),
    person("#hash", "Hash First", "hash@example.org", "awk6-Ldap-Pw-q6"),
    person(
        "semi;colon<gt>",
        "Semi Colon",
        "semi@example.org",
        "awk7-Ldap-Pw-q7",
    ),
    person(
        "quo\"te=eq",
        "Quote Equals",
        "quote@example.org",
        "awk8-Ldap-Pw-q8",
    ),
    person("josé", "José Martí", "jose@example.org", "awk9-Ldap-Pw-q9"),
];

const fn person(
    uid: &'static str,
    cn: &'static str,
    mail: &'static str,
    password: &'static str,
) -> Person {
    Person {
        uid,
        cn,
        mail,
        password,
    }
}

/// Every person in the directory.
pub(crate) fn people() -> Vec<Person> {
    let mut all = vec![ALICE, BOB, CAROL];
    all.extend(TWINS);
    all.extend(AWKWARD);
    all
}

/// Groups (`groupOfNames` under `ou=groups`) and the uids of their members.
pub(crate) const GROUP_MEMBERS: [(&str, &[&str]); 3] = [
    ("admins", &["alice"]),
    ("staff", &["alice", "bob", "smith, john"]),
    (
        "odd",
        &[
            "a+b",
            "star*user",
            "paren(x)",
            "back\\slash",
            "#hash",
            "semi;colon<gt>",
            "quo\"te=eq",
            "josé",
        ],
    ),
];

/// An attribute value escaped for a DN string (RFC 4514, section 2.4).
pub(crate) fn escape_dn_value(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    let mut escaped = String::new();
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\');
        let edge = (i == 0 && (c == '#' || c == ' ')) || (i == last && c == ' ');
        if special || edge {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// An assertion value escaped for a search filter (RFC 4515, section 3).
pub(crate) fn escape_filter_value(value: &str) -> String {
    let mut escaped = String::new();
    for c in value.chars() {
        match c {
            '*' => escaped.push_str("\\2a"),
            '(' => escaped.push_str("\\28"),
            ')' => escaped.push_str("\\29"),
            '\\' => escaped.push_str("\\5c"),
            '\0' => escaped.push_str("\\00"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// The seed LDIF; `hash` turns a clear password into a `userPassword` value.
pub(crate) fn ldif(hash: &dyn Fn(&str) -> String) -> String {
    let mut entries = vec![
        entry(
            SUFFIX,
            &[("objectClass", "top"), ("objectClass", "dcObject")],
        ) + &line("objectClass", "organization")
            + &line("dc", "example")
            + &line("o", "Example"),
        organizational_unit(PEOPLE, "people"),
        organizational_unit(GROUPS, "groups"),
        entry(
            READER_DN,
            &[
                ("objectClass", "simpleSecurityObject"),
                ("objectClass", "organizationalRole"),
                ("cn", "reader"),
                ("userPassword", &hash(READER_PASSWORD)),
            ],
        ),
    ];
    entries.extend(people().iter().map(|p| person_entry(p, hash)));
    entries.extend(GROUP_MEMBERS.iter().map(|(g, m)| group_entry(g, m)));
    entries.join("\n")
}

fn organizational_unit(dn: &str, ou: &str) -> String {
    entry(dn, &[("objectClass", "organizationalUnit"), ("ou", ou)])
}

fn person_entry(person: &Person, hash: &dyn Fn(&str) -> String) -> String {
    let surname = person.cn.rsplit(' ').next().unwrap_or(person.cn);
    entry(
        &person.dn(),
        &[
            ("objectClass", "inetOrgPerson"),
            ("uid", person.uid),
            ("cn", person.cn),
            ("sn", surname),
            ("mail", person.mail),
            ("userPassword", &hash(person.password)),
        ],
    )
}

fn group_entry(name: &str, members: &[&str]) -> String {
    let dn = format!("cn={name},{GROUPS}");
    let mut text = entry(&dn, &[("objectClass", "groupOfNames"), ("cn", name)]);
    for uid in members {
        let person = people().into_iter().find(|p| p.uid == *uid);
        let person = person.unwrap_or_else(|| panic!("no person {uid:?} for group {name}"));
        text += &line("member", &person.dn());
    }
    text
}

fn entry(dn: &str, attributes: &[(&str, &str)]) -> String {
    let mut text = line("dn", dn);
    for (name, value) in attributes {
        text += &line(name, value);
    }
    text
}

/// One LDIF line: plain when the value is a SAFE-STRING, base64 otherwise.
fn line(name: &str, value: &str) -> String {
    let safe_start = !value.starts_with([' ', ':', '<']);
    let safe_chars = value
        .chars()
        .all(|c| c.is_ascii() && !matches!(c, '\0' | '\n' | '\r'));
    let safe_end = !value.ends_with(' ');
    if safe_start && safe_chars && safe_end {
        format!("{name}: {value}\n")
    } else {
        format!("{name}:: {}\n", STANDARD.encode(value))
    }
}
