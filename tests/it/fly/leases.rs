use serde_json::json;
use wiremock::matchers::{body_json, body_partial_json, header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use fly_machines_mcp::fly::LeaseNonce;

use super::stub;

const L: &str = "/v1/apps/web/machines/m1/lease";

#[tokio::test]
async fn acquire_refresh_release_with_both_shapes() {
    let (server, client) = stub().await;
    Mock::given(method("POST"))
        .and(path(L))
        .and(body_partial_json(json!({"ttl": 30})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"status": "success", "data": {
            "nonce": "5c35f65c", "expires_at": 1708569778, "owner": "ops@example.com", "description": "rolling update",
            "version": "01HQ73A7"}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(L))
        .and(header("fly-machine-lease-nonce", "5c35f65c"))
        .and(body_json(json!({"ttl": 60})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "nonce": "5c35f65c", "expires_at": 1708569900, "owner": "ops@example.com", "description": ""})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(L))
        .and(header("fly-machine-lease-nonce", "5c35f65c"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "success", "data": {"ok": true}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let lease = client
        .acquire_lease("web", "m1", 30, "rolling update")
        .await
        .unwrap();
    let nonce = lease.nonce.clone().unwrap();
    assert_eq!(nonce, LeaseNonce::new("5c35f65c"));
    assert_eq!(lease.version.as_deref(), Some("01HQ73A7"));
    let refreshed = client.refresh_lease("web", "m1", &nonce, 60).await.unwrap();
    assert_eq!(refreshed.expires_at, 1708569900);
    client.release_lease("web", "m1", &nonce).await.unwrap();
}

#[tokio::test]
async fn held_lease_is_a_conflict_and_get_lease_reports_holder_or_none() {
    let (server, client) = stub().await;
    Mock::given(method("POST"))
        .and(path(L))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({
            "error": "aborted: machine ID m1 lease currently held by other@example.com, expires at 2026-05-01T10:00:00Z"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(L))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"status": "success", "data": {
            "owner": "other@example.com", "expires_at": 1777629600, "description": "deploy"}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/machines/free/lease"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": "lease not found"})))
        .mount(&server)
        .await;
    let err = client.acquire_lease("web", "m1", 30, "").await.unwrap_err();
    assert!(err.is_conflict());
    assert!(
        err.to_string()
            .contains("lease currently held by other@example.com")
    );
    let held = client.get_lease("web", "m1").await.unwrap().unwrap();
    assert_eq!(held.owner, "other@example.com");
    assert!(held.nonce.is_none());
    assert!(client.get_lease("web", "free").await.unwrap().is_none());
}

/// Issue 18 item 12: the spec puts the lease `ttl` in the body, fly-go
/// (`flaps/flaps_machines.go`, `AcquireLease`/`RefreshLease`) in the query: both go.
#[tokio::test]
async fn item12_lease_ttl_is_sent_in_the_query_and_the_body() {
    let (server, client) = stub().await;
    Mock::given(method("POST"))
        .and(path(L))
        .and(query_param("ttl", "30"))
        .and(body_partial_json(json!({"ttl": 30})))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"nonce": "n1", "expires_at": 1})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(L))
        .and(query_param("ttl", "45"))
        .and(header("fly-machine-lease-nonce", "n1"))
        .and(body_json(json!({"ttl": 45})))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"nonce": "n1", "expires_at": 2})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let lease = client.acquire_lease("web", "m1", 30, "why").await.unwrap();
    let sent: serde_json::Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    let description = sent["description"].as_str().unwrap();
    assert!(
        description.starts_with("why [") && description.ends_with(']'),
        "the description carries this acquire's token: {description}"
    );
    let nonce = lease.nonce.unwrap();
    assert_eq!(
        client
            .refresh_lease("web", "m1", &nonce, 45)
            .await
            .unwrap()
            .expires_at,
        2
    );
}

/// An acquire answered 5xx may have taken the lease: the client looks, adopts the lease
/// that carries its own token (Fly shows the nonce to readers), and never acquires twice.
/// One whose lease is someone else's is a 409; one that left no lease is repeated.
#[tokio::test]
async fn an_acquire_answered_5xx_adopts_its_own_lease_or_repeats() {
    let (server, client) = stub().await;
    // The acquire is granted but answered 502; the lease shows the description it sent.
    type Seen = std::sync::Arc<std::sync::Mutex<String>>;
    struct Granted(Seen);
    impl wiremock::Respond for Granted {
        fn respond(&self, r: &wiremock::Request) -> ResponseTemplate {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            *self.0.lock().unwrap() = body["description"].as_str().unwrap().to_owned();
            ResponseTemplate::new(502).set_body_json(json!({"error": "bad gateway"}))
        }
    }
    struct Shown(Seen);
    impl wiremock::Respond for Shown {
        fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
            ResponseTemplate::new(200).set_body_json(json!({"status": "success", "data": {
                "nonce": "granted", "expires_at": 9, "owner": "me@example.com",
                "description": *self.0.lock().unwrap()}}))
        }
    }
    let seen = Seen::default();
    Mock::given(method("POST"))
        .and(path(L))
        .respond_with(Granted(seen.clone()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(L))
        .respond_with(Shown(seen))
        .mount(&server)
        .await;
    let lease = client
        .acquire_lease("web", "m1", 30, "claim")
        .await
        .unwrap();
    assert_eq!(lease.nonce, Some(LeaseNonce::new("granted")));

    // Someone else's lease after the 502: a conflict, not an error to retry.
    let (server, client) = stub().await;
    Mock::given(method("POST"))
        .and(path(L))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"error": "unavailable"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(L))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "success", "data": {
            "nonce": "theirs", "expires_at": 9, "owner": "other@example.com", "description": "deploy"}})))
        .mount(&server)
        .await;
    let err = client
        .acquire_lease("web", "m1", 30, "claim")
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");

    // No lease after the 502: the acquire had no effect and is sent again.
    let (server, client) = stub().await;
    Mock::given(method("POST"))
        .and(path(L))
        .respond_with(ResponseTemplate::new(502).set_body_json(json!({"error": "bad gateway"})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(L))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"nonce": "second", "expires_at": 9})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(L))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": "lease not found"})))
        .mount(&server)
        .await;
    let lease = client
        .acquire_lease("web", "m1", 30, "claim")
        .await
        .unwrap();
    assert_eq!(lease.nonce, Some(LeaseNonce::new("second")));
}
