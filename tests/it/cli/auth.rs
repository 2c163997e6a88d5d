//! `auth login|status|logout` against a loopback stub of Fly's API (the token file in a
//! temporary config dir; the token never in any output).

use std::collections::HashMap;
use std::path::Path;

use clap::Parser;
use fly_machines_mcp::cli::auth::{AuthArgs, AuthContext, AuthError, auth, read_token};
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "fm2_canaryAuthTest0123456789";

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: AuthArgs,
}

fn args(argv: &[&str]) -> AuthArgs {
    Cli::try_parse_from(std::iter::once("auth").chain(argv.iter().copied()))
        .expect("arguments parse")
        .args
}

/// A context whose config dir and home are inside `dir`, pointed at `api`.
fn ctx(dir: &Path, api: &str, extra: &[(&str, &str)]) -> AuthContext {
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert(
        "XDG_CONFIG_HOME".into(),
        dir.join("config").display().to_string(),
    );
    env.insert("FLY_API_HOSTNAME".into(), api.to_owned());
    env.insert("FLY_API_BASE_URL".into(), api.to_owned());
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    AuthContext::new(move |k| env.get(k).cloned(), Some(dir.join("home")))
}

async fn fly_stub() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/tokens/current"))
        .and(header("authorization", format!("FlyV1 {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"tokens": [
            {"org_slug": "acme", "organization": "Acme", "apps": ["dev-alice", "dev-bob"], "token_id": "tok_1"}
        ]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"organizations": {
            "nodes": [
                {"id": "o1", "slug": "personal", "rawSlug": "personal", "name": "Me", "type": "PERSONAL",
                 "paidPlan": false, "viewerRole": "admin", "internalNumericId": "1"},
                {"id": "o2", "slug": "acme", "rawSlug": "acme", "name": "Acme", "type": "SHARED",
                 "paidPlan": true, "viewerRole": "member", "internalNumericId": 2}
            ],
            "pageInfo": {"endCursor": null, "hasNextPage": false}
        }}})))
        .mount(&server)
        .await;
    // Anything else (a wrong token) is refused the way Fly refuses it.
    Mock::given(method("GET"))
        .and(path("/v1/tokens/current"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": "Authenticate: token validation error"})),
        )
        .mount(&server)
        .await;
    server
}

async fn run(
    args_: &[&str],
    ctx: &AuthContext,
    token: Option<&str>,
) -> (Result<(), AuthError>, String) {
    let mut out = Vec::new();
    let token = token.map(|t| SecretString::from(t.to_owned()));
    let result = auth(&args(args_), ctx, token, &mut out).await;
    (result, String::from_utf8(out).unwrap())
}

fn assert_no_token(text: &str) {
    assert!(!text.contains(TOKEN), "token leaked: {text}");
    // Not even a prefix of the secret part.
    assert!(!text.contains(&TOKEN[..12]), "token prefix leaked: {text}");
}

#[test]
fn the_token_is_the_first_non_empty_line_of_stdin() {
    use secrecy::ExposeSecret;
    let mut input: &[u8] = b"\n  \n  FlyV1 fm2_abc,fm2_def  \nignored\n";
    let token = read_token(&mut input).unwrap();
    assert_eq!(token.expose_secret(), "FlyV1 fm2_abc,fm2_def");
    let mut empty: &[u8] = b"\n\n";
    assert!(matches!(read_token(&mut empty), Err(AuthError::EmptyToken)));
}

#[tokio::test]
async fn login_verifies_and_stores_the_token_privately() {
    let fly = fly_stub().await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path(), &fly.uri(), &[]);
    let (result, out) = run(&["login"], &ctx, Some(&format!("  FlyV1 {TOKEN}  "))).await;
    result.unwrap();
    assert_no_token(&out);
    assert!(out.contains("org acme"), "{out}");
    assert!(out.contains("apps dev-alice, dev-bob"), "{out}");

    let path = ctx.token_path().unwrap();
    assert_eq!(path, dir.path().join("config/fly-machines-mcp/token"));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap().trim(),
        format!("FlyV1 {TOKEN}")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }

    // The stored token is what `status` (and so `serve`) now resolves.
    let (result, out) = run(&["status"], &ctx, None).await;
    result.unwrap();
    assert_no_token(&out);
    assert!(out.contains("stored token"), "{out}");
    assert!(out.contains("FlyV1"), "scheme shown: {out}");
    assert!(out.contains("Organizations: personal, acme"), "{out}");
}

#[tokio::test]
async fn a_rejected_token_is_not_stored() {
    let fly = fly_stub().await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path(), &fly.uri(), &[]);
    let wrong = "fm2_wrongwrongwrongwrong";
    let (result, out) = run(&["login"], &ctx, Some(wrong)).await;
    let err = result.unwrap_err();
    assert!(matches!(err, AuthError::Rejected { status: 401 }), "{err}");
    assert!(!err.to_string().contains(wrong));
    assert!(out.is_empty());
    assert!(!ctx.token_path().unwrap().exists(), "nothing stored");
}

