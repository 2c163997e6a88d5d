//! The server entry as a small ordered tree, before it becomes JSON, TOML or YAML.
//!
//! Owns [`Node`] (an ordered value: the order of keys is the order a client's docs show)
//! and [`Server`] (what the entry describes: a command to start, or a URL to reach). The
//! client modules build a `Node` from a `Server`; the format modules write it. Knows no
//! client and no file format.

use jsonc_parser::cst::CstInputValue;

/// An ordered value: strings, booleans, integers, lists and maps with keys in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Str(String),
    Bool(bool),
    Int(i64),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    /// A string.
    pub(crate) fn str(value: &str) -> Node {
        Node::Str(value.to_owned())
    }

    /// A list of strings.
    pub(crate) fn strs<'a>(values: impl IntoIterator<Item = &'a String>) -> Node {
        Node::List(values.into_iter().map(|v| Node::str(v)).collect())
    }

    /// A map of string values, in the order given.
    pub(crate) fn string_map(pairs: &[(String, String)]) -> Node {
        Node::Map(
            pairs
                .iter()
                .map(|(key, value)| (key.clone(), Node::str(value)))
                .collect(),
        )
    }

    /// A map from `(key, value)` pairs.
    pub(crate) fn map<const N: usize>(pairs: [(&str, Node); N]) -> Node {
        Node::Map(
            pairs
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect(),
        )
    }

    /// Appends `key: value` when this is a map (builders use it for optional fields).
    pub(crate) fn push(&mut self, key: &str, value: Node) {
        if let Node::Map(fields) = self {
            fields.push((key.to_owned(), value));
        }
    }

    /// The same value as serde JSON.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Node::Str(s) => serde_json::Value::String(s.clone()),
            Node::Bool(b) => serde_json::Value::Bool(*b),
            Node::Int(n) => serde_json::Value::from(*n),
            Node::List(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            Node::Map(fields) => serde_json::Value::Object(
                fields
                    .iter()
                    .map(|(key, value)| (key.clone(), value.to_json()))
                    .collect(),
            ),
        }
    }

    /// The same value for the JSON concrete syntax tree editor.
    pub(crate) fn to_cst(&self) -> CstInputValue {
        match self {
            Node::Str(s) => CstInputValue::String(s.clone()),
            Node::Bool(b) => CstInputValue::Bool(*b),
            Node::Int(n) => CstInputValue::Number(n.to_string()),
            Node::List(items) => CstInputValue::Array(items.iter().map(Node::to_cst).collect()),
            Node::Map(fields) => CstInputValue::Object(
                fields
                    .iter()
                    .map(|(key, value)| (key.clone(), value.to_cst()))
                    .collect(),
            ),
        }
    }
}

/// What the entry makes the client do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Server {
    /// Start `command args…` and speak MCP over its stdio.
    Stdio {
        command: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
    },
    /// Reach a running server over Streamable HTTP.
    Remote { url: String, key: Option<Key> },
}

/// How the server key reaches the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    /// The client reads the key from this environment variable when it connects.
    Reference(String),
    /// The key itself, written into the file (`--allow-literal-key`).
    Literal(String),
}

impl Key {
    /// `Authorization` header value for clients that expand variables as `before VAR after`
    /// (for example `${` and `}`), or that hold the literal.
    pub(crate) fn bearer(&self, before: &str, after: &str) -> String {
        match self {
            Key::Reference(var) => format!("Bearer {before}{var}{after}"),
            Key::Literal(value) => format!("Bearer {value}"),
        }
    }
}

/// `{"Authorization": …}` for the key, with variable syntax `before VAR after`.
/// The usual stdio entry: `type` (when the client wants one), `command`, `args`, and
/// `env` when there is any.
pub(crate) fn stdio_node(
    kind: Option<&str>,
    command: &str,
    args: &[String],
    env: &[(String, String)],
) -> Node {
    let mut node = match kind {
        Some(kind) => Node::map([
            ("type", Node::str(kind)),
            ("command", Node::str(command)),
            ("args", Node::strs(args)),
        ]),
        None => Node::map([("command", Node::str(command)), ("args", Node::strs(args))]),
    };
    if !env.is_empty() {
        node.push("env", Node::string_map(env));
    }
    node
}

pub(crate) fn auth_headers(key: &Key, before: &str, after: &str) -> Node {
    Node::map([("Authorization", Node::Str(key.bearer(before, after)))])
}
