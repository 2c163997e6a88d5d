use fly_machines_mcp::fly::LogQuery;
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use super::stub;

#[tokio::test]
async fn logs_page_with_filters_and_cursor() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/apps/web/logs"))
        .and(query_param("next_token", "1777000000000000000"))
        .and(query_param("instance", "m1"))
        .and(query_param("region", "iad"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"id": "l1", "attributes": {"timestamp": "2026-05-01T10:00:00Z", "message": "Out of memory: Killed process 42",
             "level": "error", "instance": "m1", "region": "iad",
             "meta": {"instance": "m1", "region": "iad", "event": {"provider": "runner"}, "error": {"code": 0, "message": ""}}}}],
            "meta": {"next_token": "1777000000000000999"}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/apps/web/logs"))
        .and(query_param("next_token", "1777000000000000999"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [], "meta": {"next_token": ""}})),
        )
        .mount(&server)
        .await;
    let q = LogQuery {
        next_token: Some("1777000000000000000".into()),
        instance: Some("m1".into()),
        region: Some("iad".into()),
    };
    let page = client.app_logs("web", &q).await.unwrap();
    assert_eq!(page.entries[0].provider.as_deref(), Some("runner"));
    assert!(page.entries[0].message.contains("Out of memory"));
    assert_eq!(page.next_token.as_deref(), Some("1777000000000000999"));
    let empty = client
        .app_logs(
            "web",
            &LogQuery {
                next_token: page.next_token.clone(),
                ..LogQuery::default()
            },
        )
        .await
        .unwrap();
    assert!(empty.entries.is_empty());
    assert_eq!(
        empty.next_token, page.next_token,
        "an empty page keeps the cursor"
    );
}
