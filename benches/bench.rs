//! The project benchmark: one table of medians, each comparison measured side by side
//! in the same run, against the simulator on loopback. Run with
//! `cargo bench --bench bench` (release build). See BENCHMARKS.md.
//!
//! Rows: start-up (spawn → `initialize` answered) and idle RSS; per-call overhead over
//! stdio (round trip minus the simulator's own time) p50/p99; context cost of the default
//! `tools/list`, `app_status` and `diagnose` on the demo app (bytes, bytes/4 tokens);
//! HTTP: concurrent sessions × calls with errors, p50/p99 and server RSS;
//! `provision_environment` against the latency model's critical path and the seed
//! recipe's sequential calls; pool claims against a cold provision; a pool fill of 200
//! under rate limits against the rate-limit bound; the client's own pacing of a burst
//! against the pacing bound (`pacing/`).
//!
//! The servers under test run with `FLY_MCP_PACING=off`: their client-side pacing
//! follows Fly's limits on the real clock, while the simulator applies the same limits
//! on its scaled clock (and answers 429 past them, which the client retries). With
//! pacing on, 200 calls of one action take 200 s whatever the simulator's speed: that
//! is what made earlier runs of this benchmark look hung.
//! The run is bounded: every stdio answer has a deadline and a watchdog ends the run
//! (and its child processes) after ten minutes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, Command, Stdio},
    time::{Duration, Instant},
};

use fly_machines_mcp::{
    fly,
    sim::{self, LatencyModel, Realism, SimConfig},
    workflows::{
        pool::{self, ClaimOutcome, ClaimRequest, FillOptions, Park, PoolSpec},
        sched::Control,
    },
};
use serde_json::{Value, json};

mod pacing;
mod stats;

use stats::{median, percentile, rss_kb, status_kb};

const BIN: &str = env!("CARGO_BIN_EXE_fly-machines-mcp");
const TOKEN: &str = "bench-token-0123456789";

struct Row {
    name: String,
    value: String,
    target: String,
}

/// Children of this benchmark, killed by the watchdog if the run overstays.
static CHILDREN: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

fn track(child: &Child) {
    CHILDREN.lock().unwrap().push(child.id());
}

fn untrack(child: &Child) {
    CHILDREN.lock().unwrap().retain(|p| *p != child.id());
}

/// The whole run is bounded: past `limit` the children are ended and the process
/// exits with an error instead of hanging.
fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("bench: still running after {limit:?}; giving up");
        for pid in CHILDREN.lock().unwrap().iter() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        std::process::exit(2);
    });
}

/// How long one answer over stdio may take before the run fails (not hangs).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// A stdio MCP session with the real binary, pointed at the simulator. Lines from
/// the server are read on a thread, so a missing answer is a clear failure after
/// [`ANSWER_TIMEOUT`]; the server's stderr goes to a file (a piped stderr that is
/// never drained blocks the server once the pipe is full).
struct StdioSession {
    child: Child,
    stdin: ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: tempfile::NamedTempFile,
    next_id: u64,
}

impl StdioSession {
    fn spawn(sim_url: &str) -> (Self, Instant) {
        Self::spawn_with(sim_url, &[])
    }

    fn spawn_with(sim_url: &str, args: &[&str]) -> (Self, Instant) {
        let stderr = tempfile::NamedTempFile::new().unwrap();
        let started = Instant::now();
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(args)
            .env("FLY_API_TOKEN", TOKEN)
            .env("FLY_API_HOSTNAME", sim_url)
            .env("FLY_API_BASE_URL", sim_url)
            .env("FLY_MCP_PACING", "off")
            .env(
                "RUST_LOG",
                std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().unwrap())
            .spawn()
            .unwrap();
        track(&child);
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (
            StdioSession {
                child,
                stdin,
                lines,
                stderr,
                next_id: 1,
            },
            started,
        )
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(self.stderr.path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Sends a request and returns its answer and the answer's size in bytes.
    /// Notifications and requests from the server in between are skipped (a
    /// server-to-client request is answered with an error so the server never waits).
    fn request(&mut self, method: &str, params: Value) -> (Value, usize) {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        writeln!(self.stdin, "{msg}").unwrap();
        self.stdin.flush().unwrap();
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => panic!(
                    "no answer to {method} (id {id}): {e:?}; server stderr:\n{}",
                    self.stderr_tail()
                ),
            };
            let v: Value = match serde_json::from_str(&line) {
                Ok(v) => v,
                Err(_) => panic!("not JSON-RPC on stdout: {line}"),
            };
            if v.get("method").is_some() {
                if let Some(req_id) = v.get("id") {
                    let refusal = json!({"jsonrpc": "2.0", "id": req_id,
                        "error": {"code": -32601, "message": "not supported by the benchmark"}});
                    writeln!(self.stdin, "{refusal}").unwrap();
                    self.stdin.flush().unwrap();
                }
                continue;
            }
            if v.get("id") == Some(&json!(id)) {
                return (v, line.len() + 1);
            }
        }
    }

