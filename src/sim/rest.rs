//! Machines REST endpoints that are not about machines or volumes: apps (list with
//! body cursor, create with `name`/`app_name` and `idempotency_key`, get, delete),
//! IP assignments, secrets (names and sha256 digests; values only on request),
//! certificates (ACME add, check, delete), regions and `tokens/current`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::Shared;
use super::app_call::AppCall;
use super::clock::rfc3339;
use super::http::{
    ApiError, ApiResult, Scope, no_content, ok_json, parse_body, required_str, str_field,
};
use super::model::{App, Certificate, Ip, Secret, World, secret_digest};
use super::platform;

type Q = Query<HashMap<String, String>>;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/apps", get(list_apps).post(create_app))
        .route("/v1/apps/{app_name}", get(get_app).delete(delete_app))
        .route(
            "/v1/apps/{app_name}/ip_assignments",
            get(list_ips).post(allocate_ip),
        )
        .route(
            "/v1/apps/{app_name}/ip_assignments/{ip}",
            axum::routing::delete(release_ip),
        )
        .route(
            "/v1/apps/{app_name}/secrets",
            get(list_secrets).post(update_secrets),
        )
        .route(
            "/v1/apps/{app_name}/secrets/{secret_name}",
            get(get_secret).post(set_secret).delete(delete_secret),
        )
        .route("/v1/apps/{app_name}/certificates", get(list_certificates))
        .route(
            "/v1/apps/{app_name}/certificates/acme",
            post(add_certificate),
        )
        .route(
            "/v1/apps/{app_name}/certificates/{hostname}",
            get(get_certificate).delete(delete_certificate),
        )
        .route(
            "/v1/apps/{app_name}/certificates/{hostname}/check",
            post(check_certificate),
        )
        .route("/v1/platform/regions", get(regions))
        .route("/v1/tokens/current", get(tokens_current))
}

/// The org a slug names for the viewer (`personal` is an alias).
pub(crate) fn resolve_org<'a>(w: &'a World, slug: &str) -> Option<&'a super::model::Org> {
    if slug == "personal" {
        w.orgs.values().find(|o| o.kind == "PERSONAL" && o.member)
    } else {
        w.orgs.get(slug).filter(|o| o.member)
    }
}

fn valid_app_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// `GET /v1/apps?org_slug=`: `{apps, total_apps, next_cursor?}`.
async fn list_apps(
    State(s): State<Arc<Shared>>,
    Extension(scope): Extension<Scope>,
    Query(q): Q,
) -> ApiResult {
    let org_slug = q
        .get("org_slug")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request("org_slug is required"))?
        .clone();
    let limit = q.get("limit").and_then(|v| v.parse::<usize>().ok());
    let cursor = q.get("cursor").cloned().unwrap_or_default();
    s.with_world(|w, now| {
        let org = resolve_org(w, &org_slug)
            .ok_or_else(|| ApiError::not_found(format!("organization {org_slug} not found")))?
            .slug
            .clone();
        let all: Vec<&App> = w
            .apps
            .values()
            .filter(|a| a.org == org && scope.allows(&a.name) && a.is_visible(now))
            .collect();
        let total = all.len();
        let after: Vec<&App> = all
            .into_iter()
            .filter(|a| a.name.as_str() > cursor.as_str())
            .collect();
        let page: Vec<&App> = match limit {
            Some(l) => after.iter().take(l.clamp(1, 5000)).copied().collect(),
            None => after.clone(),
        };
        let mut body = json!({
            "apps": page.iter().map(|a| w.app_json(a)).collect::<Vec<_>>(),
            "total_apps": total,
        });
        if page.len() < after.len()
            && let (Some(last), Some(o)) = (page.last(), body.as_object_mut())
        {
            o.insert("next_cursor".into(), json!(last.name));
        }
        ok_json(200, body)
    })
}

