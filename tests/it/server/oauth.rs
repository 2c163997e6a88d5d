//! The OAuth resource server against a small in-test authorization server on loopback
//! (metadata + JWKS, keys generated here with `ring`, tokens signed with
//! `jsonwebtoken`): metadata document, 401/403 with `WWW-Authenticate`, each rejected
//! token shape, scopes narrowing tools/list and calls, rotation without a restart, the
//! audit log naming the subject, and the token never echoed.

use std::sync::{Arc, Mutex};

use axum::{Json, Router, routing::get};
use base64::Engine;
use fly_machines_mcp::tools::{
    Catalog, ToolKind,
    audit::AuditLog,
    auth::oauth::OAuthSettings,
    http::{HttpAuth, HttpOptions, start},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair},
};
use rmcp::{
    ServiceExt,
    model::CallToolRequestParams,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

use super::gate_with;
use super::tools::{demo_sim, sim_client};
use crate::support::{eventually, text_of};

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;

struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    jwk: Value,
}

fn new_key(kid: &str) -> SigningKey {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .unwrap()
        .as_ref()
        .to_vec();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng).unwrap();
    let point = pair.public_key().as_ref();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": b64.encode(&point[1..33]), "y": b64.encode(&point[33..65]),
    });
    SigningKey {
        kid: kid.to_owned(),
        pkcs8,
        jwk,
    }
}

struct Idp {
    issuer: String,
    keys: Arc<Mutex<Vec<Value>>>,
}

