//! Machines REST endpoints: list (filters, `fly-next-cursor` paging), create, get
//! (old versions), update, destroy, the lifecycle actions, `wait` (≤60 s, 408,
//! `version`, `from_event_id`, `settled`), events, versions, ps, exec, leases (wrapped
//! `{status,data}`, nonce required while held) and metadata (412 on a stale
//! `machine_version`). Rules live in `lifecycle`; this file parses and renders.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::Shared;
use super::app_call::AppCall;
use super::http::{ApiError, ApiResult, no_content, ok_json, parse_body, required_str, str_field};
use super::model::MState;
use super::platform;

type Pairs = Query<Vec<(String, String)>>;

const NONCE_HEADER: &str = "fly-machine-lease-nonce";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    let m = "/v1/apps/{app_name}/machines/{machine_id}";
    Router::new()
        .route("/v1/apps/{app_name}/machines", get(list).post(create))
        .route(m, get(show).post(update).delete(destroy))
        .route(&format!("{m}/start"), post(start))
        .route(&format!("{m}/stop"), post(stop))
        .route(&format!("{m}/suspend"), post(suspend))
        .route(&format!("{m}/restart"), post(restart))
        .route(&format!("{m}/signal"), post(signal))
        .route(&format!("{m}/cordon"), post(cordon))
        .route(&format!("{m}/uncordon"), post(uncordon))
        .route(&format!("{m}/wait"), get(wait))
        .route(&format!("{m}/events"), get(events))
        .route(&format!("{m}/versions"), get(versions))
        .route(&format!("{m}/ps"), get(ps))
        .route(&format!("{m}/exec"), post(exec))
        .route(
            &format!("{m}/lease"),
            get(get_lease).post(acquire_lease).delete(release_lease),
        )
        .route(
            &format!("{m}/metadata"),
            get(get_metadata).patch(patch_metadata).put(patch_metadata),
        )
        .route(
            &format!("{m}/metadata/{{key}}"),
            get(get_metadata_key)
                .post(set_metadata_key)
                .delete(delete_metadata_key),
        )
}

fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn flag(q: &[(String, String)], key: &str) -> bool {
    param(q, key).is_some_and(|v| v == "true" || v == "1")
}