#[tokio::test]
async fn login_no_verify_makes_no_call_and_empty_input_is_refused() {
    let fly = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&fly)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path(), &fly.uri(), &[("FLY_API_TOKEN", "fm2_other")]);
    let (result, out) = run(&["login", "--no-verify"], &ctx, Some(TOKEN)).await;
    result.unwrap();
    assert!(out.contains("Not verified"), "{out}");
    assert!(
        out.contains("FLY_API_TOKEN is set"),
        "warns about precedence: {out}"
    );
    assert!(ctx.token_path().unwrap().exists());

    let (result, _) = run(&["login"], &ctx, None).await;
    assert!(matches!(result, Err(AuthError::EmptyToken)));
    let (result, _) = run(&["login"], &ctx, Some("  Bearer  ")).await;
    assert!(matches!(result, Err(AuthError::EmptyToken)));
}

#[tokio::test]
async fn status_names_the_env_source_and_json_has_the_orgs() {
    let fly = fly_stub().await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(
        dir.path(),
        &fly.uri(),
        &[("FLY_API_TOKEN", TOKEN), ("FLY_ORG", "acme")],
    );
    let (result, out) = run(&["status", "--json"], &ctx, None).await;
    result.unwrap();
    assert_no_token(&out);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["token_source"], "FLY_API_TOKEN");
    assert_eq!(report["organizations"], json!(["personal", "acme"]));
    assert_eq!(report["tokens"][0]["org"], "acme");
    assert_eq!(report["tokens"][0]["apps"], json!(["dev-alice", "dev-bob"]));
    assert_eq!(report["default_org"], "acme");
}

#[tokio::test]
async fn status_without_a_token_says_how_to_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path(), "http://127.0.0.1:9", &[]);
    let (result, _) = run(&["status"], &ctx, None).await;
    let err = result.unwrap_err();
    assert!(matches!(err, AuthError::NoToken { .. }), "{err}");
    assert!(err.to_string().contains("auth login"), "{err}");
}

#[tokio::test]
async fn logout_removes_the_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path(), "http://127.0.0.1:9", &[]);
    let (result, _) = run(&["login", "--no-verify"], &ctx, Some(TOKEN)).await;
    result.unwrap();
    let (result, out) = run(&["logout"], &ctx, None).await;
    result.unwrap();
    assert!(out.contains("Removed"), "{out}");
    assert!(!ctx.token_path().unwrap().exists());
    let (result, out) = run(&["logout"], &ctx, None).await;
    result.unwrap();
    assert!(out.contains("nothing to remove"), "{out}");
}

#[test]
fn the_token_is_never_an_argument() {
    let parsed = Cli::try_parse_from(["auth", "login", TOKEN]);
    assert!(parsed.is_err(), "login takes no positional token");
    let parsed = Cli::try_parse_from(["auth", "login", "--token", TOKEN]);
    assert!(parsed.is_err(), "nor a --token flag");
}

/// The simulator with the demo scenario, one org token and one app-scoped token.
async fn sim_with_tokens() -> fly_machines_mcp::sim::SimHandle {
    let mut cfg = fly_machines_mcp::sim::SimConfig::for_tests();
    cfg.scenario = fly_machines_mcp::sim::Scenario::Demo;
    cfg.required_token = Some(TOKEN.to_owned());
    cfg.app_tokens = vec![fly_machines_mcp::sim::AppToken {
        token: "fm2_appscopedappscoped".to_owned(),
        apps: vec!["notes-app".to_owned()],
    }];
    fly_machines_mcp::sim::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn against_the_simulator_login_then_status_shows_the_orgs() {
    let sim = sim_with_tokens().await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path(), &sim.base_url(), &[]);

    let (result, _) = run(&["login"], &ctx, Some("fm2_notthetoken")).await;
    assert!(
        matches!(result, Err(AuthError::Rejected { status: 401 })),
        "{result:?}"
    );
    assert!(!ctx.token_path().unwrap().exists());

    let (result, out) = run(&["login"], &ctx, Some(TOKEN)).await;
    result.unwrap();
    assert_no_token(&out);
    assert!(out.contains("org cdn-org"), "{out}");

    let (result, out) = run(&["status", "--json"], &ctx, None).await;
    result.unwrap();
    assert_no_token(&out);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["token_source"], "stored token (auth login)");
    let orgs = report["organizations"].as_array().unwrap();
    assert!(orgs.contains(&json!("cdn-org")), "{report}");
    assert!(orgs.contains(&json!("demo-user")), "{report}");
    sim.shutdown().await;
}