/// `POST /v1/apps` (`?wait=true` as fly-go sends it, or without): 201
/// `{id, created_at}`; 422 `name_taken`. A reused `idempotency_key` returns the first
/// app for the same name (or no name) and is rejected with another name (the spec's
/// `CreateAppRequest.idempotency_key`); keys are forgotten after
/// `Realism::idempotency_key_ttl_ms`. Under realism the new app answers 404 for
/// `Realism::new_app_hidden_ms` (fly-go `flaps/flaps_apps.go` `WaitForApp`).
async fn create_app(
    State(s): State<Arc<Shared>>,
    Extension(scope): Extension<Scope>,
    body: Bytes,
) -> ApiResult {
    let body = parse_body(&body)?;
    if matches!(scope, Scope::Apps(_)) {
        return Err(ApiError::new(
            403,
            "unauthorized: an app-scoped token cannot create apps",
        ));
    }
    let name = body
        .get("name")
        .or_else(|| body.get("app_name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let org_slug = str_field(&body, "org_slug");
    let key = body
        .get("idempotency_key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .map(str::to_owned);
    let network = str_field(&body, "network");
    s.with_world(|w, now| {
        if let Some(k) = &key {
            let ttl = w.realism.idempotency_key_ttl_ms;
            let expired = w
                .idempotency
                .get(k)
                .is_some_and(|(_, at)| ttl.is_some_and(|t| at.saturating_add(t) <= now));
            if expired {
                w.idempotency.remove(k);
            }
            if let Some((first, _)) = w.idempotency.get(k)
                && let Some(existing) = w.apps.get(first)
            {
                if !name.is_empty() && name != existing.name {
                    return Err(ApiError::new(
                        422,
                        format!(
                            "Validation failed: idempotency_key was already used to create app {:?}; a create with the same key and another name is rejected",
                            existing.name
                        ),
                    ));
                }
                return ok_json(201, json!({"id": existing.id, "created_at": existing.created_ms}));
            }
        }
        if !valid_app_name(&name) {
            return Err(ApiError::new(
                422,
                format!("Validation failed: Name {name:?} must contain only lowercase letters, numbers and dashes"),
            ));
        }
        let org = resolve_org(w, &org_slug)
            .ok_or_else(|| ApiError::not_found(format!("organization {org_slug:?} not found")))?
            .slug
            .clone();
        if w.apps.contains_key(&name) {
            return Err(ApiError::coded(
                422,
                "Validation failed: Name has already been taken",
                "name_taken",
            ));
        }
        let id = w.rng.app_id();
        let numeric = w.numeric_id();
        let mut app = App::new(id.clone(), name.clone(), org, now, numeric);
        if !network.is_empty() {
            app.network = network;
        }
        app.hidden_until_ms = now.saturating_add(w.realism.new_app_hidden_ms);
        w.apps.insert(name.clone(), app);
        if let Some(k) = key {
            w.idempotency.insert(k, (name, now));
        }
        w.touch();
        ok_json(201, json!({"id": id, "created_at": now}))
    })
}

async fn get_app(call: AppCall<String>) -> ApiResult {
    call.read(|w, a, _| ok_json(200, w.app_json(a)))
}

/// `DELETE /v1/apps/{app}`: 202; machines, volumes and IPs go with it.
async fn delete_app(call: AppCall<String>) -> ApiResult {
    let app = call.app();
    call.world(|w, _| {
        w.apps.remove(app);
        w.idempotency.retain(|_, (v, _)| v != app);
        w.touch();
        Ok(axum::response::IntoResponse::into_response(
            axum::http::StatusCode::ACCEPTED,
        ))
    })
}

fn ip_json(w: &World, app: &App, ip: &Ip) -> Value {
    json!({"ip": ip.address, "region": ip.region, "service_name": ip.service_name,
           "shared": false, "egress": ip.kind.starts_with("egress"),
           "network": {"name": ip.network, "org_slug": app.org},
           "created_at": rfc3339(ip.created_ms), "type": ip.kind,
           "id": ip.id, "_org": w.orgs.get(&app.org).map(|o| o.slug.clone())})
}

fn strip_internal(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("_org");
        o.remove("id");
        o.remove("type");
    }
    v
}

async fn list_ips(call: AppCall<String>) -> ApiResult {
    call.read(|w, a, _| {
        let mut ips: Vec<Value> = a
            .ips
            .iter()
            .map(|i| strip_internal(ip_json(w, a, i)))
            .collect();
        if let Some(shared) = &a.shared_ip {
            ips.push(json!({"ip": shared, "region": "global", "service_name": "",
                            "shared": true, "egress": false,
                            "network": {"name": "default", "org_slug": a.org},
                            "created_at": rfc3339(a.created_ms)}));
        }
        ok_json(200, json!({"ips": ips}))
    })
}

/// Allocates an address of `kind` (shared across REST and GraphQL).
pub(crate) fn allocate(
    w: &mut World,
    app: &str,
    kind: &str,
    region: &str,
    service_name: &str,
    network: &str,
    now: u64,
) -> Result<Option<Ip>, ApiError> {
    let region = if region.is_empty() { "global" } else { region };
    if region != "global" && platform::region(region).is_none() {
        return Err(ApiError::bad_request(format!("invalid region {region:?}")));
    }
    match kind {
        "shared_v4" => {
            let has = w.apps.get(app).is_some_and(|a| a.shared_ip.is_some());
            if !has {
                let addr = w.next_address(false);
                w.app_mut(app)?.shared_ip = Some(addr);
            }
            w.touch();
            Ok(None)
        }
        "v4" | "v6" | "private_v6" | "egress_v4" | "egress_v6" => {
            let address = match kind {
                "private_v6" => {
                    let n = w.rng.next_u64();
                    format!("fdaa:0:3ec2:0:1::{:x}", n & 0xffff)
                }
                "v4" | "egress_v4" => w.next_address(false),
                _ => w.next_address(true),
            };
            let id = format!("ip_{}", w.rng.app_id());
            let ip = Ip {
                id,
                address,
                kind: kind.to_owned(),
                region: region.to_owned(),
                created_ms: now,
                service_name: service_name.to_owned(),
                network: if network.is_empty() {
                    "default".into()
                } else {
                    network.to_owned()
                },
            };
            w.app_mut(app)?.ips.push(ip.clone());
            w.touch();
            Ok(Some(ip))
        }
        other => Err(ApiError::bad_request(format!(
            "invalid IP type {other:?} (v4, v6, shared_v4, private_v6, egress_v4, egress_v6, egress_pair)"
        ))),
    }
}

async fn allocate_ip(call: AppCall<String>, body: Bytes) -> ApiResult {
    let app = call.app();
    let body = parse_body(&body)?;
    let kind = str_field(&body, "type");
    let region = str_field(&body, "region");
    let service = str_field(&body, "service_name");
    let network = str_field(&body, "network");
    let delay = call.s.with_world(|w, _| w.delay(w.latency.ip_allocate_ms));
    super::http::respond_after(&call.s, delay).await;
    call.world(|w, now| {
        if kind == "egress_pair" {
            let v4 = allocate(w, app, "egress_v4", &region, &service, &network, now)?;
            let v6 = allocate(w, app, "egress_v6", &region, &service, &network, now)?;
            return ok_json(
                200,
                json!({"ip": null, "ip_pair": {
                "v4": v4.map(|i| i.address), "v6": v6.map(|i| i.address)},
                "region": region, "shared": false, "egress": true}),
            );
        }
        let ip = allocate(w, app, &kind, &region, &service, &network, now)?;
        let a = w
            .apps
            .get(app)
            .ok_or_else(|| ApiError::not_found("app not found"))?;
        match ip {
            Some(ip) => ok_json(200, strip_internal(ip_json(w, a, &ip))),
            None => ok_json(
                200,
                json!({"ip": a.shared_ip, "region": "global", "service_name": "",
                "shared": true, "egress": false,
                "network": {"name": "default", "org_slug": a.org},
                "created_at": rfc3339(now)}),
            ),
        }
    })
}

/// Releases an address by value; `Ok(false)` if the app has no such address.
pub(crate) fn release(w: &mut World, app: &str, address: &str) -> Result<bool, ApiError> {
    let a = w.app_mut(app)?;
    let before = a.ips.len();
    a.ips.retain(|i| i.address != address && i.id != address);
    let mut removed = a.ips.len() != before;
    if a.shared_ip.as_deref() == Some(address) {
        a.shared_ip = None;
        removed = true;
    }
    if removed {
        w.touch();
    }
    Ok(removed)
}

async fn release_ip(call: AppCall<(String, String)>) -> ApiResult {
    let (app, ip) = call.ids();
    call.world(|w, _| {
        if release(w, app, ip)? {
            no_content()
        } else {
            Err(ApiError::not_found(format!("ip {ip} not found")))
        }
    })
}

fn secret_json(name: &str, s: &Secret, show: bool) -> Value {
    let mut v = json!({"name": name, "digest": s.digest,
        "created_at": rfc3339(s.created_ms), "updated_at": rfc3339(s.updated_ms)});
    if show && let Some(o) = v.as_object_mut() {
        o.insert("value".into(), json!(s.value));
    }
    v
}

fn show(q: &HashMap<String, String>) -> bool {
    q.get("show_secrets")
        .is_some_and(|v| v == "true" || v == "1")
}

async fn list_secrets(call: AppCall<String>, Query(q): Q) -> ApiResult {
    call.read(|_, a, _| {
        let list: Vec<Value> = a
            .secrets
            .iter()
            .map(|(n, s)| secret_json(n, s, show(&q)))
            .collect();
        ok_json(200, json!({"secrets": list}))
    })
}

/// `POST /secrets {values:{NAME: "v" | null}}`: `{secrets, version}`.
async fn update_secrets(call: AppCall<String>, body: Bytes) -> ApiResult {
    let app = call.app();
    let body = parse_body(&body)?;
    let values = body
        .get("values")
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| {
            ApiError::bad_request("values is required: {\"values\": {\"NAME\": \"value\" or null}}")
        })?;
    call.world(|w, now| {
        let a = w.app_mut(app)?;
        for (name, v) in &values {
            match v.as_str() {
                Some(value) => {
                    let created = a.secrets.get(name).map_or(now, |s| s.created_ms);
                    a.secrets.insert(
                        name.clone(),
                        Secret {
                            value: value.to_owned(),
                            digest: secret_digest(value),
                            created_ms: created,
                            updated_ms: now,
                        },
                    );
                }
                None => {
                    a.secrets.remove(name);
                }
            }
        }
        let version = a.bump_secrets(now);
        let list: Vec<Value> = a
            .secrets
            .iter()
            .map(|(n, s)| secret_json(n, s, false))
            .collect();
        w.touch();
        ok_json(200, json!({"secrets": list, "version": version}))
    })
}

async fn get_secret(call: AppCall<(String, String)>, Query(q): Q) -> ApiResult {
    let (_, name) = call.ids();
    call.read(|_, a, _| {
        let sec = a
            .secrets
            .get(name)
            .ok_or_else(|| ApiError::not_found(format!("secret {name} not found")))?;
        ok_json(200, secret_json(name, sec, show(&q)))
    })
}

async fn set_secret(call: AppCall<(String, String)>, body: Bytes) -> ApiResult {
    let (app, name) = call.ids();
    let body = parse_body(&body)?;
    let value = required_str(&body, "value")?;
    call.world(|w, now| {
        let a = w.app_mut(app)?;
        let created = a.secrets.get(name).map_or(now, |s| s.created_ms);
        let sec = Secret {
            digest: secret_digest(&value),
            value,
            created_ms: created,
            updated_ms: now,
        };
        a.secrets.insert(name.to_owned(), sec.clone());
        let version = a.bump_secrets(now);
        let mut v = secret_json(name, &sec, false);
        if let Some(o) = v.as_object_mut() {
            o.insert("version".into(), json!(version));
        }
        w.touch();
        ok_json(201, v)
    })
}

async fn delete_secret(call: AppCall<(String, String)>) -> ApiResult {
    let (app, name) = call.ids();
    call.world(|w, now| {
        let a = w.app_mut(app)?;
        if a.secrets.remove(name).is_none() {
            return Err(ApiError::not_found(format!("secret {name} not found")));
        }
        let version = a.bump_secrets(now);
        w.touch();
        ok_json(200, json!({"version": version}))
    })
}

fn cert_status(c: &Certificate) -> &'static str {
    if c.checks_run >= 1 {
        "active"
    } else {
        "pending_validation"
    }
}

