//! GraphQL at `POST /graphql`: the operations the client and Fly's docs use
//! (`organizations`, `organization`, `viewer`, `platform{regions vmSizes requestRegion}`,
//! `app(name){ipAddresses sharedIpAddress …}`, `allocateIpAddress`, `releaseIpAddress`,
//! `appNameAvailable`). A small parser reads the document (operations, variables,
//! aliases, fragments), each root field is resolved to a full JSON object, and the
//! answer is pruned to the selection set, as a real server would. Errors are HTTP 200
//! with `{errors:[{message, path, extensions:{code}}]}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::routing::post;
use serde_json::{Map, Value, json};

use super::Shared;
use super::clock::rfc3339;
use super::http::{ApiError, ApiResult, Scope, ok_json, parse_body, str_field, visible_app};
use super::model::{App, Org, World};
use super::{platform, rest};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/graphql", post(handle))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Punct(char),
    Spread,
    Str(String),
    Num(String),
}

fn tokenize(src: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() || c == ',' || c == '\u{feff}' {
            i += 1;
        } else if c == '#' {
            while chars.get(i).is_some_and(|&c| c != '\n') {
                i += 1;
            }
        } else if c == '.' {
            if chars.get(i + 1) == Some(&'.') && chars.get(i + 2) == Some(&'.') {
                out.push(Tok::Spread);
                i += 3;
            } else {
                return Err("unexpected '.'".into());
            }
        } else if "{}()[]:$!=@".contains(c) {
            out.push(Tok::Punct(c));
            i += 1;
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated string".into()),
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        let esc = chars.get(i + 1).copied().unwrap_or('\\');
                        s.push(match esc {
                            'n' => '\n',
                            't' => '\t',
                            other => other,
                        });
                        i += 2;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(s));
        } else if c == '-' || c.is_ascii_digit() {
            let start = i;
            i += 1;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_digit() || *c == '.' || *c == 'e' || *c == 'E')
            {
                i += 1;
            }
            out.push(Tok::Num(
                chars.get(start..i).unwrap_or_default().iter().collect(),
            ));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
            {
                i += 1;
            }
            out.push(Tok::Name(
                chars.get(start..i).unwrap_or_default().iter().collect(),
            ));
        } else {
            return Err(format!("unexpected character {c:?}"));
        }
    }
    Ok(out)
}

#[derive(Debug, Clone)]
enum Arg {
    Var(String),
    Lit(Value),
    Obj(Vec<(String, Arg)>),
    List(Vec<Arg>),
}

#[derive(Debug, Clone)]
struct Field {
    alias: Option<String>,
    name: String,
    args: Vec<(String, Arg)>,
    sel: Vec<Sel>,
}

#[derive(Debug, Clone)]
enum Sel {
    Field(Field),
    Spread(String),
    Inline(Vec<Sel>),
}

#[derive(Debug)]
struct Operation {
    name: Option<String>,
    sel: Vec<Sel>,
}