    fn notify(&mut self, method: &str) {
        writeln!(
            self.stdin,
            "{}",
            json!({"jsonrpc": "2.0", "method": method})
        )
        .unwrap();
        self.stdin.flush().unwrap();
    }

    fn initialize(&mut self) {
        let (v, _) = self.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "bench", "version": "0"}}),
        );
        assert!(v.get("result").is_some(), "initialize failed: {v}");
        self.notify("notifications/initialized");
    }

    fn call(&mut self, tool: &str, args: Value) -> (Value, usize) {
        self.request("tools/call", json!({"name": tool, "arguments": args}))
    }

    /// A call that must succeed; returns the result.
    fn call_ok(&mut self, tool: &str, args: Value) -> Value {
        let (v, _) = self.call(tool, args);
        assert!(
            v.get("result").is_some() && v["result"]["isError"] != json!(true),
            "{tool} failed: {v}"
        );
        v["result"].clone()
    }
}

impl Drop for StdioSession {
    fn drop(&mut self) {
        untrack(&self.child);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Bytes of a tool result's text content (what the model reads), from `result`.
fn text_bytes(result: &Value) -> usize {
    result["content"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|i| i["text"].as_str())
                .map(str::len)
                .sum()
        })
        .unwrap_or(0)
}

/// The simulator's own time for the requests it logged since the last clear: the
/// longest one, since a tool's requests run concurrently (`platform_info` asks for the
/// regions and the VM sizes at once). Subtracting the longest rather than the sum
/// keeps the overhead figure on the safe side.
async fn sim_time_us(http: &reqwest::Client, base: &str) -> u64 {
    let v: Value = http
        .get(format!("{base}/__sim/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["requests"]
        .as_array()
        .and_then(|r| r.iter().filter_map(|x| x["real_us"].as_u64()).max())
        .unwrap_or(0)
}

async fn clear_requests(http: &reqwest::Client, base: &str) {
    http.delete(format!("{base}/__sim/requests"))
        .send()
        .await
        .unwrap();
}

/// Starts `fly-machines-mcp sim` as its own process (so the simulator's work is not
/// done on this process's runtime) and waits until it answers.
/// Starts `sim` with `--realism off`: the benchmark measures the workflows against the
/// latency model's critical path, and the realistic profile's consistency windows (a
/// new app hidden for a moment, …) are not part of that model.
fn spawn_sim(rt: &tokio::runtime::Runtime, args: &[&str]) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(BIN)
        .args([
            "sim",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--realism",
            "off",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    track(&child);
    let base = format!("http://127.0.0.1:{port}");
    rt.block_on(async {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            if http.get(format!("{base}/__sim/state")).send().await.is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "the simulator did not start");
        }
    });
    (child, base)
}

fn stop(mut child: Child) {
    untrack(&child);
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("benchmark: run it with `cargo bench --bench bench`");
        return;
    }
    watchdog(Duration::from_secs(600));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let bench_started = Instant::now();
    let (sim_child, base) = spawn_sim(
        &rt,
        &[
            "--scenario",
            "demo",
            "--time-scale",
            "0",
            "--rate-limits",
            "off",
        ],
    );
    let http = reqwest::Client::new();
    let mut rows = Vec::new();

    eprintln!("bench: start-up");
    // Start-up: spawn → initialize answered; idle RSS after initialize.
    let mut startup = Vec::new();
    let (mut rss, mut anon, mut file) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..30 {
        let (mut s, t0) = StdioSession::spawn(&base);
        s.initialize();
        startup.push(t0.elapsed().as_secs_f64() * 1e3);
        let pid = s.child.id();
        rss.push(rss_kb(pid) as f64 / 1024.0);
        anon.push(status_kb(pid, "RssAnon:") as f64 / 1024.0);
        file.push(status_kb(pid, "RssFile:") as f64 / 1024.0);
    }
    rows.push(Row {
        name: "start-up: spawn → initialize answered (median of 30)".into(),
        value: format!("{:.1} ms", median(&mut startup)),
        target: "< 20 ms".into(),
    });
    rows.push(Row {
        name: "idle RSS after initialize (median of 30): anonymous + file-backed (binary pages)"
            .into(),
        value: format!(
            "{:.1} MB ({:.1} + {:.1})",
            median(&mut rss),
            median(&mut anon),
            median(&mut file)
        ),
        target: "< 15 MB".into(),
    });

    eprintln!("bench: context and overhead");
    // Context cost and per-call overhead on one long-lived session.
    let (mut s, _) = StdioSession::spawn(&base);
    s.initialize();
    let (list, list_bytes) = s.request("tools/list", json!({}));
    let n_tools = list["result"]["tools"].as_array().map_or(0, Vec::len);
    rows.push(Row {
        name: format!(
            "context: default tools/list ({n_tools} tools), JSON-RPC answer bytes / ≈tokens (bytes/4)"
        ),
        value: format!("{list_bytes} B / {}", list_bytes / 4),
        target: "≤ 6,000 tokens".into(),
    });
    let status = s.call_ok("app_status", json!({"app": "cdn-demo"}));
    let sb = text_bytes(&status);
    let machines = status["structuredContent"]["machine_count"]
        .as_u64()
        .unwrap_or(0);
    let whole = status.to_string().len();
    rows.push(Row {
        name: format!(
            "context: app_status of the {machines}-machine demo app, text bytes / ≈tokens (whole result with structuredContent)"
        ),
        value: format!("{sb} B / {} ({whole} B / {})", sb / 4, whole / 4),
        target: "≤ 1,500 tokens".into(),
    });
    let diag = s.call_ok("diagnose", json!({"app": "cdn-demo"}));
    let db = text_bytes(&diag);
    let whole = diag.to_string().len();
    rows.push(Row {
        name: "context: diagnose of the demo app, text bytes / ≈tokens (whole result)".into(),
        value: format!("{db} B / {} ({whole} B / {})", db / 4, whole / 4),
        target: "(reported)".into(),
    });

    let mut overhead = Vec::new();
    for _ in 0..200 {
        rt.block_on(clear_requests(&http, &base));
        let t0 = Instant::now();
        s.call_ok("platform_info", json!({}));
        let total_us = t0.elapsed().as_secs_f64() * 1e6;
        let sim_us = rt.block_on(sim_time_us(&http, &base)) as f64;
        overhead.push((total_us - sim_us) / 1e3);
    }
    let p50 = median(&mut overhead.clone());
    let p99 = percentile(&mut overhead, 0.99);
    rows.push(Row {
        name: "overhead: platform_info round trip over stdio minus the simulator's time (its longest request; 200 calls)"
            .into(),
        value: format!("p50 {p50:.2} ms, p99 {p99:.2} ms"),
        target: "< 1 ms median".into(),
    });
    drop(s);

    eprintln!("bench: http");
    // HTTP: concurrent sessions × calls.
    rows.extend(http_load(&rt, &base, 100, 100));
    stop(sim_child);

    eprintln!("bench: provision, seed recipe and pool claims");
    rows.extend(provision_rows(&rt));
    rows.push(rt.block_on(stepped_claim_row(PROVISION_RUNS as u32)));

    eprintln!("bench: fleet of 200");
    rows.extend(rt.block_on(fleet_rows(200, 3)));

    eprintln!("bench: pacing");
    rows.push(rt.block_on(pacing::pacing_row(3)));

    println!("\n| measurement | result | target |\n|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} |", r.name, r.value, r.target);
    }
    println!(
        "\nbench: finished in {:.0} s",
        bench_started.elapsed().as_secs_f64()
    );
}