pub(crate) fn cert_detail(app: &App, c: &Certificate) -> Value {
    let active = c.checks_run >= 1;
    let issued_at = c.created_ms;
    let expires = issued_at.saturating_add(90 * 86_400_000);
    let a: Vec<String> = app
        .shared_ip
        .iter()
        .cloned()
        .chain(
            app.ips
                .iter()
                .filter(|i| i.kind == "v4")
                .map(|i| i.address.clone()),
        )
        .collect();
    let aaaa: Vec<String> = app
        .ips
        .iter()
        .filter(|i| i.kind == "v6")
        .map(|i| i.address.clone())
        .collect();
    json!({
        "hostname": c.hostname, "configured": active, "acme_requested": true,
        "status": cert_status(c), "dns_provider": "simulated", "rate_limited_until": null,
        "certificates": [{
            "source": "fly", "status": if active { "active" } else { "pending_validation" },
            "created_at": rfc3339(c.created_ms), "expires_at": rfc3339(expires), "issuer": null,
            "issued": if active { json!([
                {"type": "ecdsa", "expires_at": rfc3339(expires), "certificate_authority": "lets_encrypt"},
                {"type": "rsa", "expires_at": rfc3339(expires), "certificate_authority": "lets_encrypt"}]) } else { json!([]) },
        }],
        "validation": {"dns_configured": active, "alpn_configured": active,
                       "http_configured": active, "ownership_txt_configured": active},
        "dns_requirements": {
            "a": a, "aaaa": aaaa, "cname": format!("{}.fly.dev", app.name),
            "acme_challenge": {"name": format!("_acme-challenge.{}", c.hostname),
                               "target": format!("{}.{}.flydns.net", c.hostname, app.name)},
            "ownership": {"name": format!("_fly-ownership.{}", c.hostname),
                          "app_value": format!("app-{}", app.id), "org_value": format!("org-{}", app.org)},
        },
        "validation_errors": if active { json!([]) } else { json!([{
            "code": "dns_not_configured", "message": "DNS records for this hostname are not pointing at the app yet",
            "remediation": "Add the A/AAAA records or the CNAME shown in dns_requirements, then run the check again",
            "timestamp": rfc3339(c.created_ms)}]) },
    })
}