type Document = (Vec<Operation>, HashMap<String, Vec<Sel>>);

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expect(&mut self, c: char) -> Result<(), String> {
        match self.next() {
            Some(Tok::Punct(p)) if p == c => Ok(()),
            other => Err(format!("expected '{c}', found {other:?}")),
        }
    }
    fn name(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Name(n)) => Ok(n),
            other => Err(format!("expected a name, found {other:?}")),
        }
    }
    fn skip_balanced(&mut self, open: char, close: char) -> Result<(), String> {
        self.expect(open)?;
        let mut depth = 1;
        while depth > 0 {
            match self.next() {
                Some(Tok::Punct(c)) if c == open => depth += 1,
                Some(Tok::Punct(c)) if c == close => depth -= 1,
                Some(_) => {}
                None => return Err(format!("unbalanced '{open}'")),
            }
        }
        Ok(())
    }
    fn skip_directives(&mut self) -> Result<(), String> {
        while self.peek() == Some(&Tok::Punct('@')) {
            self.pos += 1;
            self.name()?;
            if self.peek() == Some(&Tok::Punct('(')) {
                self.skip_balanced('(', ')')?;
            }
        }
        Ok(())
    }
    fn value(&mut self) -> Result<Arg, String> {
        match self.next() {
            Some(Tok::Punct('$')) => Ok(Arg::Var(self.name()?)),
            Some(Tok::Str(s)) => Ok(Arg::Lit(Value::String(s))),
            Some(Tok::Num(n)) => Ok(Arg::Lit(
                serde_json::from_str::<Value>(&n).map_err(|_| format!("bad number {n}"))?,
            )),
            Some(Tok::Name(n)) => Ok(Arg::Lit(match n.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                _ => Value::String(n),
            })),
            Some(Tok::Punct('[')) => {
                let mut items = Vec::new();
                while self.peek() != Some(&Tok::Punct(']')) {
                    items.push(self.value()?);
                }
                self.expect(']')?;
                Ok(Arg::List(items))
            }
            Some(Tok::Punct('{')) => {
                let mut fields = Vec::new();
                while self.peek() != Some(&Tok::Punct('}')) {
                    let k = self.name()?;
                    self.expect(':')?;
                    fields.push((k, self.value()?));
                }
                self.expect('}')?;
                Ok(Arg::Obj(fields))
            }
            other => Err(format!("unexpected value {other:?}")),
        }
    }
    fn selection_set(&mut self) -> Result<Vec<Sel>, String> {
        self.expect('{')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(Tok::Punct('}')) => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(Tok::Spread) => {
                    self.pos += 1;
                    match self.peek() {
                        Some(Tok::Name(n)) if n == "on" => {
                            self.pos += 1;
                            self.name()?;
                            self.skip_directives()?;
                            out.push(Sel::Inline(self.selection_set()?));
                        }
                        Some(Tok::Punct('{')) | Some(Tok::Punct('@')) => {
                            self.skip_directives()?;
                            out.push(Sel::Inline(self.selection_set()?));
                        }
                        _ => {
                            out.push(Sel::Spread(self.name()?));
                            self.skip_directives()?;
                        }
                    }
                }
                Some(_) => {
                    let first = self.name()?;
                    let (alias, name) = if self.peek() == Some(&Tok::Punct(':')) {
                        self.pos += 1;
                        (Some(first), self.name()?)
                    } else {
                        (None, first)
                    };
                    let mut args = Vec::new();
                    if self.peek() == Some(&Tok::Punct('(')) {
                        self.pos += 1;
                        while self.peek() != Some(&Tok::Punct(')')) {
                            let k = self.name()?;
                            self.expect(':')?;
                            args.push((k, self.value()?));
                        }
                        self.expect(')')?;
                    }
                    self.skip_directives()?;
                    let sel = if self.peek() == Some(&Tok::Punct('{')) {
                        self.selection_set()?
                    } else {
                        Vec::new()
                    };
                    out.push(Sel::Field(Field {
                        alias,
                        name,
                        args,
                        sel,
                    }));
                }
                None => return Err("unexpected end of document".into()),
            }
        }
    }
    fn document(&mut self) -> Result<Document, String> {
        let mut ops = Vec::new();
        let mut frags = HashMap::new();
        while let Some(t) = self.peek().cloned() {
            match t {
                Tok::Punct('{') => ops.push(Operation {
                    name: None,
                    sel: self.selection_set()?,
                }),
                Tok::Name(kw) if kw == "query" || kw == "mutation" || kw == "subscription" => {
                    self.pos += 1;
                    let name = match self.peek() {
                        Some(Tok::Name(_)) => Some(self.name()?),
                        _ => None,
                    };
                    if self.peek() == Some(&Tok::Punct('(')) {
                        self.skip_balanced('(', ')')?;
                    }
                    self.skip_directives()?;
                    ops.push(Operation {
                        name,
                        sel: self.selection_set()?,
                    });
                }
                Tok::Name(kw) if kw == "fragment" => {
                    self.pos += 1;
                    let name = self.name()?;
                    let on = self.name()?;
                    if on != "on" {
                        return Err("expected 'on' in fragment".into());
                    }
                    self.name()?;
                    self.skip_directives()?;
                    frags.insert(name, self.selection_set()?);
                }
                other => return Err(format!("unexpected {other:?} at top level")),
            }
        }
        Ok((ops, frags))
    }
}

