use std::time::{Duration, Instant};

use fly_machines_mcp::fly::{Client, ClientConfig, CreateMachine, MachineConfig, Token};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use super::stub;

#[tokio::test]
async fn a_429_burst_is_absorbed_by_backoff_honouring_retry_after() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path("/v1/platform/regions"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0")
                .set_body_string("slow down"),
        )
        .up_to_n_times(3)
        .expect(3)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/platform/regions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"regions": []})))
        .expect(1)
        .mount(&server)
        .await;
    assert!(client.list_regions().await.unwrap().is_empty());
}

#[tokio::test]
async fn transient_5xx_retried_until_the_patience_runs_out() {
    let server = wiremock::MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/flaky"))
        .respond_with(ResponseTemplate::new(503).set_body_string("<html>upstream gone</html>"))
        // The patience, counted in attempts rather than seconds: the fast policy's
        // delays are at least 1, 2, 4, 8, 16 ms, then 20 ms (jitter only adds), so
        // 300 ms hold at most 19 attempts whatever the machine's load; without the
        // patience it would try 1,001 times.
        .expect(3..=19)
        .mount(&server)
        .await;
    let mut cfg =
        ClientConfig::local(url::Url::parse(&server.uri()).unwrap(), Token::parse("t")).unwrap();
    cfg.retry.patience = Duration::from_millis(300);
    let client = Client::new(cfg).unwrap();
    let err = client.get_app("flaky").await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains("<html>upstream gone</html>"),
        "non-JSON body kept as text: {err}"
    );
}

#[tokio::test]
async fn client_errors_are_never_retried() {
    for status in [400_u16, 401, 403, 404, 409, 412, 422] {
        let (server, client) = stub().await;
        Mock::given(method("GET"))
            .and(path("/v1/apps/x"))
            .respond_with(ResponseTemplate::new(status).set_body_json(json!({"error": "no"})))
            .expect(1)
            .mount(&server)
            .await;
        let err = client.get_app("x").await.unwrap_err();
        assert_eq!(err.status(), Some(status));
        assert!(!err.is_retryable());
    }
}

#[tokio::test]
async fn machine_create_is_not_blindly_retried_after_an_ambiguous_failure() {
    let (server, client) = stub().await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/web/machines"))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .expect(1)
        .mount(&server)
        .await;
    let body = CreateMachine {
        config: MachineConfig {
            image: "nginx".into(),
            ..MachineConfig::default()
        },
        ..CreateMachine::default()
    };
    let err = client.create_machine("web", &body).await.unwrap_err();
    assert!(err.is_ambiguous());
}

#[tokio::test]
async fn machine_create_is_retried_after_429_which_had_no_effect() {
    let (server, client) = stub().await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/web/machines"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"error": "rate limited"})))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/web/machines"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "m1", "state": "created"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let body = CreateMachine::default();
    assert_eq!(client.create_machine("web", &body).await.unwrap().id, "m1");
}

/// A responder that notes when each request reached the mock server.
struct Arrivals(std::sync::Arc<std::sync::Mutex<Vec<Instant>>>);

impl wiremock::Respond for Arrivals {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        self.0.lock().unwrap().push(Instant::now());
        ResponseTemplate::new(200).set_body_json(json!({"regions": []}))
    }
}

/// Pacing is checked by counting the calls it held back, with no upper bound on the
/// time: 1 req/s with a burst of 3 lets the fourth call reach the server no sooner than
/// a paced period after the calls began, and the fifth no sooner than two (a busy
/// machine can only make a request later, never earlier). How long the burst takes is
/// measured in the benchmark (`benches/pacing/`, described in BENCHMARKS.md).
#[tokio::test]
async fn pacing_queues_a_burst_instead_of_drawing_429s() {
    let server = wiremock::MockServer::start().await;
    let arrivals = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    Mock::given(method("GET"))
        .and(path("/v1/platform/regions"))
        .respond_with(Arrivals(arrivals.clone()))
        .expect(5)
        .mount(&server)
        .await;
    let mut cfg =
        ClientConfig::local(url::Url::parse(&server.uri()).unwrap(), Token::parse("t")).unwrap();
    cfg.pacing = true;
    let client = Client::new(cfg).unwrap();
    let started = Instant::now();
    let calls = (0..5).map(|_| client.list_regions());
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    let mut waited: Vec<Duration> = arrivals
        .lock()
        .unwrap()
        .iter()
        .map(|t| t.duration_since(started))
        .collect();
    waited.sort();
    assert_eq!(waited.len(), 5, "{waited:?}");
    // The paced period is 1 s stretched by 10%; the burst of 3 goes at once, then one
    // call a period: two calls arrive 1 s or more after the start, one 2 s or more.
    let past = |n: u64| {
        waited
            .iter()
            .filter(|w| **w >= Duration::from_millis(n))
            .count()
    };
    assert!(
        past(1000) >= 2,
        "the 4th and 5th calls were queued: {waited:?}"
    );
    assert!(
        past(2000) >= 1,
        "the 5th call waited two periods: {waited:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_a_transport_error_not_ambiguous() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let cfg = ClientConfig::local(
        url::Url::parse(&format!("http://{addr}")).unwrap(),
        Token::parse("t"),
    )
    .unwrap();
    let client = Client::new(cfg).unwrap();
    let err = client.get_app("x").await.unwrap_err();
    assert!(
        matches!(err, fly_machines_mcp::fly::Error::Transport { .. }),
        "{err:?}"
    );
    assert!(err.is_retryable() && !err.is_ambiguous());
}

/// Issue 18 item 17: a 429 is never a failure while the request's patience lasts —
/// here twelve in a row, more than any fixed retry count allowed — and neither is a
/// run of 5xx on a request that is safe to repeat. Each wait is reported to the
/// client's notices (which the tool layer turns into progress notifications).
#[tokio::test]
async fn item17_429s_and_5xx_are_waited_out_and_said() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/busy/machines"))
        .respond_with(
            ResponseTemplate::new(429).set_body_json(json!({"error": "rate limit exceeded"})),
        )
        .up_to_n_times(12)
        .expect(12)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/busy/machines"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/busy"))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .up_to_n_times(9)
        .expect(9)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/busy"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"name": "busy"})))
        .expect(1)
        .mount(&server)
        .await;
    let said = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = said.clone();
    let client = client.with_notices(fly_machines_mcp::fly::RetryNotices::new(move |m: &str| {
        sink.lock().unwrap().push(m.to_owned());
    }));
    let listed = client
        .list_machines("busy", &fly_machines_mcp::fly::MachineFilter::default())
        .await
        .unwrap();
    assert!(listed.is_empty());
    assert_eq!(client.get_app("busy").await.unwrap().name, "busy");
    let said = said.lock().unwrap().clone();
    assert_eq!(said.len(), 21, "{said:?}");
    assert!(
        said[0].contains("rate limit (429) on list_machines"),
        "{said:?}"
    );
    assert!(said[20].contains("answered 502 on get_app"), "{said:?}");
}