async fn list_certificates(call: AppCall<String>, Query(q): Q) -> ApiResult {
    let filter = q.get("filter").cloned().unwrap_or_default();
    call.read(|_, a, _| {
        let list: Vec<Value> = a
            .certificates
            .values()
            .filter(|c| c.hostname.contains(&filter))
            .map(|c| {
                let active = c.checks_run >= 1;
                json!({"hostname": c.hostname, "status": cert_status(c), "dns_provider": "simulated",
                    "acme_dns_configured": active, "acme_alpn_configured": active,
                    "acme_http_configured": active, "ownership_txt_configured": active,
                    "configured": active, "acme_requested": true, "has_custom_certificate": false,
                    "has_fly_certificate": active, "created_at": rfc3339(c.created_ms),
                    "updated_at": rfc3339(c.created_ms)})
            })
            .collect();
        let total = list.len();
        ok_json(200, json!({"certificates": list, "total_count": total}))
    })
}

async fn add_certificate(call: AppCall<String>, body: Bytes) -> ApiResult {
    let app = call.app();
    let body = parse_body(&body)?;
    let hostname = body
        .get("hostname")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    if hostname.is_empty() || !hostname.contains('.') || hostname.contains(' ') {
        return Err(ApiError::new(422, format!("invalid hostname {hostname:?}")));
    }
    call.world(|w, now| {
        let a = w.app_mut(app)?;
        if a.certificates.contains_key(&hostname) {
            return Err(ApiError::new(
                422,
                format!("Validation failed: Hostname {hostname} already exists on this app"),
            ));
        }
        let c = Certificate {
            hostname: hostname.clone(),
            created_ms: now,
            checks_run: 0,
        };
        a.certificates.insert(hostname, c.clone());
        let out = cert_detail(a, &c);
        w.touch();
        ok_json(201, out)
    })
}