/// Parses one JSON-RPC answer from a Streamable HTTP response (JSON or SSE).
fn parse_answer(content_type: &str, body: &str) -> Option<Value> {
    if content_type.starts_with("application/json") {
        return serde_json::from_str(body).ok();
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
}

fn http_load(
    rt: &tokio::runtime::Runtime,
    sim_url: &str,
    sessions: usize,
    calls: usize,
) -> Vec<Row> {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "bench:bench-server-key-0123456789\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(BIN)
        .args(["serve", "--http", &format!("127.0.0.1:{port}")])
        .arg("--auth-keys")
        .arg(&keys)
        .env("FLY_API_TOKEN", TOKEN)
        .env("FLY_API_HOSTNAME", sim_url)
        .env("FLY_API_BASE_URL", sim_url)
        .env("FLY_MCP_PACING", "off")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    track(&child);
    let base = format!("http://127.0.0.1:{port}");
    let pid = child.id();
    let result = rt.block_on(async move {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(sessions)
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            if let Ok(r) = http.get(format!("{base}/healthz")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "HTTP server did not start");
        }
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..sessions {
            let http = http.clone();
            let base = base.clone();
            tasks.push(tokio::spawn(async move {
                let post = |body: Value, session: Option<String>| {
                    let mut req = http
                        .post(format!("{base}/mcp"))
                        .bearer_auth("bench-server-key-0123456789")
                        .header("accept", "application/json, text/event-stream")
                        .json(&body);
                    if let Some(s) = session {
                        req = req.header("mcp-session-id", s);
                    }
                    req.send()
                };
                let mut lat = Vec::new();
                let mut errors = 0usize;
                let init = post(
                    json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                        "protocolVersion":"2025-06-18","capabilities":{},
                        "clientInfo":{"name":"bench","version":"0"}}}),
                    None,
                )
                .await;
                let Ok(init) = init else {
                    return (lat, calls + 1);
                };
                let session = init
                    .headers()
                    .get("mcp-session-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let _ = init.text().await;
                let _ = post(
                    json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
                    session.clone(),
                )
                .await;
                for i in 0..calls {
                    let t0 = Instant::now();
                    let r = post(
                        json!({"jsonrpc":"2.0","id":i+1,"method":"tools/call",
                               "params":{"name":"platform_info","arguments":{}}}),
                        session.clone(),
                    )
                    .await;
                    let ok = match r {
                        Ok(r) if r.status().is_success() => {
                            let ct = r
                                .headers()
                                .get("content-type")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_owned();
                            let body = r.text().await.unwrap_or_default();
                            parse_answer(&ct, &body)
                                .is_some_and(|v| v["result"]["isError"] != json!(true))
                        }
                        _ => false,
                    };
                    lat.push(t0.elapsed().as_secs_f64() * 1e3);
                    if !ok {
                        errors += 1;
                    }
                }
                (lat, errors)
            }));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (lat, e) = t.await.unwrap();
            all.extend(lat);
            errors += e;
        }
        (all, errors, started.elapsed())
    });
    let server_rss = rss_kb(pid) as f64 / 1024.0;
    stop(child);
    let (mut lat, errors, wall) = result;
    let n = lat.len();
    let p50 = median(&mut lat.clone());
    let p99 = percentile(&mut lat, 0.99);
    vec![Row {
        name: format!(
            "HTTP: {sessions} concurrent sessions × {calls} platform_info calls ({n} calls in {:.1} s)",
            wall.as_secs_f64()
        ),
        value: format!(
            "errors {errors}, p50 {p50:.1} ms, p99 {p99:.1} ms, server RSS {server_rss:.1} MB"
        ),
        target: "0 errors".into(),
    }]
}

