//! A small OpenAPI 3.0 validator for contract tests: loads `openapi/machines.yaml`,
//! resolves `$ref`s, turns each schema into JSON Schema 2020-12 (OpenAPI `nullable`
//! becomes a `null` alternative), matches a concrete `(method, path)` to a path template
//! and checks requests (query, headers, JSON body) and responses (status documented,
//! body against the schema).
//!
//! Strict by design: an object schema that lists `properties` and says nothing about
//! `additionalProperties` accepts no other field, so a misspelt field name in the
//! simulator or the client is caught. Knows nothing of the simulator or the client: it
//! sees plain [`CapturedRequest`] / [`CapturedResponse`] values.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Where the spec lives, from the package root.
pub fn spec_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/machines.yaml")
}

/// A request as it went over the wire.
#[derive(Debug, Clone, Default)]
pub struct CapturedRequest {
    pub method: String,
    pub path: String,
    /// Decoded query pairs in order, repeated keys kept.
    pub query: Vec<(String, String)>,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl CapturedRequest {
    /// Builds one from a method and a path that may carry a `?query`.
    pub fn new(method: &str, path_and_query: &str) -> Self {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, parse_query(q)),
            None => (path_and_query, Vec::new()),
        };
        Self {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            query,
            ..Self::default()
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.body = serde_json::to_vec(body).unwrap_or_default();
        self.headers
            .push(("content-type".into(), "application/json".into()));
        self
    }

    fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A response as it came back.
#[derive(Debug, Clone, Default)]
pub struct CapturedResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl CapturedResponse {
    pub fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            content_type: Some("application/json".into()),
            body: serde_json::to_vec(body).unwrap_or_default(),
        }
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            content_type: None,
            body: Vec::new(),
        }
    }
}

/// Splits a raw query string into decoded pairs.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// One way a request or response departs from the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The operationId, or `METHOD /path` when nothing matched.
    pub operation: String,
    /// The response status, for response violations.
    pub status: Option<u16>,
    /// `request` or `response`, then where: `query.limit`, `body/config/guest`, …
    pub location: String,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(
                f,
                "{} [{s}] {}: {}",
                self.operation, self.location, self.message
            ),
            None => write!(f, "{} {}: {}", self.operation, self.location, self.message),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParamIn {
    Path,
    Query,
    Header,
}

#[derive(Debug)]
struct Param {
    name: String,
    location: ParamIn,
    required: bool,
    /// For a templated query name such as `metadata.{key}`: the part before `{`.
    prefix: Option<String>,
    comma_separated: bool,
    /// The converted JSON Schema (for the scalar type) and its compiled form.
    schema: Value,
    validator: jsonschema::Validator,
}

#[derive(Debug)]
struct Body {
    required: bool,
    /// Media type → compiled schema.
    content: BTreeMap<String, jsonschema::Validator>,
}

#[derive(Debug)]
struct Operation {
    id: String,
    method: String,
    template: String,
    /// `None` for a `{param}` segment.
    segments: Vec<Option<String>>,
    params: Vec<Param>,
    body: Option<Body>,
    /// Status key (`200`, `4XX`, `default`) → media type → compiled schema.
    responses: BTreeMap<String, BTreeMap<String, jsonschema::Validator>>,
}

impl Operation {
    fn literal_segments(&self) -> usize {
        self.segments.iter().filter(|s| s.is_some()).count()
    }

    fn matches_path(&self, segments: &[&str]) -> bool {
        self.segments.len() == segments.len()
            && self.segments.iter().zip(segments).all(|(t, s)| match t {
                Some(lit) => lit == s,
                None => !s.is_empty(),
            })
    }
}

/// The loaded spec: every operation, compiled.
#[derive(Debug)]
pub struct Spec {
    operations: Vec<Operation>,
}

/// Turns the spec's YAML into JSON, or says why not.
pub fn load_document(path: &Path) -> Result<Value, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    serde_yaml::from_str::<Value>(&text).map_err(|e| format!("parse {}: {e}", path.display()))
}