#[tokio::test]
async fn against_the_simulator_an_app_token_shows_its_app_scope() {
    let sim = sim_with_tokens().await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(
        dir.path(),
        &sim.base_url(),
        &[("FLY_API_TOKEN", "fm2_appscopedappscoped")],
    );
    let (result, out) = run(&["status"], &ctx, None).await;
    result.unwrap();
    assert!(out.contains("Token source:  FLY_API_TOKEN"), "{out}");
    assert!(out.contains("apps notes-app"), "{out}");
    assert!(!out.contains("appscoped"), "token never shown: {out}");
    sim.shutdown().await;
}

/// A stub of Fly where `tokens/current` speaks of macaroons only: a `Bearer` (OAuth or
/// personal) token is refused there, and known to GraphQL `viewer`.
async fn user_token_stub(user_token: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/tokens/current"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": "Authenticate: token validation error"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(header(
            "authorization",
            format!("Bearer {user_token}").as_str(),
        ))
        .and(wiremock::matchers::body_partial_json(
            json!({"operationName": "Viewer"}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": {"viewer": {
            "__typename": "User", "email": "alice@example.com", "name": "Alice"}}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(header(
            "authorization",
            format!("Bearer {user_token}").as_str(),
        ))
        .and(wiremock::matchers::body_partial_json(
            json!({"operationName": "Organizations"}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": {"organizations": {
            "nodes": [{"id": "o1", "slug": "personal", "rawSlug": "personal", "name": "Me",
                       "type": "PERSONAL", "paidPlan": false, "viewerRole": "admin",
                       "internalNumericId": "1"}],
            "pageInfo": {"endCursor": null, "hasNextPage": false}}}})),
        )
        .mount(&server)
        .await;
    // GraphQL refuses any other token.
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"errors": [
            {"message": "You must be authenticated to view this."}]})))
        .mount(&server)
        .await;
    server
}

/// Issue 18 item 9: `auth login` and `auth status` with a `Bearer` token that
/// `/v1/tokens/current` does not describe fall back to GraphQL `viewer`. Before, both
/// failed with "Fly rejected the token (401)".
#[tokio::test]
async fn a_user_token_is_checked_through_graphql_viewer() {
    let user_token = "fo1_useroauthtoken0123456789";
    let fly = user_token_stub(user_token).await;
    let dir = tempfile::tempdir().unwrap();
    let user_ctx = ctx(dir.path(), &fly.uri(), &[]);
    let (result, out) = run(&["login"], &user_ctx, Some(user_token)).await;
    result.unwrap();
    assert!(out.contains("Verified: user alice@example.com"), "{out}");
    assert!(!out.contains("useroauth"), "token never shown: {out}");

    let (result, out) = run(&["status"], &user_ctx, None).await;
    result.unwrap();
    assert!(out.contains("Scheme:        Bearer"), "{out}");
    assert!(
        out.contains("Reaches:       user alice@example.com"),
        "{out}"
    );
    assert!(out.contains("Organizations: personal"), "{out}");
    assert!(!out.contains("useroauth"), "token never shown: {out}");

    // A user token GraphQL does not know either is still refused, and not stored.
    let other = tempfile::tempdir().unwrap();
    let other_ctx = ctx(other.path(), &fly.uri(), &[]);
    let (result, _) = run(&["login"], &other_ctx, Some("fo1_someoneelse")).await;
    assert!(
        matches!(result, Err(AuthError::Rejected { status: 401 })),
        "{result:?}"
    );
    assert!(!other_ctx.token_path().unwrap().exists());
}

/// `auth status` lists the token's caveats in words, decoded from the token itself,
/// org ids named by their slugs; never the token.
#[tokio::test]
async fn status_shows_the_caveats_in_words() {
    let vectors: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/tests/it/fly/fixtures/macaroon-vectors.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    // A token with one caveat: Organization {id 123, mask rwcdC}.
    let token = vectors["macaroons"]["Organization"]
        .as_str()
        .unwrap()
        .to_owned();
    let fly = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/tokens/current"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"tokens": [
            {"org_slug": "acme", "organization": "Acme", "apps": [], "token_id": "tok_1"}]})))
        .mount(&fly)
        .await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"organizations": {
            "nodes": [{"id": "o2", "slug": "acme", "rawSlug": "acme", "name": "Acme", "type": "SHARED",
                       "paidPlan": true, "viewerRole": "admin", "internalNumericId": 123}],
            "pageInfo": {"endCursor": null, "hasNextPage": false}}}})))
        .mount(&fly)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path(), &fly.uri(), &[("FLY_API_TOKEN", token.as_str())]);
    let (result, out) = run(&["status"], &ctx, None).await;
    result.unwrap();
    assert!(
        out.contains(
            "only organization acme (#123); actions: read, write, create, delete, control"
        ),
        "{out}"
    );
    let secret = token.trim_start_matches("FlyV1 fm2_");
    assert!(!out.contains(&secret[..16]), "token never shown: {out}");

    let (result, out) = run(&["status", "--json"], &ctx, None).await;
    result.unwrap();
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["caveats"][0]["caveats"].as_array().unwrap().len(), 1);
    assert!(!out.contains(&secret[..16]), "token never shown: {out}");
}