/// Time scale of the provisioning rows: large enough that the latency model (seconds
/// of model time) dominates the per-request noise of a loaded machine.
const PROVISION_SCALE: f64 = 0.2;
/// Provision, recipe and claim runs (interleaved, see [`provision_rows`]).
const PROVISION_RUNS: usize = 5;

/// The seed recipe (`seeds/002`): create the app, allocate a shared v4 and a v6
/// address, create a volume, create the machine, wait until started: one call after
/// the other, as plain HTTP requests.
async fn seed_recipe(http: &reqwest::Client, base: &str, app: &str) {
    async fn send(req: reqwest::RequestBuilder, what: &str) -> Value {
        let r = req.bearer_auth(TOKEN).send().await.unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success() && v.get("errors").is_none(),
            "seed recipe: {what}: {status} {v}"
        );
        v
    }
    send(
        http.post(format!("{base}/v1/apps"))
            .json(&json!({"app_name": app, "org_slug": "personal"})),
        "create app",
    )
    .await;
    for (kind, selection) in [
        ("shared_v4", "app { sharedIpAddress }"),
        ("v6", "ipAddress { id address type region createdAt }"),
    ] {
        let query = format!(
            "mutation($input: AllocateIPAddressInput!) {{ allocateIpAddress(input: $input) {{ {selection} }} }}"
        );
        send(
            http.post(format!("{base}/graphql")).json(&json!({
                "query": query,
                "variables": {"input": {"appId": app, "type": kind, "region": ""}}
            })),
            "allocate IP",
        )
        .await;
    }
    let volume = send(
        http.post(format!("{base}/v1/apps/{app}/volumes"))
            .json(&json!({"name": "data", "region": "iad", "size_gb": 1})),
        "create volume",
    )
    .await;
    let machine = send(
        http.post(format!("{base}/v1/apps/{app}/machines"))
            .json(&json!({
                "region": "iad",
                "config": {
                    "image": "nginx:latest",
                    "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 1024},
                    "mounts": [{"volume": volume["id"], "path": "/data",
                                "extend_threshold_percent": 80, "add_size_gb": 1,
                                "size_gb_limit": 100}],
                    "services": [{"protocol": "tcp", "internal_port": 8080,
                        "autostop": "stop", "autostart": true,
                        "ports": [{"port": 80, "handlers": ["http"], "force_https": true},
                                  {"port": 443, "handlers": ["http", "tls"]}]}]
                }
            })),
        "create machine",
    )
    .await;
    let id = machine["id"].as_str().unwrap();
    send(
        http.get(format!(
            "{base}/v1/apps/{app}/machines/{id}/wait?state=started&timeout=60"
        )),
        "wait",
    )
    .await;
}

