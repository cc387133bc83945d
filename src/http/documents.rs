//! The hypermedia documents the API answers with: coreapi documents, links
//! and fields, rendered either in coreapi form or in plain JSON form, and
//! the absolute URLs they carry.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};

/// Characters left as they are in a path segment: RFC 3986's unreserved set.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment (a username in `/users/{username}/`).
pub fn encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// Joins paths onto the configured public URL, keeping its path prefix.
#[derive(Debug, Clone)]
pub struct Urls {
    base: String,
    prefix: String,
}

impl Urls {
    /// `public_url` has no trailing slash, and may carry a path prefix.
    pub fn new(public_url: &str) -> Self {
        let after_scheme = public_url
            .split_once("://")
            .map_or(public_url, |(_, rest)| rest);
        let prefix = after_scheme.find('/').map_or("", |at| &after_scheme[at..]);
        Self {
            base: public_url.to_string(),
            prefix: prefix.to_string(),
        }
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn absolute(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `path` as seen from the client: with the public URL's prefix.
    pub fn path(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }

    /// The path of a user resource, its name percent-encoded.
    pub fn user_path(username: &str) -> String {
        format!("/users/{}/", encode_segment(username))
    }
}

/// Which form the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `_type`-tagged coreapi JSON (the default).
    CoreApi,
    /// Content only: links become their URL, fields their name.
    Plain,
}

/// A field of a link.
#[derive(Debug, Clone)]
pub struct Field {
    name: &'static str,
    required: bool,
    schema: Value,
}

impl Field {
    /// A required field.
    pub fn required(name: &'static str, schema: Value) -> Self {
        Self {
            name,
            required: true,
            schema,
        }
    }

    /// An optional field.
    pub fn optional(name: &'static str, schema: Value) -> Self {
        Self {
            name,
            required: false,
            schema,
        }
    }

    fn render(&self, form: Form) -> Value {
        if form == Form::Plain {
            return json!(self.name);
        }
        let mut field = Map::new();
        field.insert("name".into(), json!(self.name));
        if self.required {
            field.insert("required".into(), json!(true));
        }
        field.insert("schema".into(), self.schema.clone());
        Value::Object(field)
    }
}

/// A link: what a client may do next.
#[derive(Debug, Clone)]
pub struct Link {
    /// Absolute URL.
    pub url: String,
    /// HTTP method, lower case as coreapi writes it.
    pub action: &'static str,
    /// Left out of the rendering when empty.
    pub title: &'static str,
    /// What the link does.
    pub description: &'static str,
    /// What to send.
    pub fields: Vec<Field>,
}

impl Link {
    fn render(&self, form: Form) -> Value {
        if form == Form::Plain {
            return json!(self.url);
        }
        let mut link = Map::new();
        link.insert("_type".into(), json!("link"));
        link.insert("url".into(), json!(self.url));
        link.insert("action".into(), json!(self.action));
        if !self.title.is_empty() {
            link.insert("title".into(), json!(self.title));
        }
        link.insert("description".into(), json!(self.description));
        let fields: Vec<Value> = self.fields.iter().map(|f| f.render(form)).collect();
        link.insert("fields".into(), Value::Array(fields));
        Value::Object(link)
    }
}

/// A document: a titled resource with content and links.
#[derive(Debug, Clone)]
pub struct Document {
    url: String,
    title: &'static str,
    entries: Vec<(&'static str, Entry)>,
}

#[derive(Debug, Clone)]
enum Entry {
    Value(Value),
    Link(Link),
}

impl Document {
    /// An empty document at `url`.
    pub fn new(url: String, title: &'static str) -> Self {
        Self {
            url,
            title,
            entries: Vec::new(),
        }
    }

    /// Adds plain content under `key`.
    pub fn value(mut self, key: &'static str, value: Value) -> Self {
        self.entries.push((key, Entry::Value(value)));
        self
    }

    /// Adds a link under `key`.
    pub fn link(mut self, key: &'static str, link: Link) -> Self {
        self.entries.push((key, Entry::Link(link)));
        self
    }

    /// The JSON for the client's form.
    pub fn render(&self, form: Form) -> Value {
        let mut doc = Map::new();
        if form == Form::CoreApi {
            doc.insert("_type".into(), json!("document"));
            doc.insert(
                "_meta".into(),
                json!({"url": self.url, "title": self.title}),
            );
        }
        for (key, entry) in &self.entries {
            let rendered = match entry {
                Entry::Value(value) => value.clone(),
                Entry::Link(link) => link.render(form),
            };
            doc.insert((*key).to_string(), rendered);
        }
        Value::Object(doc)
    }
}

/// `{"type": "string"}`.
pub fn string_schema() -> Value {
    json!({"type": "string"})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_url_prefix_is_kept_in_absolute_urls_and_paths() {
        let urls = Urls::new("https://sso.example.com/kisee");
        assert_eq!(urls.absolute("/jwt/"), "https://sso.example.com/kisee/jwt/");
        assert_eq!(urls.path("/jwt/abc"), "/kisee/jwt/abc");
        let bare = Urls::new("https://localhost:8140");
        assert_eq!(bare.path("/jwt/abc"), "/jwt/abc");
    }

    #[test]
    fn usernames_are_percent_encoded_in_paths() {
        assert_eq!(Urls::user_path("a b@c/d"), "/users/a%20b%40c%2Fd/");
    }

    #[test]
    fn plain_form_keeps_only_content() {
        let link = Link {
            url: "https://k/jwt/".into(),
            action: "post",
            title: "",
            description: "d",
            fields: vec![Field::required("username", string_schema())],
        };
        let doc = Document::new("https://k/jwt/".into(), "T")
            .value("tokens", json!([]))
            .link("add", link);
        assert_eq!(
            doc.render(Form::Plain),
            json!({"tokens": [], "add": "https://k/jwt/"})
        );
        let coreapi = doc.render(Form::CoreApi);
        assert_eq!(coreapi["_meta"]["title"], "T");
        assert!(coreapi["add"].get("title").is_none());
        assert_eq!(
            coreapi["add"]["fields"][0],
            json!({"name": "username", "required": true, "schema": {"type": "string"}})
        );
    }
}