fn resolve_arg(a: &Arg, vars: &Map<String, Value>) -> Value {
    match a {
        Arg::Var(n) => vars.get(n).cloned().unwrap_or(Value::Null),
        Arg::Lit(v) => v.clone(),
        Arg::Obj(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), resolve_arg(v, vars)))
                .collect(),
        ),
        Arg::List(items) => Value::Array(items.iter().map(|v| resolve_arg(v, vars)).collect()),
    }
}

/// The fields of a selection set, fragments flattened.
fn flatten<'a>(
    sel: &'a [Sel],
    frags: &'a HashMap<String, Vec<Sel>>,
    depth: u32,
    out: &mut Vec<&'a Field>,
) {
    if depth > 16 {
        return;
    }
    for s in sel {
        match s {
            Sel::Field(f) => out.push(f),
            Sel::Inline(inner) => flatten(inner, frags, depth + 1, out),
            Sel::Spread(name) => {
                if let Some(inner) = frags.get(name) {
                    flatten(inner, frags, depth + 1, out);
                }
            }
        }
    }
}

fn prune(value: &Value, sel: &[Sel], frags: &HashMap<String, Vec<Sel>>) -> Value {
    if sel.is_empty() {
        return value.clone();
    }
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|v| prune(v, sel, frags)).collect()),
        Value::Object(obj) => {
            let mut fields = Vec::new();
            flatten(sel, frags, 0, &mut fields);
            let mut out = Map::new();
            for f in fields {
                let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
                let v = obj.get(&f.name).unwrap_or(&Value::Null);
                out.insert(key, prune(v, &f.sel, frags));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

struct GqlError {
    message: String,
    code: &'static str,
}

fn gql_err(message: impl Into<String>, code: &'static str) -> GqlError {
    GqlError {
        message: message.into(),
        code,
    }
}

fn org_json(w: &World, scope: &Scope, o: &Org) -> Value {
    let apps: Vec<Value> = w
        .apps
        .values()
        .filter(|a| a.org == o.slug && scope.allows(&a.name) && a.is_visible(w.now_ms))
        .map(|a| json!({"__typename": "App", "id": a.name, "name": a.name, "status": a.status()}))
        .collect();
    json!({"__typename": "Organization", "id": o.id, "slug": o.slug, "rawSlug": o.slug,
        "name": o.name, "type": o.kind, "paidPlan": o.paid_plan, "billable": o.paid_plan,
        "viewerRole": "admin", "internalNumericId": o.internal_numeric_id.to_string(),
        "apps": {"nodes": apps, "totalCount": apps.len()}})
}

fn ip_node(app: &App, ip: &super::model::Ip) -> Value {
    json!({"__typename": "IPAddress", "id": ip.id, "address": ip.address, "type": ip.kind,
        "region": ip.region, "createdAt": rfc3339(ip.created_ms), "serviceName": ip.service_name,
        "network": {"name": ip.network, "organization": {"slug": app.org}}})
}

fn app_gql(w: &World, scope: &Scope, app: &App) -> Value {
    let nodes: Vec<Value> = app
        .ips
        .iter()
        .filter(|i| !i.kind.starts_with("egress"))
        .map(|i| ip_node(app, i))
        .collect();
    let org = w
        .orgs
        .get(&app.org)
        .map(|o| org_json(w, scope, o))
        .unwrap_or(Value::Null);
    let machines: Vec<Value> = app
        .machines
        .values()
        .map(|m| json!({"id": m.id, "name": m.name, "state": m.state.as_str(), "region": m.region}))
        .collect();
    let certs: Vec<Value> = app
        .certificates
        .values()
        .map(|c| {
            json!({"id": c.hostname, "hostname": c.hostname,
            "clientStatus": if c.checks_run >= 1 { "Ready" } else { "Awaiting configuration" },
            "createdAt": rfc3339(c.created_ms), "isConfigured": c.checks_run >= 1})
        })
        .collect();
    json!({"__typename": "App", "id": app.name, "name": app.name, "status": app.status(),
        "deployed": app.status() == "deployed", "hostname": format!("{}.fly.dev", app.name),
        "appUrl": format!("https://{}.fly.dev", app.name), "platformVersion": "machines",
        "organization": org,
        "ipAddresses": {"nodes": nodes, "totalCount": nodes.len(),
            "edges": nodes.iter().map(|n| json!({"node": n})).collect::<Vec<_>>(),
            "pageInfo": {"hasNextPage": false, "hasPreviousPage": false, "endCursor": null, "startCursor": null}},
        "sharedIpAddress": app.shared_ip,
        "machines": {"nodes": machines, "totalCount": machines.len()},
        "certificates": {"nodes": certs, "totalCount": certs.len()}})
}

fn str_arg<'a>(args: &'a Map<String, Value>, key: &str) -> &'a str {
    args.get(key).and_then(Value::as_str).unwrap_or("")
}