/// Every `state` the query names (`state=a,b` and repeated `state=` alike).
fn states(q: &[(String, String)]) -> Vec<String> {
    q.iter()
        .filter(|(k, _)| k == "state")
        .flat_map(|(_, v)| {
            v.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn nonce(headers: &HeaderMap) -> Option<String> {
    headers
        .get(NONCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|v| !v.is_empty())
}

/// `GET /v1/apps/{app}/machines`.
async fn list(call: AppCall<String>, Query(q): Pairs) -> ApiResult {
    let states = states(&q);
    let region = param(&q, "region").unwrap_or("").to_owned();
    let summary = flag(&q, "summary");
    let include_deleted = flag(&q, "include_deleted");
    let include_leases = flag(&q, "include_leases");
    let meta: Vec<(String, String)> = q
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata.")
                .map(|key| (key.to_owned(), v.clone()))
        })
        .collect();
    let limit = param(&q, "limit").and_then(|v| v.parse::<usize>().ok());
    let cursor = param(&q, "cursor").unwrap_or("").to_owned();
    call.read(|_, a, now| {
        let matching: Vec<_> = a
            .machines
            .values()
            .filter(|m| include_deleted || m.state != MState::Destroyed)
            .filter(|m| states.is_empty() || states.iter().any(|st| st == m.state.as_str()))
            .filter(|m| region.is_empty() || m.region == region)
            .filter(|m| {
                let md = m.metadata();
                meta.iter()
                    .all(|(k, v)| md.get(k).and_then(Value::as_str) == Some(v.as_str()))
            })
            .filter(|m| m.id.as_str() > cursor.as_str())
            .collect();
        let page: Vec<_> = match limit {
            Some(l) => matching.iter().take(l.clamp(1, 1000)).copied().collect(),
            None => matching.clone(),
        };
        let body: Vec<Value> = page
            .iter()
            .map(|m| m.to_json(summary, include_leases, now))
            .collect();
        let mut resp = axum::Json(Value::Array(body)).into_response();
        if page.len() < matching.len()
            && let Some(last) = page.last()
            && let Ok(v) = HeaderValue::from_str(&last.id)
        {
            resp.headers_mut().insert("fly-next-cursor", v);
        }
        Ok(resp)
    })
}

async fn create(call: AppCall<String>, body: Bytes) -> ApiResult {
    let app = call.app();
    let body = parse_body(&body)?;
    call.world(|w, now| ok_json(200, w.create_machine(app, &body, now)?))
}

/// `GET …/{id}` (with `version` to read an old version, which shows `replaced`).
async fn show(call: AppCall<(String, String)>, Query(q): Pairs) -> ApiResult {
    let (app, id) = call.ids();
    let version = param(&q, "version").unwrap_or("").to_owned();
    let include_leases = flag(&q, "include_leases");
    call.world(|w, now| {
        let m = w.machine(app, id)?;
        let mut out = m.to_json(false, include_leases, now);
        if !version.is_empty() && version != m.version() {
            let old = m.versions.iter().find(|v| v.id == version).ok_or_else(|| {
                ApiError::not_found(format!("machine version {version} not found"))
            })?;
            if let Some(o) = out.as_object_mut() {
                o.insert("state".into(), json!("replaced"));
                o.insert("version".into(), json!(old.id));
                o.insert("instance_id".into(), json!(old.id));
                o.insert("config".into(), old.config.clone());
            }
        }
        ok_json(200, out)
    })
}

async fn update(call: AppCall<(String, String)>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let (app, id) = call.ids();
    let body = parse_body(&body)?;
    let n = nonce(&headers);
    call.world(|w, now| {
        w.check_lease(app, id, n.as_deref(), now)?;
        w.check_host(app, id)?;
        ok_json(200, w.update_machine(app, id, &body, now)?)
    })
}

async fn destroy(
    call: AppCall<(String, String)>,
    headers: HeaderMap,
    Query(q): Pairs,
) -> ApiResult {
    let (app, id) = call.ids();
    let force = flag(&q, "force") || flag(&q, "kill");
    let n = nonce(&headers);
    call.world(|w, now| {
        w.check_lease(app, id, n.as_deref(), now)?;
        ok_json(200, w.destroy_machine(app, id, force, now)?)
    })
}

/// Runs a lease-guarded lifecycle action.
fn action(
    call: &AppCall<(String, String)>,
    headers: &HeaderMap,
    f: impl FnOnce(&mut super::model::World, u64) -> Result<Value, ApiError>,
) -> ApiResult {
    let n = nonce(headers);
    let (app, id) = call.ids();
    call.world(|w, now| {
        w.check_lease(app, id, n.as_deref(), now)?;
        w.check_host(app, id)?;
        ok_json(200, f(w, now)?)
    })
}

async fn start(call: AppCall<(String, String)>, headers: HeaderMap) -> ApiResult {
    let (app, id) = call.ids();
    action(&call, &headers, |w, now| w.start_machine(app, id, now))
}

async fn stop(call: AppCall<(String, String)>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let (app, id) = call.ids();
    let body = parse_body(&body)?;
    let sig = body
        .get("signal")
        .and_then(Value::as_str)
        .unwrap_or("SIGTERM")
        .to_owned();
    if platform::stop_signal_number(&sig).is_none() {
        return Err(ApiError::bad_request(format!(
            "invalid signal {sig:?}: stop takes SIGHUP, SIGINT, SIGQUIT, SIGKILL, SIGUSR1, SIGUSR2 or SIGTERM"
        )));
    }
    action(&call, &headers, |w, now| w.stop_machine(app, id, &sig, now))
}

async fn suspend(call: AppCall<(String, String)>, headers: HeaderMap) -> ApiResult {
    let (app, id) = call.ids();
    action(&call, &headers, |w, now| w.suspend_machine(app, id, now))
}

async fn restart(
    call: AppCall<(String, String)>,
    headers: HeaderMap,
    Query(q): Pairs,
) -> ApiResult {
    let (app, id) = call.ids();
    // The spec's restart `signal` query enum: the seven stop signals.
    if let Some(sig) = param(&q, "signal")
        && platform::stop_signal_number(sig).is_none()
    {
        return Err(ApiError::bad_request(format!(
            "invalid signal {sig:?}: restart takes SIGHUP, SIGINT, SIGQUIT, SIGKILL, SIGUSR1, SIGUSR2 or SIGTERM"
        )));
    }
    action(&call, &headers, |w, now| w.restart_machine(app, id, now))
}

async fn signal(call: AppCall<(String, String)>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let (app, id) = call.ids();
    let body = parse_body(&body)?;
    let raw = body.get("signal").cloned().unwrap_or(Value::Null);
    let signo = platform::signal_from_json(&raw)
        .ok_or_else(|| ApiError::bad_request(format!("invalid signal {raw}")))?;
    action(&call, &headers, |w, now| {
        if matches!(signo, 2 | 3 | 6 | 9 | 11 | 15) {
            w.kill_process(app, id, signo, false, now)
        } else {
            let state = w.machine(app, id)?.state;
            if state != MState::Started {
                return Err(ApiError::new(
                    412,
                    format!(
                        "failed_precondition: unable to signal machine from current state: '{}'",
                        state.as_str()
                    ),
                ));
            }
            Ok(json!({"ok": true}))
        }
    })
}

async fn cordon(call: AppCall<(String, String)>, headers: HeaderMap) -> ApiResult {
    set_cordoned(&call, &headers, true)
}

async fn uncordon(call: AppCall<(String, String)>, headers: HeaderMap) -> ApiResult {
    set_cordoned(&call, &headers, false)
}

/// `cordon` / `uncordon`: a lease-guarded action that records its event.
fn set_cordoned(call: &AppCall<(String, String)>, headers: &HeaderMap, on: bool) -> ApiResult {
    let (app, id) = call.ids();
    action(call, headers, |w, now| {
        w.machine_mut(app, id)?.cordoned = on;
        let event = if on { "cordon" } else { "uncordon" };
        w.push_event(app, id, event, "user", None, now);
        Ok(json!({"ok": true}))
    })
}

const WAIT_STATES: &[&str] = &[
    "started",
    "stopped",
    "suspended",
    "destroyed",
    "failed",
    "settled",
];

enum WaitCheck {
    Done(Value),
    Failed(String),
    Pending,
}

/// Counts a wait call as blocked while it lives.
struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a std::sync::atomic::AtomicUsize) -> InFlight<'a> {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// `GET …/wait`: blocks until the state is reached, 408 after `timeout` (≤60 s).
async fn wait(call: AppCall<(String, String)>, Query(q): Pairs) -> ApiResult {
    let (app, id) = call.ids();
    let mut targets = states(&q);
    if targets.is_empty() {
        targets.push("started".into());
    }
    if let Some(bad) = targets.iter().find(|t| !WAIT_STATES.contains(&t.as_str())) {
        return Err(ApiError::bad_request(format!(
            "invalid state {bad:?}: wait accepts started, stopped, suspended, destroyed, failed or settled"
        )));
    }
    let timeout_s = match param(&q, "timeout") {
        None | Some("") => 60,
        Some(t) => {
            let t = t.trim_end_matches('s');
            t.parse::<u64>()
                .map_err(|_| {
                    ApiError::bad_request(format!("invalid timeout {t:?}: seconds expected"))
                })?
                .clamp(1, 60)
        }
    };
    let version = param(&q, "version")
        .or_else(|| param(&q, "instance_id"))
        .unwrap_or("")
        .to_owned();
    let from_event = param(&q, "from_event_id").unwrap_or("").to_owned();
    let s = &call.s;
    let deadline = s.clock.now_ms().saturating_add(timeout_s * 1000);
    let _parked = InFlight::enter(&s.waits_in_flight);
    loop {
        let mut rx = s.changed.subscribe();
        let check = call.world(|w, _| {
            let m = w.machine(app, id)?;
            let current = m.version().to_owned();
            let state = if version.is_empty() || version == current {
                m.state.as_str()
            } else if m.versions.iter().any(|v| v.id == version) {
                "replaced"
            } else {
                return Err(ApiError::not_found(format!(
                    "machine version {version} not found"
                )));
            };
            let matches = |st: &str| {
                targets.iter().any(|t| {
                    t == st
                        || (t == "settled" && MState::parse(st).is_none_or(|x| !x.is_transient()))
                })
            };
            let event_id = m.last_event_id().unwrap_or("").to_owned();
            // With from_event_id only later events count: one of them must have
            // reached a target state (events are kept oldest first).
            let reached = if from_event.is_empty() {
                matches(state)
            } else {
                let later: Vec<&super::model::Event> =
                    match m.events.iter().position(|e| e.id == from_event) {
                        Some(pos) => m.events.iter().skip(pos + 1).collect(),
                        None => m
                            .events
                            .iter()
                            .filter(|e| e.id.as_str() > from_event.as_str())
                            .collect(),
                    };
                later.iter().any(|e| matches(&e.status))
            };
            if reached {
                return Ok(WaitCheck::Done(json!({"ok": true, "state": state,
                    "version": if version.is_empty() { current } else { version.clone() },
                    "event_id": event_id})));
            }
            if (state == "destroyed" || state == "replaced")
                && !targets.iter().any(|t| t == state || t == "settled")
            {
                return Ok(WaitCheck::Failed(format!(
                    "machine failed to reach desired state, it is {state}"
                )));
            }
            Ok(WaitCheck::Pending)
        })?;
        match check {
            WaitCheck::Done(v) => return ok_json(200, v),
            WaitCheck::Failed(msg) => return Err(ApiError::bad_request(msg)),
            WaitCheck::Pending => {}
        }
        let now = s.clock.now_ms();
        if now >= deadline {
            return Err(ApiError::new(
                408,
                format!(
                    "deadline_exceeded: machine {id} did not reach state {} within {timeout_s}s",
                    targets.join(",")
                ),
            ));
        }
        if s.clock.is_stepped() {
            if rx.changed().await.is_err() {
                return Err(ApiError::new(503, "simulator shutting down"));
            }
        } else {
            let remaining = std::time::Duration::from_millis(deadline.saturating_sub(now));
            let _ = tokio::time::timeout(remaining, rx.changed()).await;
        }
    }
}