impl Spec {
    /// Loads and compiles `openapi/machines.yaml`.
    pub fn load() -> Result<Self, String> {
        Self::from_document(&load_document(&spec_path())?)
    }

    pub fn from_document(doc: &Value) -> Result<Self, String> {
        let paths = doc
            .get("paths")
            .and_then(Value::as_object)
            .ok_or("spec has no `paths` object")?;
        let mut operations = Vec::new();
        for (template, item) in paths {
            let item = item
                .as_object()
                .ok_or(format!("path {template} is not an object"))?;
            let shared_params = item
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
                let Some(op) = item.get(method) else { continue };
                operations.push(compile_operation(
                    doc,
                    template,
                    method,
                    op,
                    &shared_params,
                )?);
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for op in &operations {
            if !seen.insert(op.id.clone()) {
                return Err(format!("duplicate operationId {}", op.id));
            }
        }
        Ok(Self { operations })
    }

    /// Every operationId, in spec order.
    pub fn operation_ids(&self) -> Vec<String> {
        self.operations.iter().map(|o| o.id.clone()).collect()
    }

    /// The operationId that `(method, path)` resolves to.
    pub fn operation_id(&self, method: &str, path: &str) -> Result<String, Violation> {
        self.find(method, path).map(|o| o.id.clone())
    }

    fn find(&self, method: &str, path: &str) -> Result<&Operation, Violation> {
        let path = path.split('?').next().unwrap_or(path);
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        let method = method.to_ascii_lowercase();
        let on_path: Vec<&Operation> = self
            .operations
            .iter()
            .filter(|o| o.matches_path(&segments))
            .collect();
        let unmatched = |message: String| Violation {
            operation: format!("{} {path}", method.to_ascii_uppercase()),
            status: None,
            location: "request".into(),
            message,
        };
        if on_path.is_empty() {
            return Err(unmatched("no documented path matches".into()));
        }
        on_path
            .iter()
            .filter(|o| o.method == method)
            .max_by_key(|o| o.literal_segments())
            .copied()
            .ok_or_else(|| {
                let templates: Vec<String> = on_path
                    .iter()
                    .map(|o| format!("{} {}", o.method.to_ascii_uppercase(), o.template))
                    .collect();
                unmatched(format!(
                    "method not documented here (documented: {})",
                    templates.join(", ")
                ))
            })
    }

    /// Checks a request: path, query parameters, headers and JSON body.
    pub fn validate_request(&self, req: &CapturedRequest) -> Vec<Violation> {
        let op = match self.find(&req.method, &req.path) {
            Ok(op) => op,
            Err(v) => return vec![v],
        };
        let mut out = Vec::new();
        let mut push = |location: String, message: String| {
            out.push(Violation {
                operation: op.id.clone(),
                status: None,
                location,
                message,
            });
        };

        // Path parameters.
        let segments: Vec<&str> = req.path.split('/').skip(1).collect();
        for (template, value) in op.segments.iter().zip(&segments) {
            if template.is_some() {
                continue;
            }
            // Path params are all strings in this spec; nothing beyond presence to check.
            if value.is_empty() {
                push("request.path".into(), "empty path parameter".into());
            }
        }

        // Query parameters.
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (name, value) in &req.query {
            let param = op.params.iter().find(|p| {
                p.location == ParamIn::Query
                    && match &p.prefix {
                        Some(prefix) => {
                            name.starts_with(prefix.as_str()) && name.len() > prefix.len()
                        }
                        None => &p.name == name,
                    }
            });
            let Some(param) = param else {
                push(
                    format!("request.query.{name}"),
                    "query parameter not documented".into(),
                );
                continue;
            };
            *counts.entry(param.name.as_str()).or_default() += 1;
            let pieces: Vec<&str> = if param.comma_separated {
                value.split(',').collect()
            } else {
                vec![value.as_str()]
            };
            for piece in pieces {
                if let Some(msg) = check_scalar(param, piece) {
                    push(format!("request.query.{name}"), msg);
                }
            }
        }
        for param in op.params.iter().filter(|p| p.location == ParamIn::Query) {
            let n = counts.get(param.name.as_str()).copied().unwrap_or(0);
            if param.required && n == 0 {
                push(
                    format!("request.query.{}", param.name),
                    "required query parameter missing".into(),
                );
            }
            if n > 1 && param.prefix.is_none() && !param.comma_separated {
                push(
                    format!("request.query.{}", param.name),
                    format!("given {n} times"),
                );
            }
        }

        // Header parameters.
        for param in op.params.iter().filter(|p| p.location == ParamIn::Header) {
            let values = req.header_values(&param.name);
            if param.required && values.is_empty() {
                push(
                    format!("request.header.{}", param.name),
                    "required header missing".into(),
                );
            }
            for v in values {
                if let Some(msg) = check_scalar(param, v) {
                    push(format!("request.header.{}", param.name), msg);
                }
            }
        }

        // Body.
        let has_body = !req.body.iter().all(u8::is_ascii_whitespace);
        match (&op.body, has_body) {
            (None, true) => push("request.body".into(), "request body not documented".into()),
            (Some(body), false) if body.required => push(
                "request.body".into(),
                "required request body missing".into(),
            ),
            (Some(body), true) => {
                let media = req
                    .header_values("content-type")
                    .first()
                    .map(|c| media_type(c))
                    .unwrap_or_default();
                match body.content.get(&media) {
                    None => push(
                        "request.body".into(),
                        format!("content type `{media}` not documented"),
                    ),
                    Some(validator) => match serde_json::from_slice::<Value>(&req.body) {
                        Err(e) => push("request.body".into(), format!("not JSON: {e}")),
                        Ok(v) => {
                            for (loc, msg) in schema_errors(validator, &v) {
                                push(format!("request.body{loc}"), msg);
                            }
                        }
                    },
                }
            }
            (_, false) => {}
        }
        out
    }

    /// Checks a response to `req`: the status is documented and the body matches its schema.
    pub fn validate_response(
        &self,
        req: &CapturedRequest,
        resp: &CapturedResponse,
    ) -> Vec<Violation> {
        let op = match self.find(&req.method, &req.path) {
            Ok(op) => op,
            Err(mut v) => {
                v.status = Some(resp.status);
                return vec![v];
            }
        };
        let violation = |location: &str, message: String| Violation {
            operation: op.id.clone(),
            status: Some(resp.status),
            location: location.to_owned(),
            message,
        };
        let code = resp.status.to_string();
        let range = format!("{}XX", resp.status / 100);
        let Some(content) = op
            .responses
            .get(&code)
            .or_else(|| op.responses.get(&range))
            .or_else(|| op.responses.get("default"))
        else {
            let documented: Vec<&str> = op.responses.keys().map(String::as_str).collect();
            return vec![violation(
                "response.status",
                format!(
                    "status {code} not documented (documented: {})",
                    documented.join(", ")
                ),
            )];
        };
        let has_body = !resp.body.iter().all(u8::is_ascii_whitespace);
        if content.is_empty() {
            return if has_body {
                vec![violation(
                    "response.body",
                    format!(
                        "body not documented: {}",
                        snippet(&String::from_utf8_lossy(&resp.body))
                    ),
                )]
            } else {
                Vec::new()
            };
        }
        if !has_body {
            return vec![violation("response.body", "documented body missing".into())];
        }
        let media = resp
            .content_type
            .as_deref()
            .map(media_type)
            .unwrap_or_default();
        let Some(validator) = content.get(&media) else {
            return vec![violation(
                "response.content-type",
                format!("content type `{media}` not documented"),
            )];
        };
        match serde_json::from_slice::<Value>(&resp.body) {
            Err(e) => vec![violation(
                "response.body",
                format!(
                    "not JSON ({e}): {}",
                    snippet(&String::from_utf8_lossy(&resp.body))
                ),
            )],
            Ok(v) => schema_errors(validator, &v)
                .into_iter()
                .map(|(loc, msg)| violation(&format!("response.body{loc}"), msg))
                .collect(),
        }
    }
}

fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn snippet(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", s.get(..end).unwrap_or_default())
}

fn schema_errors(validator: &jsonschema::Validator, value: &Value) -> Vec<(String, String)> {
    validator
        .iter_errors(value)
        .map(|e| (e.instance_path().to_string(), snippet(&e.to_string())))
        .collect()
}

/// Converts a query or header string to the JSON value its schema's type calls for, then validates it.
fn check_scalar(param: &Param, raw: &str) -> Option<String> {
    let ty = param
        .schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    let value = match ty {
        "integer" => match raw.parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => return Some(format!("`{raw}` is not an integer")),
        },
        "number" => match raw.parse::<f64>() {
            Ok(n) => Value::from(n),
            Err(_) => return Some(format!("`{raw}` is not a number")),
        },
        "boolean" => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Some(format!("`{raw}` is not `true` or `false`")),
        },
        _ => Value::String(raw.to_owned()),
    };
    let errors = schema_errors(&param.validator, &value);
    (!errors.is_empty()).then(|| {
        errors
            .into_iter()
            .map(|(_, m)| m)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

fn resolve_ref<'a>(doc: &'a Value, reference: &str) -> Result<&'a Value, String> {
    let pointer = reference
        .strip_prefix('#')
        .ok_or(format!("only local $refs are supported: {reference}"))?;
    doc.pointer(pointer)
        .ok_or(format!("unresolved $ref {reference}"))
}

