//! The project benchmark: one table of medians, each comparison measured side by side
//! in the same run, against the simulator on loopback. Run with
//! `cargo bench --bench bench` (release build). See BENCHMARKS.md.
//!
//! Rows: start-up (spawn → `initialize` answered) and idle RSS; per-call overhead over
//! stdio (round trip minus the simulator's own time) p50/p99; context cost of the default
//! `tools/list`, `app_status` and `diagnose` on the demo app (bytes, bytes/4 tokens);
//! HTTP: concurrent sessions × calls with errors, p50/p99 and server RSS.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_fly-machines-mcp");
const TOKEN: &str = "bench-token-0123456789";

struct Row {
    name: String,
    value: String,
    target: String,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// A stdio MCP session with the real binary, pointed at the simulator.
struct Stdio_ {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Stdio_ {
    fn spawn(sim_url: &str) -> (Self, Instant) {
        let started = Instant::now();
        let mut child = Command::new(BIN)
            .arg("serve")
            .env("FLY_API_TOKEN", TOKEN)
            .env("FLY_API_HOSTNAME", sim_url)
            .env("FLY_API_BASE_URL", sim_url)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        (
            Stdio_ {
                child,
                stdin,
                stdout,
                next_id: 1,
            },
            started,
        )
    }

    fn request(&mut self, method: &str, params: Value) -> (Value, usize) {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        writeln!(self.stdin, "{msg}").unwrap();
        self.stdin.flush().unwrap();
        loop {
            let mut line = String::new();
            assert!(
                self.stdout.read_line(&mut line).unwrap() > 0,
                "server closed stdout"
            );
            let v: Value = serde_json::from_str(&line).unwrap();
            if v.get("id") == Some(&json!(id)) {
                return (v, line.len());
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
}

impl Drop for Stdio_ {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Bytes of a tool result's text content (what the model reads).
fn text_bytes(result: &Value) -> usize {
    result["result"]["content"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|i| i["text"].as_str())
                .map(str::len)
                .sum()
        })
        .unwrap_or(0)
}

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
        .map(|r| r.iter().filter_map(|x| x["real_us"].as_u64()).sum())
        .unwrap_or(0)
}

async fn clear_requests(http: &reqwest::Client, base: &str) {
    http.delete(format!("{base}/__sim/requests"))
        .send()
        .await
        .unwrap();
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("benchmark: run it with `cargo bench --bench bench`");
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // The simulator runs as its own process (as `fly-machines-mcp sim`), so its time
    // is not taken from this process's runtime.
    let sim_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut sim_child = Command::new(BIN)
        .args(["sim", "--addr", &format!("127.0.0.1:{sim_port}")])
        .args([
            "--scenario",
            "demo",
            "--time-scale",
            "0",
            "--rate-limits",
            "off",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{sim_port}");
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
    let http = reqwest::Client::new();
    let mut rows = Vec::new();

    eprintln!("bench: start-up");
    // Start-up: spawn → initialize answered; idle RSS after initialize.
    let mut startup = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..30 {
        let (mut s, t0) = Stdio_::spawn(&base);
        s.initialize();
        startup.push(t0.elapsed().as_secs_f64() * 1e3);
        rss.push(rss_kb(s.child.id()) as f64 / 1024.0);
    }
    rows.push(Row {
        name: "start-up: spawn → initialize answered (median of 30)".into(),
        value: format!("{:.1} ms", median(&mut startup)),
        target: "< 20 ms".into(),
    });
    rows.push(Row {
        name: "idle RSS after initialize (median of 30)".into(),
        value: format!("{:.1} MB", median(&mut rss)),
        target: "< 15 MB".into(),
    });

    eprintln!("bench: context and overhead");
    // Context cost and per-call overhead on one long-lived session.
    let (mut s, _) = Stdio_::spawn(&base);
    s.initialize();
    let (list, list_bytes) = s.request("tools/list", json!({}));
    let n_tools = list["result"]["tools"].as_array().map_or(0, Vec::len);
    rows.push(Row {
        name: format!(
            "context: default tools/list ({n_tools} tools), JSON bytes / ≈tokens (bytes/4)"
        ),
        value: format!("{list_bytes} B / {}", list_bytes / 4),
        target: "≤ 6,000 tokens".into(),
    });
    eprintln!("bench: app_status");
    let (status, _) = s.call("app_status", json!({"app": "cdn-demo"}));
    let sb = text_bytes(&status);
    rows.push(Row {
        name: "context: app_status of the 11-machine demo app, text bytes / ≈tokens".into(),
        value: format!("{sb} B / {}", sb / 4),
        target: "≤ 1,500 tokens".into(),
    });
    let (diag, _) = s.call("diagnose", json!({"app": "cdn-demo"}));
    let db = text_bytes(&diag);
    rows.push(Row {
        name: "context: diagnose of the demo app, text bytes / ≈tokens".into(),
        value: format!("{db} B / {}", db / 4),
        target: "(reported)".into(),
    });

    let mut overhead = Vec::new();
    for _ in 0..200 {
        rt.block_on(clear_requests(&http, &base));
        let t0 = Instant::now();
        let (v, _) = s.call("platform_info", json!({}));
        let total_us = t0.elapsed().as_secs_f64() * 1e6;
        assert!(v["result"]["isError"] != json!(true), "{v}");
        let sim_us = rt.block_on(sim_time_us(&http, &base)) as f64;
        overhead.push((total_us - sim_us) / 1e3);
    }
    let p50 = median(&mut overhead.clone());
    let p99 = percentile(&mut overhead, 0.99);
    rows.push(Row {
        name: "overhead: platform_info round trip over stdio minus simulator time (200 calls)"
            .into(),
        value: format!("p50 {p50:.2} ms, p99 {p99:.2} ms"),
        target: "< 1 ms median".into(),
    });
    drop(s);

    eprintln!("bench: http");
    // HTTP: concurrent sessions × calls.
    rows.extend(http_load(&rt, &base, 100, 100));

    println!("\n| measurement | result | target |\n|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} |", r.name, r.value, r.target);
    }
    let _ = sim_child.kill();
    let _ = sim_child.wait();
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
    let mut child = Command::new(BIN)
        .args(["serve", "--http", &format!("127.0.0.1:{port}")])
        .arg("--auth-keys")
        .arg(&keys)
        .env("FLY_API_TOKEN", TOKEN)
        .env("FLY_API_HOSTNAME", sim_url)
        .env("FLY_API_BASE_URL", sim_url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
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
    let _ = child.kill();
    let _ = child.wait();
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