async fn idp() -> Idp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let keys: Arc<Mutex<Vec<Value>>> = Arc::new(Mutex::new(Vec::new()));
    let meta = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")});
    let served = keys.clone();
    let app = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(move || {
                let meta = meta.clone();
                async move { Json(meta) }
            }),
        )
        .route(
            "/jwks",
            get(move || {
                let keys = served.lock().unwrap().clone();
                async move { Json(json!({ "keys": keys })) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Idp { issuer, keys }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn mint(key: &SigningKey, claims: Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(key.kid.clone());
    encode(&h, &claims, &EncodingKey::from_ec_der(&key.pkcs8)).unwrap()
}

fn claims(issuer: &str, aud: &str, scope: &str) -> Value {
    json!({"iss": issuer, "aud": aud, "sub": "agent-7", "client_id": "ci-client",
           "scope": scope, "iat": now(), "exp": now() + 300})
}

async fn post(url: &str, token: Option<&str>, body: &str) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_owned());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

fn www_auth(r: &reqwest::Response) -> String {
    r.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn oauth_tokens_are_validated_scoped_rotated_and_audited() {
    let sim = demo_sim().await;
    let idp = idp().await;
    let k1 = new_key("k1");
    idp.keys.lock().unwrap().push(k1.jwk.clone());
    let dir = tempfile::tempdir().unwrap();
    let audit_path = dir.path().join("audit.jsonl");
    let opts = fly_machines_mcp::tools::PolicyOptions {
        selection: fly_machines_mcp::tools::Selection {
            toolsets: Some(vec!["all".into()]),
            ..Default::default()
        },
        confirm: fly_machines_mcp::tools::ConfirmMode::Never,
        ..Default::default()
    };
    let gate = gate_with(
        Catalog::all().unwrap(),
        &opts,
        sim_client(&sim),
        fly_machines_mcp::tools::Redactor::new(),
        Some(AuditLog::open(&audit_path, fly_machines_mcp::tools::Redactor::new()).unwrap()),
    );
    let server = start(
        gate,
        "127.0.0.1:0".parse().unwrap(),
        HttpOptions {
            auth: HttpAuth::OAuth(OAuthSettings {
                issuer: idp.issuer.clone(),
                audience: None,
                caps: fly_machines_mcp::tools::auth::Caps {
                    machines_per_day: Some(5),
                    monthly_usd: None,
                },
            }),
            ..HttpOptions::default()
        },
    )
    .await
    .unwrap();
    let url = server.mcp_url();
    let meta_url = format!(
        "http://{}/.well-known/oauth-protected-resource/mcp",
        server.addr()
    );

    // RFC 9728 metadata.
    let meta: Value = reqwest::get(&meta_url).await.unwrap().json().await.unwrap();
    assert_eq!(meta["resource"], url);
    assert_eq!(meta["authorization_servers"][0], idp.issuer);

    // No token: 401 pointing at the metadata.
    let r = post(&url, None, INIT).await;
    assert_eq!(r.status(), 401);
    assert!(
        www_auth(&r).contains(&format!("resource_metadata=\"{meta_url}\"")),
        "{}",
        www_auth(&r)
    );

    // Each bad token: 401 invalid_token (or 403 for scope), never echoing the token.
    let good = claims(&idp.issuer, &url, "fly:read");
    let mut expired = good.clone();
    expired["exp"] = json!(now() - 600);
    expired["iat"] = json!(now() - 900);
    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("http://127.0.0.1:1/mcp");
    let mut other_iss = good.clone();
    other_iss["iss"] = json!("http://127.0.0.1:2");
    let stranger = new_key("k-unknown");
    let valid = mint(&k1, good.clone());
    let tampered = {
        // Change the payload, keep the signature.
        let parts: Vec<&str> = valid.split('.').collect();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut payload: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
        payload["scope"] = json!("fly:read fly:write fly:destroy");
        format!(
            "{}.{}.{}",
            parts[0],
            b64.encode(payload.to_string()),
            parts[2]
        )
    };
    let alg_none = {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(good.to_string())
        )
    };
    let hs256 = encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(k1.jwk.to_string().as_bytes()),
    )
    .unwrap();
    let cases = [
        ("expired", mint(&k1, expired), "expired"),
        ("wrong audience", mint(&k1, wrong_aud), "aud"),
        ("other issuer", mint(&k1, other_iss), "iss"),
        ("tampered", tampered, "signature"),
        (
            "unknown kid",
            mint(&stranger, good.clone()),
            "unknown signing key",
        ),
        ("alg none", alg_none, "algorithm"),
        ("hmac", hs256, "algorithm"),
    ];
    for (name, token, why) in &cases {
        let r = post(&url, Some(token), INIT).await;
        assert_eq!(r.status(), 401, "{name}");
        let h = www_auth(&r);
        assert!(
            h.contains("error=\"invalid_token\"") && h.contains(why),
            "{name}: {h}"
        );
        assert!(h.contains("resource_metadata="), "{name}: {h}");
        let body = r.text().await.unwrap();
        assert!(!body.contains(token.as_str()) && !h.contains(token.as_str()));
    }
    let no_scope = mint(&k1, claims(&idp.issuer, &url, "openid"));
    let r = post(&url, Some(&no_scope), INIT).await;
    assert_eq!(r.status(), 403);
    let h = www_auth(&r);
    assert!(
        h.contains("error=\"insufficient_scope\"") && h.contains("scope=\"fly:read\""),
        "{h}"
    );

    // A fly:read token lists and calls read tools only; a write call is 403.
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header(valid.clone()),
    );
    let client = ().serve(transport).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    let catalog = Catalog::all().unwrap();
    assert!(!tools.is_empty());
    assert!(
        tools
            .iter()
            .all(|t| catalog.get(&t.name).unwrap().kind == ToolKind::Read)
    );
    let r = client
        .call_tool(
            CallToolRequestParams::new("app_status")
                .with_arguments(json!({"app": "cdn-demo"}).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    client.cancel().await.unwrap();
    let call_write = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"machine_action","arguments":{"app":"cdn-demo","action":"stop","machine_ids":["x"]}}}"#;
    let r = post(&url, Some(&valid), call_write).await;
    assert_eq!(r.status(), 403);
    assert!(
        www_auth(&r).contains("scope=\"fly:write\""),
        "{}",
        www_auth(&r)
    );

    // A write token's call is audited with its subject and client id.
    let writer = mint(&k1, claims(&idp.issuer, &url, "fly:read fly:write"));
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header(writer.clone()),
    );
    let client = ().serve(transport).await.unwrap();
    let r = client
        .call_tool(
            CallToolRequestParams::new("provision_environment").with_arguments(
                json!({"app": "oauth-env", "region": "iad", "image": "nginx:latest", "dry_run": true})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let instructions = client.peer_info().unwrap().instructions.clone().unwrap();
    assert!(
        instructions.contains("OAuth subject 'agent-7'")
            && instructions.contains("at most 5 machines created per rolling 24 hours"),
        "{instructions}"
    );
    // What it creates records the subject as its creator.
    let r = client
        .call_tool(
            CallToolRequestParams::new("provision_environment").with_arguments(
                json!({"app": "oauth-env", "region": "iad", "image": "nginx:latest", "wait_timeout_s": 30})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    client.cancel().await.unwrap();
    let machines = sim_client(&sim)
        .list_org_machines("personal", false, None)
        .await
        .unwrap();
    let created: Vec<_> = machines.iter().filter(|m| m.app == "oauth-env").collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].creator.as_deref(), Some("oauth:agent-7"));
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    let line: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(line["subject"], "agent-7");
    assert_eq!(line["client_id"], "ci-client");
    for t in [&valid, &writer] {
        assert!(!audit.contains(t.as_str()));
    }

    // Rotation at the provider: a token signed with a new key is accepted without a
    // restart (the JWKS is fetched again for the unknown kid, rate-limited).
    let k2 = new_key("k2");
    *idp.keys.lock().unwrap() = vec![k2.jwk.clone()];
    let rotated = mint(&k2, good.clone());
    eventually("the rotated key is accepted", || {
        let url = url.clone();
        let rotated = rotated.clone();
        async move { post(&url, Some(&rotated), INIT).await.status() == 200 }
    })
    .await;
    server.shutdown().await.unwrap();
    sim.shutdown().await;
}
