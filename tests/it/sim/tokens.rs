//! The simulator as a macaroon verifier, over plain HTTP: it mints tokens with its own
//! key, refuses one whose signature chain is broken (401) and enforces the caveats a
//! holder appended (403 `{"error":"unauthorized"}`). Caveats are appended here with a
//! few lines of msgpack + HMAC written for the test (never the project's client).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use rmpv::Value as Mp;
use serde_json::{Value, json};
use sha2::Sha256;

use super::Sim;
use fly_machines_mcp::sim::{Scenario, SimConfig};

fn enc(v: &Mp) -> Vec<u8> {
    let mut b = Vec::new();
    rmpv::encode::write_value(&mut b, v).unwrap();
    b
}

/// Appends `(kind, body)` to every permission token of `header`
/// (`tail = HMAC(tail, msgpack([kind, body]))`, superfly/macaroon `Macaroon.Add`).
fn append(header: &str, kind: u64, body: Mp) -> String {
    let parts: Vec<String> = header
        .trim_start_matches("FlyV1 ")
        .split(',')
        .map(|p| {
            let raw = B64.decode(p.trim_start_matches("fm2_")).unwrap();
            let Mp::Array(mut f) = rmpv::decode::read_value(&mut &raw[..]).unwrap() else {
                panic!("not a macaroon")
            };
            let Mp::Binary(tail) = f[3].clone() else {
                panic!()
            };
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&tail).unwrap();
            mac.update(&enc(&Mp::Array(vec![Mp::from(kind), body.clone()])));
            if let Mp::Array(cavs) = &mut f[2] {
                cavs.push(Mp::from(kind));
                cavs.push(body.clone());
            }
            f[3] = Mp::Binary(mac.finalize().into_bytes().to_vec());
            format!("fm2_{}", B64.encode(enc(&Mp::Array(f))))
        })
        .collect();
    format!("FlyV1 {}", parts.join(","))
}

fn action(mask: u16) -> (u64, Mp) {
    (26, Mp::from(mask))
}

async fn demo() -> Sim {
    Sim::start(SimConfig::stepped().with_scenario(Scenario::Demo)).await
}