/// Follows `$ref` chains on a parameter / response / requestBody object.
fn deref<'a>(doc: &'a Value, mut v: &'a Value) -> Result<&'a Value, String> {
    for _ in 0..16 {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => v = resolve_ref(doc, r)?,
            None => return Ok(v),
        }
    }
    Err("$ref chain too long".into())
}

/// OpenAPI 3.0 schema → self-contained JSON Schema 2020-12 (refs inlined, `nullable`
/// turned into a `null` alternative, annotations dropped, objects with listed
/// properties closed unless they say otherwise).
pub fn to_json_schema(doc: &Value, schema: &Value) -> Result<Value, String> {
    convert(doc, schema, &mut Vec::new())
}

fn convert(doc: &Value, schema: &Value, stack: &mut Vec<String>) -> Result<Value, String> {
    let Some(obj) = schema.as_object() else {
        return Ok(schema.clone());
    };
    if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
        if stack.iter().any(|r| r == reference) {
            return Err(format!("recursive $ref {reference} is not supported"));
        }
        stack.push(reference.to_owned());
        let out = convert(doc, resolve_ref(doc, reference)?, stack);
        stack.pop();
        return out;
    }
    let mut out = Map::new();
    for (key, value) in obj {
        match key.as_str() {
            "description" | "example" | "deprecated" | "readOnly" | "writeOnly" | "xml"
            | "externalDocs" | "nullable" | "discriminator" | "title" => {}
            k if k.starts_with("x-") => {}
            "properties" => {
                let props = value.as_object().ok_or("`properties` is not an object")?;
                let mut converted = Map::new();
                for (name, s) in props {
                    converted.insert(name.clone(), convert(doc, s, stack)?);
                }
                out.insert(key.clone(), Value::Object(converted));
            }
            "items" | "additionalProperties" | "not" => {
                out.insert(key.clone(), convert(doc, value, stack)?);
            }
            "allOf" | "anyOf" | "oneOf" => {
                let list = value.as_array().ok_or(format!("`{key}` is not an array"))?;
                let converted = list
                    .iter()
                    .map(|s| convert(doc, s, stack))
                    .collect::<Result<Vec<_>, _>>()?;
                out.insert(key.clone(), Value::Array(converted));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if out.contains_key("properties") && !out.contains_key("additionalProperties") {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    if obj.get("nullable").and_then(Value::as_bool) == Some(true) {
        return Ok(make_nullable(out));
    }
    Ok(Value::Object(out))
}

fn make_nullable(mut schema: Map<String, Value>) -> Value {
    if let Some(Value::Array(values)) = schema.get_mut("enum") {
        values.push(Value::Null);
    }
    match schema.get("type").cloned() {
        Some(Value::String(t)) => {
            schema.insert("type".into(), serde_json::json!([t, "null"]));
            Value::Object(schema)
        }
        _ => serde_json::json!({"anyOf": [Value::Object(schema), {"type": "null"}]}),
    }
}

fn compile(
    doc: &Value,
    schema: &Value,
    what: &str,
) -> Result<(Value, jsonschema::Validator), String> {
    let converted = to_json_schema(doc, schema).map_err(|e| format!("{what}: {e}"))?;
    let validator = jsonschema::draft202012::new(&converted).map_err(|e| format!("{what}: {e}"))?;
    Ok((converted, validator))
}

fn compile_content(
    doc: &Value,
    content: Option<&Value>,
    what: &str,
) -> Result<BTreeMap<String, jsonschema::Validator>, String> {
    let mut out = BTreeMap::new();
    let Some(content) = content.and_then(Value::as_object) else {
        return Ok(out);
    };
    for (media, m) in content {
        let schema = m
            .get("schema")
            .ok_or(format!("{what} {media}: no schema"))?;
        let (_, v) = compile(doc, schema, &format!("{what} {media}"))?;
        out.insert(media.to_ascii_lowercase(), v);
    }
    Ok(out)
}

fn compile_operation(
    doc: &Value,
    template: &str,
    method: &str,
    op: &Value,
    shared_params: &[Value],
) -> Result<Operation, String> {
    let id = op
        .get("operationId")
        .and_then(Value::as_str)
        .ok_or(format!("{method} {template}: no operationId"))?
        .to_owned();
    let segments: Vec<Option<String>> = template
        .split('/')
        .skip(1)
        .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
        .collect();

    let own_params = op
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut params: Vec<Param> = Vec::new();
    for raw in shared_params.iter().chain(&own_params) {
        let p = deref(doc, raw)?;
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .ok_or(format!("{id}: parameter without name"))?;
        let location = match p.get("in").and_then(Value::as_str) {
            Some("path") => ParamIn::Path,
            Some("query") => ParamIn::Query,
            Some("header") => ParamIn::Header,
            other => return Err(format!("{id}: parameter {name} in {other:?} not supported")),
        };
        let schema = p
            .get("schema")
            .ok_or(format!("{id}: parameter {name} has no schema"))?;
        let (schema, validator) = compile(doc, schema, &format!("{id} parameter {name}"))?;
        let param = Param {
            name: name.to_owned(),
            location,
            required: p.get("required").and_then(Value::as_bool).unwrap_or(false)
                || location == ParamIn::Path,
            prefix: name.split_once('{').map(|(pre, _)| pre.to_owned()),
            comma_separated: p
                .get("x-comma-separated")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            schema,
            validator,
        };
        // An operation-level parameter overrides a path-level one of the same name and place.
        params.retain(|q| !(q.name == param.name && q.location == param.location));
        params.push(param);
    }
    for (i, seg) in segments.iter().enumerate() {
        if seg.is_none() {
            let raw = template.split('/').nth(i + 1).unwrap_or_default();
            let name = raw.trim_start_matches('{').trim_end_matches('}');
            if !params
                .iter()
                .any(|p| p.location == ParamIn::Path && p.name == name)
            {
                return Err(format!("{id}: path parameter {name} is not declared"));
            }
        }
    }

    let body = match op.get("requestBody") {
        None => None,
        Some(raw) => {
            let b = deref(doc, raw)?;
            Some(Body {
                required: b.get("required").and_then(Value::as_bool).unwrap_or(false),
                content: compile_content(doc, b.get("content"), &format!("{id} requestBody"))?,
            })
        }
    };

    let mut responses = BTreeMap::new();
    let raw_responses = op
        .get("responses")
        .and_then(Value::as_object)
        .ok_or(format!("{id}: no responses"))?;
    for (code, raw) in raw_responses {
        let r = deref(doc, raw)?;
        responses.insert(
            code.to_ascii_uppercase().replace("DEFAULT", "default"),
            compile_content(doc, r.get("content"), &format!("{id} response {code}"))?,
        );
    }

    Ok(Operation {
        id,
        method: method.to_owned(),
        template: template.to_owned(),
        segments,
        params,
        body,
        responses,
    })
}