async fn events(call: AppCall<(String, String)>, Query(q): Pairs) -> ApiResult {
    let (app, id) = call.ids();
    let limit = param(&q, "limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, 50);
    call.world(|w, _| {
        let m = w.machine(app, id)?;
        let list: Vec<Value> = m
            .events
            .iter()
            .rev()
            .take(limit)
            .map(super::model::Event::to_json)
            .collect();
        ok_json(200, Value::Array(list))
    })
}

async fn versions(call: AppCall<(String, String)>) -> ApiResult {
    let (app, id) = call.ids();
    call.world(|w, _| {
        let m = w.machine(app, id)?;
        let list: Vec<Value> = m
            .versions
            .iter()
            .rev()
            .map(|v| json!({"version": v.id, "user_config": v.config}))
            .collect();
        ok_json(200, Value::Array(list))
    })
}

fn command_line(config: &Value) -> String {
    let from = |p: &str| {
        config.pointer(p).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
    };
    from("/init/cmd")
        .or_else(|| from("/init/exec"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            let image = config.get("image").and_then(Value::as_str).unwrap_or("app");
            let base = image.rsplit('/').next().unwrap_or(image);
            base.split(':').next().unwrap_or(base).to_owned()
        })
}

/// `GET …/ps`: the guest's processes (the init and the app) with its listening sockets.
async fn ps(call: AppCall<(String, String)>) -> ApiResult {
    let (app, id) = call.ids();
    call.world(|w, now| {
        let m = w.machine(app, id)?;
        if m.state != MState::Started {
            return Err(ApiError::new(412, format!("failed_precondition: machine is not running (state '{}')", m.state.as_str())));
        }
        let up = now.saturating_sub(m.updated_ms) / 1000;
        let sockets: Vec<Value> = m
            .config()
            .get("services")
            .and_then(Value::as_array)
            .map(|ss| {
                ss.iter()
                    .filter_map(|s| s.get("internal_port").and_then(Value::as_u64))
                    .map(|p| json!({"address": format!("0.0.0.0:{p}"), "proto": "tcp"}))
                    .collect()
            })
            .unwrap_or_default();
        let mem = m.config().pointer("/guest/memory_mb").and_then(Value::as_u64).unwrap_or(256);
        ok_json(200, json!([
            {"pid": 1, "command": "/.fly/init", "cpu": 0, "rss": 8_388_608u64, "rtime": up, "stime": 0,
             "directory": "/", "listen_sockets": []},
            {"pid": m.pid_base + 41, "command": command_line(m.config()), "cpu": 3,
             "rss": mem * 1024 * 1024 / 4, "rtime": up, "stime": 1, "directory": "/app",
             "listen_sockets": sockets},
        ]))
    })
}

/// `POST …/exec`: a few commands behave; anything else exits 127.
async fn exec(call: AppCall<(String, String)>, body: Bytes) -> ApiResult {
    let (app, id) = call.ids();
    let body = parse_body(&body)?;
    let argv: Vec<String> = match (
        body.get("command").and_then(Value::as_array),
        body.get("cmd").and_then(Value::as_str),
    ) {
        (Some(a), _) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        (None, Some(c)) => c.split_whitespace().map(str::to_owned).collect(),
        (None, None) => {
            return Err(ApiError::bad_request(
                "command is required (an array of strings)",
            ));
        }
    };
    call.world(|w, _| {
        let m = w.machine(app, id)?;
        if m.state != MState::Started {
            return Err(ApiError::new(
                412,
                format!(
                    "failed_precondition: machine is not running (state '{}')",
                    m.state.as_str()
                ),
            ));
        }
        let (code, out, err) = match argv.first().map(String::as_str) {
            Some("echo") => (
                0,
                format!("{}\n", argv.get(1..).unwrap_or_default().join(" ")),
                String::new(),
            ),
            Some("true") => (0, String::new(), String::new()),
            Some("false") => (1, String::new(), String::new()),
            Some("hostname") => (0, format!("{}\n", m.id), String::new()),
            Some("uname") => (0, "Linux\n".to_owned(), String::new()),
            Some("env") => {
                let env = m
                    .config()
                    .get("env")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let mut lines: Vec<String> = env
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect();
                lines.push(format!("FLY_MACHINE_ID={}", m.id));
                lines.push(format!("FLY_REGION={}", m.region));
                lines.push(format!("FLY_APP_NAME={app}"));
                (0, lines.join("\n") + "\n", String::new())
            }
            Some(cmd) => (127, String::new(), format!("sh: {cmd}: not found\n")),
            None => (0, String::new(), String::new()),
        };
        // The spec lists the exec answer under `application/octet-stream` first (and
        // `application/json`), with the same `flydv1.ExecResponse` document: answer with
        // the octet-stream type, so a client that trusts the type over the body fails here.
        let body = json!({"exit_code": code, "exit_signal": 0, "stdout": out, "stderr": err});
        let mut resp = axum::Json(body).into_response();
        resp.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        Ok(resp)
    })
}

fn lease_body(l: &super::model::Lease) -> Value {
    json!({"status": "success", "data": {"nonce": l.nonce, "owner": l.owner,
        "description": l.description, "expires_at": l.expires_ms / 1000, "version": l.version}})
}

/// `GET …/lease`: the lease *with its nonce* (realism `lease_nonce_visible`), to anyone
/// who may read the app, as Fly answers it: fly-go's `MachineLeaseData` carries `nonce` (`machine_types.go`), and
/// `fly machine leases clear` reads it there to release someone else's lease (flyctl
/// `internal/command/machine/leases.go`, `runLeaseClear`). A client must therefore
/// expect its lease to be taken from it.
async fn get_lease(call: AppCall<(String, String)>) -> ApiResult {
    let (app, id) = call.ids();
    call.world(|w, now| {
        let m = w.machine(app, id)?;
        let l = m
            .live_lease(now)
            .ok_or_else(|| ApiError::not_found("lease not found"))?;
        let mut body = lease_body(l);
        if !w.realism.lease_nonce_visible
            && let Some(data) = body.get_mut("data").and_then(Value::as_object_mut)
        {
            data.remove("nonce");
        }
        ok_json(200, body)
    })
}

/// `POST …/lease`: ttl from the body or `?ttl=`; with the nonce header it refreshes.
async fn acquire_lease(
    call: AppCall<(String, String)>,
    headers: HeaderMap,
    Query(q): Pairs,
    body: Bytes,
) -> ApiResult {
    let (app, id) = call.ids();
    let body = parse_body(&body)?;
    let ttl = body
        .get("ttl")
        .and_then(Value::as_u64)
        .or_else(|| param(&q, "ttl").and_then(|v| v.parse().ok()))
        .unwrap_or(30)
        .max(1);
    let description = str_field(&body, "description");
    let n = nonce(&headers);
    call.world(|w, now| {
        let l = w.acquire_lease(app, id, ttl, &description, n.as_deref(), now)?;
        ok_json(201, lease_body(&l))
    })
}

async fn release_lease(call: AppCall<(String, String)>, headers: HeaderMap) -> ApiResult {
    let (app, id) = call.ids();
    let n = nonce(&headers)
        .ok_or_else(|| ApiError::bad_request(format!("the {NONCE_HEADER} header is required")))?;
    call.world(|w, now| {
        let m = w.machine(app, id)?;
        let l = m
            .live_lease(now)
            .ok_or_else(|| ApiError::not_found("lease not found"))?;
        if l.nonce != n {
            return Err(ApiError::new(
                409,
                format!(
                    "aborted: lease currently held by {}, nonce does not match",
                    l.owner
                ),
            ));
        }
        w.machine_mut(app, id)?.lease = None;
        w.touch();
        ok_json(200, json!({"status": "success", "data": {"ok": true}}))
    })
}

async fn get_metadata(call: AppCall<(String, String)>) -> ApiResult {
    let (app, id) = call.ids();
    call.world(|w, _| ok_json(200, Value::Object(w.machine(app, id)?.metadata())))
}

fn write_metadata(
    w: &mut super::model::World,
    app: &str,
    id: &str,
    changes: &serde_json::Map<String, Value>,
    now: u64,
) -> Result<(), ApiError> {
    let m = w.machine_mut(app, id)?;
    if let Some(cfg) = m.config_mut().and_then(Value::as_object_mut) {
        let md = cfg.entry("metadata").or_insert_with(|| json!({}));
        if !md.is_object() {
            *md = json!({});
        }
        if let Some(md) = md.as_object_mut() {
            for (k, v) in changes {
                match v.as_str() {
                    Some(s) if !s.is_empty() => {
                        md.insert(k.clone(), json!(s));
                    }
                    _ => {
                        md.remove(k);
                    }
                }
            }
        }
    }
    m.updated_ms = now;
    w.touch();
    Ok(())
}

/// `PATCH`/`PUT …/metadata`: merges; 412 when `machine_version` is stale.
async fn patch_metadata(call: AppCall<(String, String)>, body: Bytes) -> ApiResult {
    let (app, id) = call.ids();
    let body = parse_body(&body)?;
    let changes = body
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let expected = str_field(&body, "machine_version");
    call.world(|w, now| {
        let current = w.machine(app, id)?.version().to_owned();
        if !expected.is_empty() && expected != current {
            return Err(ApiError::new(412, format!(
                "precondition failed: machine_version {expected} is not the current version {current}"
            )));
        }
        write_metadata(w, app, id, &changes, now)?;
        no_content()
    })
}

async fn get_metadata_key(call: AppCall<(String, String, String)>) -> ApiResult {
    let (app, id, key) = call.keys();
    call.world(|w, _| {
        let md = w.machine(app, id)?.metadata();
        let v = md
            .get(key)
            .ok_or_else(|| ApiError::not_found(format!("metadata key {key:?} not found")))?;
        ok_json(200, json!({"value": v}))
    })
}

async fn set_metadata_key(call: AppCall<(String, String, String)>, body: Bytes) -> ApiResult {
    let (app, id, key) = call.keys();
    let body = parse_body(&body)?;
    let value = required_str(&body, "value")?;
    call.world(|w, now| {
        let mut changes = serde_json::Map::new();
        changes.insert(key.to_owned(), json!(value));
        write_metadata(w, app, id, &changes, now)?;
        no_content()
    })
}

async fn delete_metadata_key(call: AppCall<(String, String, String)>) -> ApiResult {
    let (app, id, key) = call.keys();
    call.world(|w, now| {
        if !w.machine(app, id)?.metadata().contains_key(key) {
            return Err(ApiError::not_found(format!(
                "metadata key {key:?} not found"
            )));
        }
        let mut changes = serde_json::Map::new();
        changes.insert(key.to_owned(), Value::Null);
        write_metadata(w, app, id, &changes, now)?;
        no_content()
    })
}
