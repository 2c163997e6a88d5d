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

fn entry(id: &str, ts: &str, msg: &str) -> serde_json::Value {
    json!({"id": id, "attributes": {"timestamp": ts, "message": msg, "level": "info",
        "instance": "m1", "region": "iad"}})
}

/// Issue 18 item 6: paging follows the server's `meta.next_token` only (flyctl,
/// `logs/polling.go`), never a cursor made from the entries' timestamps — here the
/// tokens are unrelated to the timestamps and two lines share one — and an empty page
/// keeps the token it was asked with. The `next` handed back continues exactly there.
#[tokio::test]
async fn item6_paging_follows_next_token_not_timestamps() {
    use fly_machines_mcp::workflows::logs::{LogsQuery, read_logs};
    let (server, client) = stub().await;
    let since_ms: i64 = 1_777_000_000_000;
    let start = (since_ms * 1_000_000 - 1).to_string();
    let page = |token: &str, body: serde_json::Value| {
        Mock::given(method("GET"))
            .and(path("/api/v1/apps/web/logs"))
            .and(query_param("next_token", token.to_owned()))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
    };
    page(
        &start,
        json!({"data": [
        entry("a", "2026-04-24T03:06:40.000Z", "first"),
        entry("b", "2026-04-24T03:06:40.000Z", "second, same millisecond")],
        "meta": {"next_token": "500"}}),
    )
    .expect(1)
    .mount(&server)
    .await;
    page(
        "500",
        json!({"data": [entry("c", "2026-04-24T03:06:41.000Z", "third")],
        "meta": {"next_token": "600"}}),
    )
    .expect(1)
    .mount(&server)
    .await;
    page("600", json!({"data": [], "meta": {"next_token": ""}}))
        .expect(2)
        .mount(&server)
        .await;
    let q = LogsQuery {
        since_ms: Some(since_ms),
        tail: 100,
        max_bytes: 1 << 20,
        ..LogsQuery::default()
    };
    let r = read_logs(&client, "web", &q).await.unwrap();
    let messages: Vec<&str> = r.lines.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["first", "second, same millisecond", "third"]);
    assert!(r.complete);
    assert_eq!(
        r.next.as_deref(),
        Some("600"),
        "the empty page kept the token"
    );
    // Continuing from `next` asks with that token again, and finds nothing new.
    let again = read_logs(
        &client,
        "web",
        &LogsQuery {
            cursor: r.next.clone(),
            tail: 100,
            max_bytes: 1 << 20,
            ..LogsQuery::default()
        },
    )
    .await
    .unwrap();
    assert!(again.lines.is_empty() && again.complete);
    assert_eq!(again.next.as_deref(), Some("600"));
    // Every request carried a token the server gave (or the start time).
    for req in server.received_requests().await.unwrap() {
        let token = req
            .url
            .query_pairs()
            .find(|(k, _)| k == "next_token")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        assert!(
            [start.as_str(), "500", "600"].contains(&token.as_str()),
            "{token}"
        );
    }
}