/// `provision_environment` against its critical-path bound and the seed recipe, and
/// claims from a suspended pool against the cold provision, all on one simulator
/// (separate process, empty world, rate limits on) at [`PROVISION_SCALE`]. The runs
/// are interleaved (provision, recipe, claim; five times) so the server's real-time
/// client pacing (Fly's 1 req/s per action, unscaled) never queues a call.
fn provision_rows(rt: &tokio::runtime::Runtime) -> Vec<Row> {
    let scale = PROVISION_SCALE.to_string();
    let (sim_child, base) = spawn_sim(
        rt,
        &[
            "--scenario",
            "empty",
            "--time-scale",
            &scale,
            "--rate-limits",
            "on",
        ],
    );
    let http = reqwest::Client::new();
    let (mut s, _) = StdioSession::spawn_with(&base, &["--toolsets", "all", "--confirm", "never"]);
    s.initialize();
    let to_model_ms = |d: Duration| d.as_secs_f64() * 1e3 / PROVISION_SCALE;

    // The pool: an app and suspended members, filled through the tool.
    rt.block_on(async {
        let r = http
            .post(format!("{base}/v1/apps"))
            .bearer_auth(TOKEN)
            .json(&json!({"app_name": "pool-bench", "org_slug": "personal"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "create pool app: {}", r.status());
    });
    s.call_ok(
        "pool_fill",
        json!({"app": "pool-bench", "pool": "bench", "size": PROVISION_RUNS + 1,
               "image": "nginx:latest", "region": "iad", "park": "suspended"}),
    );

    let (mut provision, mut recipe, mut claim) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..PROVISION_RUNS {
        let t0 = Instant::now();
        let r = s.call_ok(
            "provision_environment",
            json!({"app": format!("prov-{i}"), "region": "iad", "image": "nginx:latest",
                   "volume": {"size_gb": 1}, "internal_port": 8080, "wait_timeout_s": 60}),
        );
        provision.push(to_model_ms(t0.elapsed()));
        assert_eq!(
            r["structuredContent"]["machine_state"], "started",
            "provision_environment did not end started: {r}"
        );

        let t0 = Instant::now();
        rt.block_on(seed_recipe(&http, &base, &format!("seed-{i}")));
        recipe.push(to_model_ms(t0.elapsed()));

        let t0 = Instant::now();
        let r = s.call_ok(
            "claim_environment",
            json!({"app": "pool-bench", "pool": "bench", "user": format!("user-{i}")}),
        );
        claim.push(to_model_ms(t0.elapsed()));
        assert_eq!(
            r["structuredContent"]["started_from"], "suspended",
            "claim did not take a suspended member: {r}"
        );
    }
    drop(s);
    stop(sim_child);

    let l = LatencyModel::default();
    // Every API answer costs api_ms before it is handled; IP allocation and volume
    // create add their own delay to the answer; a machine begins booting when its
    // create is handled and is started create_ms + boot_ms later.
    let ip = l.api_ms + l.ip_allocate_ms;
    let volume = l.api_ms + l.volume_create_ms;
    let machine = l.api_ms + l.create_ms + l.boot_ms;
    let bound = (l.api_ms + ip.max(volume) + machine) as f64;
    let recipe_sum = (l.api_ms + 2 * ip + volume + machine) as f64;
    let (p, r, c) = (
        median(&mut provision),
        median(&mut recipe),
        median(&mut claim),
    );
    let resume = (l.api_ms + l.resume_ms) as f64;
    vec![
        Row {
            name: format!(
                "provision_environment (app, 2 IPs, 1 GB volume, machine, wait started) over stdio, time scale {PROVISION_SCALE}, median of {PROVISION_RUNS}, model ms"
            ),
            value: format!(
                "{p:.0} ms = {:.2} × critical-path bound {bound:.0} ms (app {} → max(IP {ip}, volume {volume}) → machine create+boot {machine})",
                p / bound,
                l.api_ms
            ),
            target: "≤ 1.15 × bound".into(),
        },
        Row {
            name: format!(
                "seed recipe (sequential raw HTTP: app, v4, v6, volume, machine, wait), same simulator, median of {PROVISION_RUNS}"
            ),
            value: format!(
                "{r:.0} ms (model sum {recipe_sum:.0} ms); provision_environment takes {:.2} × the recipe",
                p / r
            ),
            target: "(reported)".into(),
        },
        Row {
            name: format!(
                "claim_environment from a suspended pool over stdio vs cold provision_environment, same run, median of {PROVISION_RUNS}"
            ),
            value: format!(
                "{c:.0} ms = {:.2} × one resume call ({} API + {} resume = {resume:.0} ms); cold provision is {:.1} × the claim",
                c / resume,
                l.api_ms,
                l.resume_ms,
                p / c
            ),
            target: "≤ 1.2 × resume".into(),
        },
    ]
}

/// A test-speed client (no pacing, millisecond retries) for an in-process simulator,
/// a new app on it and the spec of a suspended pool `bench` in that app.
async fn pool_app(sim: &sim::SimHandle, app: &str) -> (fly::Client, PoolSpec) {
    let cfg = fly::ClientConfig::local(sim.base_url().parse().unwrap(), fly::Token::parse(TOKEN))
        .unwrap();
    let c = fly::Client::new(cfg).unwrap();
    c.create_app(&fly::CreateApp {
        name: app.to_owned(),
        org_slug: "personal".to_owned(),
        ..fly::CreateApp::default()
    })
    .await
    .unwrap();
    let spec = PoolSpec {
        app: app.to_owned(),
        pool: "bench".to_owned(),
        region: Some("iad".to_owned()),
        config: fly::MachineConfig {
            image: "nginx:latest".to_owned(),
            ..fly::MachineConfig::default()
        },
        park: Park::Suspended,
    };
    (c, spec)
}

/// Fills a pool of `size` in one app under Fly's rate limits (in-process simulator at
/// a time scale, the pool workflow with the create pacing scaled alike), `runs` times.
async fn fleet_rows(size: u32, runs: usize) -> Vec<Row> {
    let scale = 0.05;
    let l = LatencyModel::default();
    let tail = Duration::from_millis(l.create_ms + l.boot_ms + l.suspend_ms);
    let bound = (pool::create_rate_bound(size) + tail).mul_f64(scale);
    let (mut ratios, mut failed, mut limited, mut requests) = (Vec::new(), 0, 0, 0);
    for run in 0..runs {
        let sim = sim::start(
            SimConfig {
                time_scale: scale,
                ..SimConfig::for_tests()
                    .with_rate_limits(true)
                    .with_realism(Realism::off())
            },
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let (c, spec) = pool_app(&sim, &format!("fleet-{run}")).await;
        let opts = FillOptions {
            concurrency: 16,
            create_interval: Duration::from_secs_f64(pool::CREATE_RATE_PER_SEC.recip() * scale),
            park_timeout: Duration::from_secs(120),
            fast_backoff: true,
        };
        let r = pool::fill(&c, &spec, size, &opts, &Control::detached())
            .await
            .unwrap();
        let log: Value = reqwest::get(format!("{}/__sim/requests", sim.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let all = log["requests"].as_array().cloned().unwrap_or_default();
        limited += all.iter().filter(|r| r["status"] == 429).count();
        requests += all.len();
        failed += r.failed.len() + (size as usize).saturating_sub(r.created + r.parked);
        ratios.push(r.elapsed.as_secs_f64() / bound.as_secs_f64());
        sim.shutdown().await;
    }
    let ratio = median(&mut ratios);
    vec![Row {
        name: format!(
            "fleet: pool_fill of {size} suspended environments, rate limits on, time scale {scale}, median of {runs}"
        ),
        value: format!(
            "{:.1} s model = {ratio:.2} × rate-limit bound {:.1} s (({size} − burst {}) / {} create/s + create {} + boot {} + suspend {} ms); failures {failed}; 429s {limited} of {requests} requests",
            bound.as_secs_f64() / scale * ratio,
            bound.as_secs_f64() / scale,
            pool::CREATE_BURST,
            pool::CREATE_RATE_PER_SEC,
            l.create_ms,
            l.boot_ms,
            l.suspend_ms
        ),
        target: "0 failures, ≤ 1.2 × bound".into(),
    }]
}

/// Runs `fut` on a stepped simulator, moving its clock by `step_ms` each time the
/// future has been pending for a few real milliseconds; fails after a minute.
async fn drive<T>(
    sim: &sim::SimHandle,
    step_ms: u64,
    fut: impl std::future::Future<Output = T>,
) -> T {
    tokio::pin!(fut);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(v) = tokio::time::timeout(Duration::from_millis(10), &mut fut).await {
            return v;
        }
        sim.advance(Duration::from_millis(step_ms));
    }
    panic!("a stepped run did not finish within a minute");
}

/// Claims from a suspended pool on the simulator's own clock (stepped mode: API
/// answers take no simulated time, only the platform's transitions do), against the
/// model's resume latency: what the claim workflow adds to the resume itself.
async fn stepped_claim_row(claims: u32) -> Row {
    let sim = sim::start(
        SimConfig::stepped().with_realism(Realism::off()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let app = "stepped-pool";
    let (c, spec) = pool_app(&sim, app).await;
    let opts = FillOptions {
        concurrency: 8,
        create_interval: Duration::ZERO,
        park_timeout: Duration::from_secs(600),
        fast_backoff: true,
    };
    let filled = drive(
        &sim,
        100,
        pool::fill(&c, &spec, claims, &opts, &Control::detached()),
    )
    .await
    .unwrap();
    assert!(filled.failed.is_empty(), "{:?}", filled.failed);
    let listings = pool::PoolListings::new();
    let mut ms = Vec::new();
    for i in 0..claims {
        let req = ClaimRequest {
            app: app.to_owned(),
            pool: "bench".to_owned(),
            user: format!("stepped-{i}"),
            ttl: Duration::from_secs(3600),
            start_timeout: Duration::from_secs(120),
        };
        let t0 = sim.now_ms();
        match drive(
            &sim,
            5,
            pool::claim(&c, &listings, &req, jiff::Timestamp::now()),
        )
        .await
        .unwrap()
        {
            ClaimOutcome::Claimed(env) => assert_eq!(env.started_from, "suspended"),
            ClaimOutcome::Empty { .. } => panic!("the stepped pool ran dry"),
        }
        ms.push((sim.now_ms() - t0) as f64);
    }
    sim.shutdown().await;
    let l = LatencyModel::default();
    let claim = median(&mut ms);
    Row {
        name: format!(
            "claim from a suspended pool on the simulator clock (stepped: API answers take no simulated time; 5 ms steps; rate limits off), median of {claims}"
        ),
        value: format!(
            "{claim:.0} ms = {:.2} × resume {} ms",
            claim / l.resume_ms as f64,
            l.resume_ms
        ),
        target: "≤ 1.2 × resume".into(),
    }
}
