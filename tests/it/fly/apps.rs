use fly_machines_mcp::fly::CreateApp;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

use super::stub;

#[tokio::test]
async fn list_apps_follows_next_cursor() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps"))
        .and(query_param("org_slug", "acme"))
        .and(query_param_is_missing("cursor"))
        .and(header(
            "authorization",
            format!("FlyV1 {}", super::CANARY).as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "apps": [{"id": "a1", "name": "one", "status": "deployed", "machine_count": 2,
                      "organization": {"name": "Acme", "slug": "acme"}}],
            "total_apps": 2, "next_cursor": "c2"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps"))
        .and(query_param("cursor", "c2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "apps": [{"id": "a2", "name": "two", "status": "pending", "network": null}], "total_apps": 2})))
        .expect(1)
        .mount(&server)
        .await;
    let apps = client.list_apps("acme").await.unwrap();
    assert_eq!(
        apps.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["one", "two"]
    );
    assert_eq!(apps[0].machine_count, Some(2));
    assert_eq!(apps[0].organization.as_ref().unwrap().slug, "acme");
}

#[tokio::test]
async fn get_app_decodes_and_404_is_not_found_with_request_id() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/my-app-name"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "jlyv9r5d", "name": "my-app-name", "status": "pending",
            "organization": {"name": "My Org", "slug": "personal"}})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/ghost"))
        .respond_with(
            ResponseTemplate::new(404)
                .insert_header("fly-request-id", "req-404")
                .set_body_json(json!({"error": "app not found"})),
        )
        .expect(1) // a 404 is never retried
        .mount(&server)
        .await;
    let app = client.get_app("my-app-name").await.unwrap();
    assert_eq!(app.status, "pending");
    assert_eq!(app.hostname(), "my-app-name.fly.dev");
    let err = client.get_app("ghost").await.unwrap_err();
    assert!(err.is_not_found());
    assert!(!err.is_retryable());
    assert_eq!(err.request_id(), Some("req-404"));
    assert_eq!(
        err.to_string(),
        "get_app: Fly API answered 404: app not found [fly-request-id req-404]"
    );
}

#[tokio::test]
async fn create_app_sends_body_and_name_taken_is_a_conflict() {
    let (server, client) = stub().await;
    Mock::given(method("POST"))
        .and(path("/v1/apps"))
        .and(query_param("wait", "true"))
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({"name": "dev-alice", "org_slug": "personal", "idempotency_key": "k1"}),
        ))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": "z4k69", "created_at": 1708631799000_i64})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/dev-alice"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "z4k69", "name": "dev-alice"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps"))
        .and(body_json(json!({"name": "taken", "org_slug": "personal"})))
        .respond_with(ResponseTemplate::new(422).set_body_json(
            json!({"error": "Validation failed: Name has already been taken", "status": "name_taken"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let created = client
        .create_app(&CreateApp {
            name: "dev-alice".into(),
            org_slug: "personal".into(),
            idempotency_key: Some("k1".into()),
            ..CreateApp::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (created.id.as_str(), created.created_at),
        ("z4k69", Some(1708631799000))
    );
    let err = client
        .create_app(&CreateApp {
            name: "taken".into(),
            org_slug: "personal".into(),
            ..CreateApp::default()
        })
        .await
        .unwrap_err();
    assert!(err.is_conflict());
    assert_eq!(err.code(), Some("name_taken"));
    assert_eq!(err.status(), Some(422));
}

/// Issue 18 item 1: fly-go creates with `POST /apps?wait=true` and then `WaitForApp`
/// (`flaps/flaps_apps.go`), retrying 404 and 401 for up to a minute; a new app does
/// answer 404 for a while. Anything else ends the wait at once.
#[tokio::test]
async fn create_app_sends_wait_true_then_waits_out_404_and_401() {
    let (server, client) = stub().await;
    Mock::given(method("POST"))
        .and(path("/v1/apps"))
        .and(query_param("wait", "true"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "n3w"})))
        .mount(&server)
        .await;
    for status in [404, 404, 401] {
        Mock::given(method("GET"))
            .and(path("/v1/apps/fresh"))
            .respond_with(
                ResponseTemplate::new(status).set_body_json(json!({"error": "app not found"})),
            )
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/v1/apps/fresh"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "n3w", "name": "fresh"})),
        )
        .with_priority(2)
        .expect(1)
        .mount(&server)
        .await;
    let created = client
        .create_app(&CreateApp {
            name: "fresh".into(),
            org_slug: "personal".into(),
            ..CreateApp::default()
        })
        .await
        .unwrap();
    assert_eq!(created.id, "n3w");
    let gets = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "GET")
        .count();
    assert_eq!(gets, 4, "three not-yet answers, then the app");

    // A refusal that is not "not yet" ends the wait at once.
    Mock::given(method("GET"))
        .and(path("/v1/apps/walled"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"error": "unauthorized"})))
        .expect(1)
        .mount(&server)
        .await;
    let err = client
        .wait_for_app("walled", std::time::Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
}

#[tokio::test]
async fn create_app_rejects_bad_names_before_calling() {
    let (server, client) = stub().await;
    let err = client
        .create_app(&CreateApp {
            name: "Bad_Name".into(),
            org_slug: "personal".into(),
            ..CreateApp::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("invalid app name:"), "{err}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn delete_app_with_force() {
    let (server, client) = stub().await;
    Mock::given(method("DELETE"))
        .and(path("/v1/apps/old-app"))
        .and(query_param("force", "true"))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/apps/other"))
        .and(query_param_is_missing("force"))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&server)
        .await;
    client.delete_app("old-app", true).await.unwrap();
    client.delete_app("other", false).await.unwrap();
}