async fn get_certificate(call: AppCall<(String, String)>) -> ApiResult {
    let (_, host) = call.ids();
    call.read(|_, a, _| {
        let c = a
            .certificates
            .get(host)
            .ok_or_else(|| ApiError::not_found(format!("certificate for {host} not found")))?;
        ok_json(200, cert_detail(a, c))
    })
}

async fn check_certificate(call: AppCall<(String, String)>) -> ApiResult {
    let (app, host) = call.ids();
    call.world(|w, _| {
        let a = w.app_mut(app)?;
        let c = a
            .certificates
            .get_mut(host)
            .ok_or_else(|| ApiError::not_found(format!("certificate for {host} not found")))?;
        c.checks_run += 1;
        let c = c.clone();
        let mut out = cert_detail(a, &c);
        if let Some(o) = out.as_object_mut() {
            let a_records: Vec<String> = a.shared_ip.iter().cloned().collect();
            o.insert(
                "dns_records".into(),
                json!({"a": a_records, "aaaa": [], "cname": [],
                "resolved_addresses": a_records, "soa": "ns1.simulated."}),
            );
        }
        w.touch();
        ok_json(200, out)
    })
}

async fn delete_certificate(call: AppCall<(String, String)>) -> ApiResult {
    let (app, host) = call.ids();
    call.world(|w, _| {
        let a = w.app_mut(app)?;
        if a.certificates.remove(host).is_none() {
            return Err(ApiError::not_found(format!(
                "certificate for {host} not found"
            )));
        }
        w.touch();
        no_content()
    })
}

