//! Issue 18 item 8: which parts of a comma-joined token each Fly API gets, and a pasted
//! scheme stripped however many times it was pasted. fly-go's `tokens` package
//! (`FlapsHeader`, `BubblegumHeader`, `GraphQLHeader`) is the reference: the Machines and
//! logs APIs get the macaroons only, GraphQL gets every part, macaroons first.

use fly_machines_mcp::fly::{Client, ClientConfig, LogQuery, Token};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

/// The `Authorization` header exactly (wiremock's `header` splits values on commas).
struct Authorization(String);

impl Match for Authorization {
    fn matches(&self, request: &Request) -> bool {
        request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            == Some(self.0.as_str())
    }
}

fn header(_: &str, value: &str) -> Authorization {
    Authorization(value.to_owned())
}

fn client(server: &MockServer, token: &str) -> Client {
    let base = url::Url::parse(&server.uri()).unwrap();
    Client::new(ClientConfig::local(base, Token::parse(token)).unwrap()).unwrap()
}

/// Mounts the three APIs, each answering only to the header it must get.
async fn apis(server: &MockServer, machines: &str, graphql: &str) {
    Mock::given(method("GET"))
        .and(path("/v1/platform/regions"))
        .and(header("authorization", machines))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"regions": []})))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/apps/web/logs"))
        .and(header("authorization", machines))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [], "meta": {}})))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(header("authorization", graphql))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": {"organizations": {
            "nodes": [], "pageInfo": {"endCursor": null, "hasNextPage": false}}}})),
        )
        .mount(server)
        .await;
}

#[tokio::test]
async fn machines_and_logs_get_the_macaroons_graphql_gets_every_part() {
    let server = MockServer::start().await;
    apis(
        &server,
        "FlyV1 fm2_perm,fm2_discharge",
        "FlyV1 fm2_perm,fm2_discharge,fo1_user",
    )
    .await;
    let client = client(&server, "FlyV1 fo1_user,fm2_perm, fm2_discharge");
    client.list_regions().await.unwrap();
    client.app_logs("web", &LogQuery::default()).await.unwrap();
    client.organizations().await.unwrap();
}

#[tokio::test]
async fn a_scheme_pasted_twice_is_stripped_twice() {
    let server = MockServer::start().await;
    apis(&server, "FlyV1 fm2_only", "FlyV1 fm2_only").await;
    let client = client(&server, "Bearer FlyV1 fm2_only");
    client.list_regions().await.unwrap();
    client.app_logs("web", &LogQuery::default()).await.unwrap();
    client.organizations().await.unwrap();
}

#[tokio::test]
async fn user_tokens_alone_go_everywhere_as_bearer() {
    let server = MockServer::start().await;
    apis(&server, "Bearer fo1_a", "Bearer fo1_a").await;
    let client = client(&server, "bearer fo1_a");
    client.list_regions().await.unwrap();
    client.organizations().await.unwrap();
}