fn app_for(w: &World, scope: &Scope, name: &str) -> Result<(), GqlError> {
    visible_app(w, scope, name).map_err(|e| match e.status {
        404 => gql_err(format!("Could not find App \"{name}\""), "NOT_FOUND"),
        _ => gql_err("Not authorized to access this app", "UNAUTHORIZED"),
    })
}

/// Whether the caller sees `org`: a member org, and for an app-scoped token only an org
/// that owns one of its apps (an app's deploy token reaches that app, not the orgs of
/// the user who minted it). Unverified against Fly; see `openapi/divergences.yaml`.
fn org_visible(w: &World, scope: &Scope, org: &Org) -> bool {
    org.member
        && match scope {
            Scope::Orgs => true,
            Scope::Apps(apps) => apps
                .iter()
                .any(|a| w.apps.get(a).is_some_and(|app| app.org == org.slug)),
        }
}

fn resolve(
    w: &mut World,
    scope: &Scope,
    field: &str,
    args: &Map<String, Value>,
    now: u64,
) -> Result<Value, GqlError> {
    match field {
        "__typename" => Ok(json!("Query")),
        "organizations" => {
            let nodes: Vec<Value> = w
                .orgs
                .values()
                .filter(|o| org_visible(w, scope, o))
                .map(|o| org_json(w, scope, o))
                .collect();
            Ok(json!({"nodes": nodes, "totalCount": nodes.len(),
                "edges": nodes.iter().map(|n| json!({"node": n})).collect::<Vec<_>>(),
                "pageInfo": {"hasNextPage": false, "hasPreviousPage": false, "endCursor": null, "startCursor": null}}))
        }
        "organization" => {
            let slug = str_arg(args, "slug");
            let id = str_arg(args, "id");
            let o = w
                .orgs
                .values()
                .filter(|o| org_visible(w, scope, o))
                .find(|o| {
                    (!slug.is_empty()
                        && (o.slug == slug || (slug == "personal" && o.kind == "PERSONAL")))
                        || (!id.is_empty() && o.id == id)
                });
            match o {
                Some(o) => Ok(org_json(w, scope, o)),
                None => Err(gql_err("Could not find Organization", "NOT_FOUND")),
            }
        }
        "personalOrganization" => w
            .orgs
            .values()
            .find(|o| org_visible(w, scope, o) && o.kind == "PERSONAL")
            .map(|o| org_json(w, scope, o))
            .ok_or_else(|| gql_err("no personal organization", "NOT_FOUND")),
        "viewer" => Ok(
            json!({"__typename": "User", "id": w.viewer.user_id, "email": w.viewer.email,
            "name": w.viewer.name, "username": w.viewer.name}),
        ),
        "platform" => Ok(
            json!({"__typename": "FlyPlatform", "regions": platform::regions_graphql(),
            "vmSizes": platform::vm_sizes(), "requestRegion": w.nearest_region}),
        ),
        "nearestRegion" => {
            let code = w.nearest_region.clone();
            Ok(platform::regions_graphql()
                .into_iter()
                .find(|r| r.get("code").and_then(Value::as_str) == Some(code.as_str()))
                .unwrap_or(Value::Null))
        }
        "app" => {
            let name = if args.contains_key("name") {
                str_arg(args, "name")
            } else {
                str_arg(args, "id")
            };
            app_for(w, scope, name)?;
            let a = w
                .apps
                .get(name)
                .ok_or_else(|| gql_err("Could not find App", "NOT_FOUND"))?;
            Ok(app_gql(w, scope, a))
        }
        "appNameAvailable" => Ok(json!(!w.apps.contains_key(str_arg(args, "name")))),
        "allocateIpAddress" => {
            let input = args
                .get("input")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let app = str_arg(&input, "appId").to_owned();
            app_for(w, scope, &app)?;
            let kind = str_arg(&input, "type").to_owned();
            if !matches!(kind.as_str(), "v4" | "v6" | "shared_v4" | "private_v6") {
                return Err(gql_err(
                    format!(
                        "Variable $input of type AllocateIPAddressInput! was provided invalid value for type ({kind:?} is not an IPAddressType)"
                    ),
                    "BAD_USER_INPUT",
                ));
            }
            let ip = rest::allocate(
                w,
                &app,
                &kind,
                str_arg(&input, "region"),
                str_arg(&input, "serviceName"),
                str_arg(&input, "network"),
                now,
            )
            .map_err(|e: ApiError| gql_err(e.message, "BAD_USER_INPUT"))?;
            let a = w
                .apps
                .get(&app)
                .ok_or_else(|| gql_err("Could not find App", "NOT_FOUND"))?;
            Ok(json!({"__typename": "AllocateIPAddressPayload",
                "ipAddress": ip.map(|i| ip_node(a, &i)), "app": app_gql(w, scope, a),
                "clientMutationId": input.get("clientMutationId").cloned().unwrap_or(Value::Null)}))
        }
        "releaseIpAddress" => {
            let input = args
                .get("input")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let mut app = str_arg(&input, "appId").to_owned();
            let ip = if input.contains_key("ip") {
                str_arg(&input, "ip")
            } else {
                str_arg(&input, "ipAddressId")
            }
            .to_owned();
            if app.is_empty() {
                app = w
                    .apps
                    .values()
                    .find(|a| a.ips.iter().any(|i| i.id == ip || i.address == ip))
                    .map(|a| a.name.clone())
                    .unwrap_or_default();
            }
            app_for(w, scope, &app)?;
            if !rest::release(w, &app, &ip).map_err(|e| gql_err(e.message, "NOT_FOUND"))? {
                return Err(gql_err(
                    format!("Could not find IP address {ip}"),
                    "NOT_FOUND",
                ));
            }
            let a = w
                .apps
                .get(&app)
                .ok_or_else(|| gql_err("Could not find App", "NOT_FOUND"))?;
            Ok(
                json!({"__typename": "ReleaseIPAddressPayload", "app": app_gql(w, scope, a),
                "clientMutationId": input.get("clientMutationId").cloned().unwrap_or(Value::Null)}),
            )
        }
        other => Err(gql_err(
            format!(
                "Field '{other}' doesn't exist on the simulator's schema (it implements the operations fly-machines-mcp uses)"
            ),
            "UNSUPPORTED",
        )),
    }
}