async fn regions(State(s): State<Arc<Shared>>) -> ApiResult {
    let nearest = s.with_world(|w, _| w.nearest_region.clone());
    ok_json(
        200,
        json!({"nearest": nearest, "regions": platform::regions_rest()}),
    )
}

/// `GET /v1/tokens/current`.
async fn tokens_current(
    State(s): State<Arc<Shared>>,
    Extension(scope): Extension<Scope>,
) -> ApiResult {
    s.with_world(|w, _| {
        let tokens: Vec<Value> = match &scope {
            Scope::Orgs => w
                .orgs
                .values()
                .filter(|o| o.member)
                .map(|o| json!({"org_slug": o.slug, "organization": o.id, "apps": [],
                    "user": w.viewer.user_id, "token_id": format!("tok_{}", o.id),
                    "restricted_to_machine": "", "source_machine_id": ""}))
                .collect(),
            Scope::Apps(apps) => {
                let org = apps.first().and_then(|a| w.apps.get(a)).and_then(|a| w.orgs.get(&a.org));
                vec![json!({"org_slug": org.map(|o| o.slug.clone()), "organization": org.map(|o| o.id.clone()),
                    "apps": apps, "user": "", "token_id": "tok_app_scoped",
                    "restricted_to_machine": "", "source_machine_id": ""})]
            }
        };
        ok_json(200, json!({"tokens": tokens}))
    })
}
