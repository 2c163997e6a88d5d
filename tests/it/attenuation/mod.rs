//! Least privilege enforced by Fly (issue 19), on the simulator as verifier: the server
//! talks to the simulator through a recording proxy, so each test sees the exact
//! `Authorization` header of every request; then it replays those tokens against the
//! simulator directly, as a bug that bypassed the gate would, and the simulator (like
//! Fly) refuses what their caveats exclude.

use std::time::Duration;

use fly_machines_mcp::{
    fly::{self, macaroon::Action, macaroon::Caveat},
    sim::{Realism, Scenario},
    tools::{ConfirmMode, PolicyOptions, Selection},
};
use serde_json::{Value, json};

use crate::support::TestEnv;

/// The demo scenario with the server's Fly client behind a recording proxy.
struct Setup {
    env: TestEnv,
    http: reqwest::Client,
    /// The viewer's tokens the server was given.
    token: String,
}

async fn setup(opts: PolicyOptions) -> Setup {
    let env = TestEnv::builder()
        .scenario(Scenario::Demo)
        .policy(opts)
        .proxy()
        .start()
        .await;
    let token = env.fly_token.clone();
    Setup {
        env,
        http: reqwest::Client::new(),
        token,
    }
}

fn all_tools(read_only: bool) -> PolicyOptions {
    PolicyOptions {
        selection: Selection {
            toolsets: Some(vec!["all".into()]),
            ..Selection::default()
        },
        read_only,
        confirm: ConfirmMode::Never,
        ..PolicyOptions::default()
    }
}

impl Setup {
    async fn ok(&self, tool: &'static str, args: Value) -> Value {
        self.env.call_json(tool, args).await
    }

    /// `(method, path, Authorization)` of every request the server sent.
    fn sent(&self) -> Vec<(String, String, String)> {
        self.env
            .proxy()
            .log
            .all()
            .into_iter()
            .map(|e| {
                let auth = e
                    .request
                    .headers
                    .iter()
                    .find(|(k, _)| k == "authorization")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                (e.request.method, e.request.path, auth)
            })
            .collect()
    }

    /// The Authorization header of the last request `method path` the server sent.
    fn token_of(&self, method: &str, path: &str) -> String {
        self.sent()
            .into_iter()
            .rev()
            .find(|(m, p, _)| m == method && p == path)
            .unwrap_or_else(|| panic!("no {method} {path} was sent"))
            .2
    }