async fn call(
    sim: &Sim,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = sim
        .http
        .request(method.parse().unwrap(), sim.url(path))
        .header("Authorization", token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_minted_org_token_reaches_its_org_only() {
    let sim = demo().await;
    let token = sim.handle.org_token("cdn-org").unwrap();
    assert!(token.starts_with("FlyV1 fm2_"));
    let (st, _) = call(&sim, &token, "GET", "/v1/apps/cdn-demo/machines", None).await;
    assert_eq!(st, 200);
    // notes-app is in the viewer's personal org, which this token does not name.
    let (st, body) = call(&sim, &token, "GET", "/v1/apps/notes-app/machines", None).await;
    assert_eq!((st, body), (403, json!({"error": "unauthorized"})));
    // The viewer's tokens (one per org) reach both.
    let viewer = sim.handle.viewer_token();
    for app in ["cdn-demo", "notes-app"] {
        let (st, _) = call(&sim, &viewer, "GET", &format!("/v1/apps/{app}"), None).await;
        assert_eq!(st, 200, "{app}");
    }
    // And the control API hands out the same kind of token.
    let resp: Value = sim
        .http
        .post(sim.url("/__sim/tokens"))
        .json(&json!({"org": "personal"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let personal = resp["token"].as_str().unwrap();
    let (st, _) = call(&sim, personal, "GET", "/v1/apps/notes-app", None).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn a_broken_signature_is_refused_as_fly_refuses_it() {
    let sim = demo().await;
    let token = sim.handle.org_token("cdn-org").unwrap();
    // Append a caveat but keep the old tail: the chain no longer matches.
    let (kind, body) = action(1);
    let attenuated = append(&token, kind, body);
    let raw = B64
        .decode(attenuated.trim_start_matches("FlyV1 fm2_"))
        .unwrap();
    let Mp::Array(mut f) = rmpv::decode::read_value(&mut &raw[..]).unwrap() else {
        panic!()
    };
    let orig = B64.decode(token.trim_start_matches("FlyV1 fm2_")).unwrap();
    let Mp::Array(o) = rmpv::decode::read_value(&mut &orig[..]).unwrap() else {
        panic!()
    };
    f[3] = o[3].clone();
    let forged = format!("FlyV1 fm2_{}", B64.encode(enc(&Mp::Array(f))));
    let (st, body) = call(&sim, &forged, "GET", "/v1/apps/cdn-demo", None).await;
    assert_eq!(
        (st, body),
        (
            401,
            json!({"error": "Authenticate: token validation error"})
        )
    );
    // Undecodable tokens are judged as before (this simulator requires none).
    let (st, _) = call(
        &sim,
        "Bearer fm2_not-a-macaroon",
        "GET",
        "/v1/apps/cdn-demo",
        None,
    )
    .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn appended_caveats_are_enforced() {
    let sim = demo().await;
    let token = sim.handle.org_token("cdn-org").unwrap();
    let (_, machines) = call(&sim, &token, "GET", "/v1/apps/cdn-demo/machines", None).await;
    let id = machines[0]["id"].as_str().unwrap().to_owned();

    // Read-only: reads pass, a stop (control) and a delete are refused.
    let (k, b) = action(1);
    let read_only = append(&token, k, b);
    let (st, _) = call(
        &sim,
        &read_only,
        "GET",
        &format!("/v1/apps/cdn-demo/machines/{id}"),
        None,
    )
    .await;
    assert_eq!(st, 200);
    let (st, body) = call(
        &sim,
        &read_only,
        "POST",
        &format!("/v1/apps/cdn-demo/machines/{id}/stop"),
        Some(json!({})),
    )
    .await;
    assert_eq!((st, body), (403, json!({"error": "unauthorized"})));
    let (st, _) = call(
        &sim,
        &read_only,
        "POST",
        "/v1/apps",
        Some(json!({"name": "nope-ro", "org_slug": "cdn-org"})),
    )
    .await;
    assert_eq!(st, 403);

    // Apps {cdn-demo: r}: another app of the same org, and org-level calls, are refused.
    let (st, app) = call(&sim, &token, "GET", "/v1/apps/cdn-demo", None).await;
    assert_eq!(st, 200);
    let app_id = app["internal_numeric_id"].as_u64().unwrap();
    let apps_only = append(
        &token,
        3,
        Mp::Array(vec![Mp::Map(vec![(Mp::from(app_id), Mp::from(1u16))])]),
    );
    let (st, _) = call(&sim, &apps_only, "GET", "/v1/apps/cdn-demo/machines", None).await;
    assert_eq!(st, 200);
    let (st, _) = call(&sim, &apps_only, "GET", "/v1/apps?org_slug=cdn-org", None).await;
    assert_eq!(st, 403, "an Apps caveat refuses requests that name no app");
    // IfPresent {Apps …} else r: the org listing is a read, so it passes.
    let if_present = append(
        &token,
        13,
        Mp::Array(vec![
            Mp::Array(vec![
                Mp::from(3u64),
                Mp::Array(vec![Mp::Map(vec![(Mp::from(app_id), Mp::from(1u16))])]),
            ]),
            Mp::from(1u16),
        ]),
    );
    let (st, _) = call(&sim, &if_present, "GET", "/v1/apps?org_slug=cdn-org", None).await;
    assert_eq!(st, 200);
    let (st, _) = call(
        &sim,
        &if_present,
        "POST",
        "/v1/apps",
        Some(json!({"name": "nope-ip", "org_slug": "cdn-org"})),
    )
    .await;
    assert_eq!(st, 403, "creating is not a read");

    // ValidityWindow: refused once the simulator's clock passes not_after.
    let now = i64::try_from(sim.handle.now_ms() / 1000).unwrap();
    let window = append(
        &token,
        4,
        Mp::Array(vec![Mp::from(now - 10), Mp::from(now + 60)]),
    );
    let (st, _) = call(&sim, &window, "GET", "/v1/apps/cdn-demo", None).await;
    assert_eq!(st, 200);
    sim.advance_ms(61_000);
    let (st, body) = call(&sim, &window, "GET", "/v1/apps/cdn-demo", None).await;
    assert_eq!((st, body), (403, json!({"error": "unauthorized"})));

    // A caveat type the verifier does not know refuses everything (Go's UnregisteredCaveat).
    let unknown = append(
        &token,
        6,
        Mp::Array(vec![Mp::Array(vec![Mp::from("deployApp")])]),
    );
    let (st, _) = call(&sim, &unknown, "GET", "/v1/apps/cdn-demo", None).await;
    assert_eq!(st, 403);
}

#[tokio::test]
async fn graphql_fields_are_judged_by_what_they_touch() {
    let sim = demo().await;
    let token = sim.handle.org_token("cdn-org").unwrap();
    let (k, b) = action(1);
    let read_only = append(&token, k, b);
    let q = json!({"query": "query { organizations { nodes { slug } } app(name: \"cdn-demo\") { name } }"});
    let (st, body) = call(&sim, &read_only, "POST", "/graphql", Some(q)).await;
    assert_eq!(st, 200);
    assert!(body.get("errors").is_none(), "{body}");
    let m = json!({"query": "mutation { releaseIpAddress(input: {appId: \"cdn-demo\", ip: \"1.2.3.4\"}) { app { name } } }"});
    let (st, body) = call(&sim, &read_only, "POST", "/graphql", Some(m)).await;
    assert_eq!(st, 200);
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHORIZED",
        "{body}"
    );
    // An app of another org through GraphQL: refused too.
    let q = json!({"query": "query { app(name: \"notes-app\") { name } }"});
    let (_, body) = call(&sim, &token, "POST", "/graphql", Some(q)).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHORIZED",
        "{body}"
    );
}
