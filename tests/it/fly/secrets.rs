use std::collections::BTreeMap;

use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{body_json, method, path, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

use super::stub;

#[tokio::test]
async fn list_never_asks_for_values_and_update_sets_and_unsets() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/secrets"))
        .and(query_param_is_missing("show_secrets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"secrets": [
            {"name": "DATABASE_URL", "digest": "abc123", "created_at": "2026-05-01T00:00:00Z", "value": "should-be-dropped"}]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/web/secrets"))
        .and(body_json(
            json!({"values": {"API_KEY": "s3cr3t-canary", "OLD": null}}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"secrets": [{"name": "API_KEY", "digest": "d"}], "Version": 7}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let secrets = client.list_secrets("web").await.unwrap();
    assert_eq!(secrets[0].name, "DATABASE_URL");
    assert!(!format!("{secrets:?}").contains("should-be-dropped"));
    let mut changes = BTreeMap::new();
    changes.insert(
        "API_KEY".to_owned(),
        Some(SecretString::from("s3cr3t-canary")),
    );
    changes.insert("OLD".to_owned(), None);
    let v = client.update_secrets("web", &changes).await.unwrap();
    assert_eq!(v.version, 7, "legacy `Version` accepted");
    assert!(!format!("{v:?}").contains("canary"));
}

#[tokio::test]
async fn bad_secret_names_are_rejected_before_calling() {
    let (server, client) = stub().await;
    let mut changes = BTreeMap::new();
    changes.insert("1BAD-NAME".to_owned(), Some(SecretString::from("x")));
    let err = client.update_secrets("web", &changes).await.unwrap_err();
    assert!(err.to_string().starts_with("invalid secret name:"), "{err}");
    assert!(server.received_requests().await.unwrap().is_empty());
}