    /// Sends a request to the simulator itself with `token` (no gate in between).
    async fn replay(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(
                method.parse().unwrap(),
                format!("{}{path}", self.env.sim.base_url()),
            )
            .header("Authorization", token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn machines(&self, app: &str) -> Vec<String> {
        let token = self.env.sim.viewer_token();
        let (st, list) = self
            .replay(&token, "GET", &format!("/v1/apps/{app}/machines"), None)
            .await;
        assert_eq!(st, 200);
        list.as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// The caveats each permission macaroon of a header carries.
fn caveats_of(header: &str) -> Vec<Vec<Caveat>> {
    fly::Token::parse(header)
        .unwrap()
        .macaroons()
        .into_iter()
        .filter(|m| m.permission)
        .map(|m| m.caveats)
        .collect()
}

fn app_id(caveats: &[Caveat]) -> Option<u64> {
    caveats.iter().find_map(|c| match c {
        Caveat::Apps(apps) => apps.keys().next().copied(),
        _ => None,
    })
}

#[tokio::test]
async fn a_read_only_server_sends_read_only_tokens_and_the_simulator_refuses_a_write() {
    let s = setup(all_tools(true)).await;
    s.ok("list_apps", json!({})).await;
    s.ok("app_status", json!({"app": "cdn-demo"})).await;
    let id = s.machines("cdn-demo").await.remove(0);
    s.ok("machine_info", json!({"app": "cdn-demo", "machine": id}))
        .await;
    s.ok("app_logs", json!({"app": "cdn-demo"})).await;
    s.ok("platform_info", json!({})).await;

    let sent = s.sent();
    assert!(sent.len() >= 10, "{}", sent.len());
    for (method, path, auth) in &sent {
        let tokens = caveats_of(auth);
        if path.starts_with("/v1/apps/cdn-demo/") || path.starts_with("/api/v1/apps/cdn-demo/") {
            for caveats in &tokens {
                assert!(app_id(caveats).is_some(), "{method} {path}: only that app");
            }
        }
        assert_eq!(
            tokens.len(),
            2,
            "one per org of the viewer: {method} {path}"
        );
        for caveats in tokens {
            assert!(
                caveats.contains(&Caveat::Action(Action::READ)),
                "{method} {path}: {caveats:?}"
            );
            assert!(
                caveats.iter().any(
                    |c| matches!(c, Caveat::ValidityWindow { not_before, not_after }
                    if not_after - not_before <= 10 * 60)
                ),
                "{method} {path}: a short validity window"
            );
        }
    }

    // A write with a token the read-only server sent, gate bypassed: Fly refuses it.
    let token = s.token_of("GET", &format!("/v1/apps/cdn-demo/machines/{id}"));
    let (st, _) = s
        .replay(
            &token,
            "GET",
            &format!("/v1/apps/cdn-demo/machines/{id}"),
            None,
        )
        .await;
    assert_eq!(st, 200, "the token itself is valid");
    for (method, path, body) in [
        (
            "POST",
            format!("/v1/apps/cdn-demo/machines/{id}/stop"),
            Some(json!({})),
        ),
        (
            "POST",
            format!("/v1/apps/cdn-demo/machines/{id}"),
            Some(json!({"config": {"image": "nginx:2"}})),
        ),
        (
            "DELETE",
            format!("/v1/apps/cdn-demo/machines/{id}?force=true"),
            None,
        ),
    ] {
        let (st, answer) = s.replay(&token, method, &path, body).await;
        assert_eq!(
            (st, answer),
            (403, json!({"error": "unauthorized"})),
            "{method} {path}"
        );
    }
    // The machine was not touched.
    let viewer = s.env.sim.viewer_token();
    let (_, m) = s
        .replay(
            &viewer,
            "GET",
            &format!("/v1/apps/cdn-demo/machines/{id}"),
            None,
        )
        .await;
    assert_ne!(m["state"], "destroyed");
}

#[tokio::test]
async fn a_token_for_app_a_cannot_touch_app_b_even_past_the_gate() {
    let s = setup(all_tools(false)).await;
    // B: another app of the same org, with a machine.
    let viewer = s.env.sim.viewer_token();
    let (st, _) = s
        .replay(
            &viewer,
            "POST",
            "/v1/apps",
            Some(json!({"name": "other-app", "org_slug": "cdn-org"})),
        )
        .await;
    assert_eq!(st, 201);
    // A new app answers 404 for a moment (the realistic profile, as on Fly): that
    // moment passes on the simulator's clock.
    s.env.sim.advance(Duration::from_millis(
        Realism::realistic().new_app_hidden_ms,
    ));
    let (st, b_machine) = s
        .replay(
            &viewer,
            "POST",
            "/v1/apps/other-app/machines",
            Some(json!({"region": "iad", "config": {"image": "nginx:latest"}})),
        )
        .await;
    assert_eq!(st, 200, "{b_machine}");
    let b_id = b_machine["id"].as_str().unwrap().to_owned();

    // A write call on A (cdn-demo).
    let a_id = s.machines("cdn-demo").await.remove(0);
    s.ok(
        "machine_action",
        json!({"app": "cdn-demo", "action": "cordon", "machine_ids": [a_id]}),
    )
    .await;
    let token = s.token_of("POST", &format!("/v1/apps/cdn-demo/machines/{a_id}/cordon"));
    for caveats in caveats_of(&token) {
        assert!(app_id(&caveats).is_some(), "an Apps caveat: {caveats:?}");
        assert!(
            caveats.contains(&Caveat::Action(fly::CallAccess::Write.mask())),
            "a write call: no delete ({caveats:?})"
        );
    }

    // On A it may uncordon; on B nothing at all, whatever a bug would send.
    let (st, _) = s
        .replay(
            &token,
            "POST",
            &format!("/v1/apps/cdn-demo/machines/{a_id}/uncordon"),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 200);
    for (method, path, body) in [
        ("GET", "/v1/apps/other-app/machines".to_owned(), None),
        (
            "POST",
            format!("/v1/apps/other-app/machines/{b_id}/stop"),
            Some(json!({})),
        ),
        (
            "DELETE",
            format!("/v1/apps/other-app/machines/{b_id}?force=true"),
            None,
        ),
        ("DELETE", "/v1/apps/other-app".to_owned(), None),
        (
            "POST",
            "/v1/apps".to_owned(),
            Some(json!({"name": "sneaky-app", "org_slug": "cdn-org"})),
        ),
    ] {
        let (st, answer) = s.replay(&token, method, &path, body).await;
        assert_eq!(
            (st, answer),
            (403, json!({"error": "unauthorized"})),
            "{method} {path}"
        );
    }
    // Nor delete on A: the call was a write.
    let (st, _) = s
        .replay(
            &token,
            "DELETE",
            &format!("/v1/apps/cdn-demo/machines/{a_id}?force=true"),
            None,
        )
        .await;
    assert_eq!(st, 403);
    let (_, b) = s
        .replay(
            &viewer,
            "GET",
            &format!("/v1/apps/other-app/machines/{b_id}"),
            None,
        )
        .await;
    assert_ne!(b["state"], "destroyed");
}

#[tokio::test]
async fn an_expired_attenuated_token_is_refused() {
    let s = setup(all_tools(false)).await;
    s.ok("app_status", json!({"app": "cdn-demo"})).await;
    let token = s.token_of("GET", "/v1/apps/cdn-demo/machines");
    let (st, _) = s
        .replay(&token, "GET", "/v1/apps/cdn-demo/machines", None)
        .await;
    assert_eq!(st, 200);
    // Minutes later (the simulator's clock), the same token is worthless…
    s.env.sim.advance(Duration::from_secs(6 * 60));
    let (st, answer) = s
        .replay(&token, "GET", "/v1/apps/cdn-demo/machines", None)
        .await;
    assert_eq!((st, answer), (403, json!({"error": "unauthorized"})));
    // …while the server, which attenuates each request afresh, carries on.
    s.ok("app_status", json!({"app": "cdn-demo"})).await;
}

#[tokio::test]
async fn creating_an_app_gets_exactly_create_on_its_org() {
    let s = setup(all_tools(false)).await;
    s.ok(
        "provision_environment",
        json!({"app": "dev-fresh", "org": "cdn-org", "region": "iad", "image": "nginx:latest", "public_ips": false}),
    )
    .await;
    let token = s.token_of("POST", "/v1/apps");
    for caveats in caveats_of(&token) {
        assert!(
            caveats
                .iter()
                .any(|c| matches!(c, Caveat::Organization { mask, .. } if *mask == Action::CREATE)),
            "{caveats:?}"
        );
        assert!(app_id(&caveats).is_none());
    }
    // That token creates apps and does nothing else.
    let (st, _) = s
        .replay(&token, "GET", "/v1/apps?org_slug=cdn-org", None)
        .await;
    assert_eq!(st, 403);
}

#[tokio::test]
async fn no_attenuate_sends_the_token_as_it_is() {
    let s = setup(PolicyOptions {
        no_attenuate: true,
        ..all_tools(false)
    })
    .await;
    s.ok("app_status", json!({"app": "cdn-demo"})).await;
    for (method, path, auth) in s.sent() {
        assert_eq!(auth, s.token, "{method} {path}");
    }
}
