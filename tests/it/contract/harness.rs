//! Tests of the contract harness itself ([`Tour`] and [`RecordingProxy`]) against a tiny
//! axum stub on 127.0.0.1:0, so the sim and client runs can trust what they record.

use axum::Json;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::json;

use super::openapi::Spec;
use super::proxy::RecordingProxy;
use super::recorder::Tour;

async fn stub() -> (String, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new()
        .route(
            "/v1/apps",
            axum::routing::post(|| async {
                (
                    StatusCode::CREATED,
                    Json(json!({"id": "a1", "created_at": 1_740_000_000_000_i64})),
                )
            }),
        )
        .route(
            "/v1/apps/{app}",
            get(|| async { Json(json!({"id": "a1", "name": "demo", "status": "deployed"})) })
                .delete(|| async { (StatusCode::ACCEPTED, Json(json!({"ok": true}))) }),
        )
        .route(
            "/v1/apps/{app}/machines/{id}/lease",
            axum::routing::delete(|| async {
                Json(json!({"status": "success", "data": {"ok": true}}))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), task)
}

#[tokio::test]
async fn tour_and_proxy_record_what_went_over_the_wire() {
    let spec = Spec::load().unwrap();
    let (upstream, task) = stub().await;
    let proxy = RecordingProxy::start(&upstream).await;
    let tour = Tour::new(&proxy.base_url(), Some("t0ken"));

    let r = tour.get("/v1/apps/demo").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["name"], "demo");
    let r = tour
        .send("DELETE", "/v1/apps/demo?force=true", None, &[])
        .await;
    assert_eq!(r.status, 202);
    let r = tour
        .send(
            "DELETE",
            "/v1/apps/demo/machines/3d8d9e2fa61e48/lease",
            None,
            &[("fly-machine-lease-nonce", "n1")],
        )
        .await;
    assert_eq!(r.status, 200);

    let r = tour
        .with_token(None)
        .post("/v1/apps", json!({"name": "demo", "org_slug": "personal"}))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.headers["content-type"], "application/json");

    // Both recorders saw the same four exchanges, query and headers included.
    for log in [&tour.log, &proxy.log] {
        let all = log.all();
        assert_eq!(all.len(), 4);
        assert!(
            !all[3]
                .request
                .headers
                .iter()
                .any(|(k, _)| k == "authorization")
        );
        assert_eq!(
            all[1].request.query,
            vec![("force".to_owned(), "true".to_owned())]
        );
        assert!(
            all[2]
                .request
                .headers
                .iter()
                .any(|(k, v)| k == "fly-machine-lease-nonce" && v == "n1")
        );
        assert!(
            all[0]
                .request
                .headers
                .iter()
                .any(|(k, v)| k == "authorization" && v == "Bearer t0ken")
        );
        assert!(log.request_violations(&spec).is_empty());
        let resp = log.response_violations(&spec);
        assert_eq!(resp.len(), 1, "{resp:#?}");
        assert_eq!(resp[0].operation, "Apps_delete");
        assert!(resp[0].message.contains("body not documented"));
        let exercised = log.exercised(&spec);
        assert!(exercised.contains(&("Apps_show".to_owned(), 200)));
        assert!(exercised.contains(&("Machines_release_lease".to_owned(), 200)));
        assert!(exercised.contains(&("Apps_create".to_owned(), 201)));
    }
    task.abort();
}