/// `POST /graphql`.
async fn handle(
    State(s): State<Arc<Shared>>,
    Extension(scope): Extension<Scope>,
    grant: Option<Extension<super::authz::Grant>>,
    body: Bytes,
) -> ApiResult {
    let body = parse_body(&body)?;
    let query = str_field(&body, "query");
    let vars = body
        .get("variables")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let op_name = body
        .get("operationName")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let parsed = tokenize(&query).and_then(|toks| Parser { toks, pos: 0 }.document());
    let (ops, frags) = match parsed {
        Ok(d) => d,
        Err(msg) => {
            return ok_json(
                200,
                json!({"errors": [{"message": format!("Parse error: {msg}"),
                "extensions": {"code": "GRAPHQL_PARSE_FAILED"}}]}),
            );
        }
    };
    let op = match &op_name {
        Some(n) => ops.iter().find(|o| o.name.as_deref() == Some(n.as_str())),
        None => ops.first(),
    };
    let Some(op) = op else {
        return ok_json(
            200,
            json!({"errors": [{"message": "no operation to run (check operationName)",
            "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]}),
        );
    };
    let mut roots = Vec::new();
    flatten(&op.sel, &frags, 0, &mut roots);
    let (data, errors, delay) = s.with_world(|w, now| {
        let mut data = Map::new();
        let mut errors = Vec::new();
        let mut delay = 0;
        for f in roots {
            let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
            let args: Map<String, Value> = f
                .args
                .iter()
                .map(|(k, a)| (k.clone(), resolve_arg(a, &vars)))
                .collect();
            // Verified macaroons: each field is judged by what it touches.
            if let Some(Extension(grant)) = &grant {
                let access = super::authz::graphql_access(w, &f.name, &args);
                let now_s = i64::try_from(now / 1000).unwrap_or(i64::MAX);
                if !grant.permits(&access, now_s) {
                    data.insert(key.clone(), Value::Null);
                    errors.push(json!({"message": "Not authorized to access this resource",
                        "path": [key], "locations": [], "extensions": {"code": "UNAUTHORIZED"}}));
                    continue;
                }
            }
            if f.name == "allocateIpAddress" {
                delay += w.delay(w.latency.ip_allocate_ms);
            }
            match resolve(w, &scope, &f.name, &args, now) {
                Ok(v) => {
                    data.insert(key, prune(&v, &f.sel, &frags));
                }
                Err(e) => {
                    data.insert(key.clone(), Value::Null);
                    errors.push(json!({"message": e.message, "path": [key],
                        "locations": [], "extensions": {"code": e.code}}));
                }
            }
        }
        (data, errors, delay)
    });
    super::http::respond_after(&s, delay).await;
    let mut out = json!({"data": data});
    if !errors.is_empty()
        && let Some(o) = out.as_object_mut()
    {
        o.insert("errors".into(), Value::Array(errors));
    }
    ok_json(200, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_operations_fragments_and_aliases() {
        let q = r#"query Q($n: String!) { a: app(name: $n) { ...F sharedIpAddress } }
                   fragment F on App { name ipAddresses(first: 5) { nodes { address } } }"#;
        let (ops, frags) = Parser {
            toks: tokenize(q).unwrap(),
            pos: 0,
        }
        .document()
        .unwrap();
        assert_eq!(ops[0].name.as_deref(), Some("Q"));
        let mut roots = Vec::new();
        flatten(&ops[0].sel, &frags, 0, &mut roots);
        assert_eq!(roots[0].alias.as_deref(), Some("a"));
        let full = json!({"name": "x", "id": "x", "sharedIpAddress": "1.2.3.4",
            "ipAddresses": {"nodes": [{"address": "::1", "type": "v6"}]}});
        let pruned = prune(&full, &roots[0].sel, &frags);
        assert_eq!(
            pruned,
            json!({"name": "x", "ipAddresses": {"nodes": [{"address": "::1"}]}, "sharedIpAddress": "1.2.3.4"})
        );
    }
}
