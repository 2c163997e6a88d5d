use std::io::Write;
use std::sync::{Arc, Mutex};

use fly_machines_mcp::fly::{Client, ClientConfig, Token};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use super::{CANARY, client_for};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn token_never_appears_in_debug_errors_or_logs() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = wiremock::MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/boom"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": "internal"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/ok"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"name": "ok"})))
        .mount(&server)
        .await;
    let mut quick = ClientConfig::local(
        url::Url::parse(&server.uri()).unwrap(),
        Token::parse(CANARY),
    )
    .unwrap();
    quick.retry.patience = std::time::Duration::from_millis(200);
    let client = Client::new(quick).unwrap();
    let err = client.get_app("boom").await.unwrap_err();
    client.get_app("ok").await.unwrap();

    let token = Token::parse(CANARY).unwrap();
    let cfg =
        ClientConfig::local(url::Url::parse(&server.uri()).unwrap(), Some(token.clone())).unwrap();
    let texts = [
        format!("{token:?}"),
        format!("{cfg:?}"),
        format!("{client:?}"),
        format!("{:?}", Client::new(cfg).unwrap()),
        format!("{err}"),
        format!("{err:?}"),
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap(),
    ];
    assert!(
        texts[6].contains("Fly API call"),
        "logs were captured: {}",
        texts[6]
    );
    for text in texts {
        assert!(!text.contains("canary"), "token leaked: {text}");
    }
    // The server did receive it, in the right scheme.
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(
        reqs[0].headers.get("authorization").unwrap(),
        &format!("FlyV1 {CANARY}")
    );
}

#[tokio::test]
async fn no_token_is_a_clear_error_without_a_call() {
    let server = wiremock::MockServer::start().await;
    let cfg = ClientConfig::local(url::Url::parse(&server.uri()).unwrap(), None).unwrap();
    let client = Client::new(cfg).unwrap();
    let err = client.list_regions().await.unwrap_err();
    assert!(err.to_string().contains("no Fly API token"), "{err}");
    let with = client.with_token(Token::parse("plain-oauth").unwrap());
    Mock::given(method("GET"))
        .and(path("/v1/platform/regions"))
        .and(wiremock::matchers::header(
            "authorization",
            "Bearer plain-oauth",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"regions": []})))
        .expect(1)
        .mount(&server)
        .await;
    with.list_regions().await.unwrap();
}

#[tokio::test]
async fn recording_client_collects_request_ids() {
    let server = wiremock::MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/platform/regions"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("fly-request-id", "rid-1")
                .set_body_json(json!({"regions": []})),
        )
        .mount(&server)
        .await;
    let client = client_for(&server, true);
    let (rec, ids) = client.recording();
    rec.list_regions().await.unwrap();
    rec.list_regions().await.unwrap();
    client.list_regions().await.unwrap();
    assert_eq!(ids.take(), ["rid-1", "rid-1"]);
    assert!(ids.take().is_empty());
}
