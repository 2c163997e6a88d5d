//! A small, bounded load generator for the simulator: starts it in-process with
//! rate limits, faults and latency off, then sends a fixed number of simple requests
//! (Get Machine) over keep-alive connections and reports requests per second. The
//! client side is a minimal HTTP/1.1 writer/reader on raw sockets so that it costs
//! little next to the server being measured.
//!
//! `cargo run --example sim_throughput -- [REQUESTS] [CONNECTIONS]` (defaults 20000, 16).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use fly_machines_mcp::sim::{self, SimConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let total: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000)
        .min(1_000_000);
    let conns: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(16)
        .clamp(1, 256);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut cfg = SimConfig::for_tests();
    cfg.time_scale = 0.0;
    let handle = sim::start(cfg, "127.0.0.1:0".parse()?).await?;
    let base = handle.base_url();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conns)
        .build()?;
    let auth = "Bearer bench";
    let created = http
        .post(format!("{base}/v1/apps"))
        .header("Authorization", auth)
        .json(&serde_json::json!({"name": "bench", "org_slug": "personal"}))
        .send()
        .await?;
    assert_eq!(created.status(), 201);
    let m: serde_json::Value = http
        .post(format!("{base}/v1/apps/bench/machines"))
        .header("Authorization", auth)
        .json(&serde_json::json!({"region": "iad", "config": {"image": "nginx"}}))
        .send()
        .await?
        .json()
        .await?;
    let path = format!(
        "/v1/apps/bench/machines/{}",
        m.get("id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
    );
    let addr = handle.addr();
    let per = total / conns;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            keep_alive_gets(addr, &path, per).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = ok as f64 / secs;
    println!(
        "{ok} ok of {} requests over {conns} connections in {secs:.2}s: {rate:.0} req/s",
        per * conns
    );
    handle.shutdown().await;
    Ok(())
}

/// Sends `n` GETs one after another on one keep-alive connection; counts the 200s.
async fn keep_alive_gets(
    addr: std::net::SocketAddr,
    path: &str,
    n: usize,
) -> std::io::Result<usize> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: sim\r\nAuthorization: Bearer bench\r\n\r\n");
    let mut ok = 0;
    let mut line = String::new();
    let mut body = Vec::new();
    for _ in 0..n {
        w.write_all(request.as_bytes()).await?;
        let mut len = 0usize;
        let mut status_ok = false;
        let mut first = true;
        loop {
            line.clear();
            if r.read_line(&mut line).await? == 0 {
                return Ok(ok);
            }
            if first {
                status_ok = line.starts_with("HTTP/1.1 200");
                first = false;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        body.resize(len, 0);
        r.read_exact(&mut body).await?;
        if status_ok {
            ok += 1;
        }
    }
    Ok(ok)
}
