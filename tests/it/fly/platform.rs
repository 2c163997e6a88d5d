use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, ResponseTemplate};

use super::stub;

#[tokio::test]
async fn regions_and_token_identity() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path("/v1/platform/regions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"nearest": "iad", "regions": [
            {"code": "iad", "name": "Ashburn, Virginia (US)", "geo_region": "us", "latitude": 39.0, "longitude": -77.4,
             "deprecated": false, "gateway_available": true, "requires_paid_plan": false, "mpg_available": true},
            {"code": "jnb", "name": "Johannesburg", "requires_paid_plan": true}]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/tokens/current"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"tokens": [
            {"org_slug": "acme", "organization": "Acme", "apps": ["web"], "token_id": "t1"}]})))
        .mount(&server)
        .await;
    let regions = client.list_regions().await.unwrap();
    assert_eq!(regions.len(), 2);
    assert!(regions[1].requires_paid_plan);
    let info = client.current_token().await.unwrap();
    assert_eq!(info.tokens[0].org_slug.as_deref(), Some("acme"));
    assert_eq!(info.tokens[0].apps, ["web"]);
}

#[tokio::test]
async fn graphql_organizations_pages_and_vm_sizes() {
    let (server, client) = stub().await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(header("content-type", "application/json"))
        .and(body_partial_json(json!({"operationName": "Organizations", "variables": {"after": null}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"organizations": {
            "nodes": [{"id": "o1", "slug": "personal", "rawSlug": "alice", "name": "Alice", "type": "PERSONAL",
                       "paidPlan": false, "viewerRole": "admin", "internalNumericId": "42"}],
            "pageInfo": {"endCursor": "cur1", "hasNextPage": true}}}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(body_partial_json(json!({"operationName": "Organizations", "variables": {"after": "cur1"}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"organizations": {
            "nodes": [{"id": "o2", "slug": "acme", "rawSlug": "acme", "name": "Acme", "type": "SHARED",
                       "paidPlan": true, "viewerRole": "member", "internalNumericId": 7}, null],
            "pageInfo": {"endCursor": null, "hasNextPage": false}}}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(body_partial_json(json!({"operationName": "VmSizes"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"platform": {"vmSizes": [
            {"name": "shared-cpu-1x", "cpuCores": 1.0, "memoryMb": 256, "memoryGb": 0.25, "maxMemoryMb": 2048,
             "memoryIncrementsMb": [256], "priceMonth": 1.94, "priceSecond": 0.00000075}]}}})))
        .mount(&server)
        .await;
    let orgs = client.organizations().await.unwrap();
    assert_eq!(
        orgs.iter().map(|o| o.slug.as_str()).collect::<Vec<_>>(),
        ["personal", "acme"]
    );
    assert_eq!(orgs[0].internal_numeric_id, Some(42));
    assert_eq!(orgs[1].kind.as_deref(), Some("SHARED"));
    let sizes = client.vm_sizes().await.unwrap();
    assert_eq!(sizes[0].name, "shared-cpu-1x");
    assert!((sizes[0].price_month - 1.94).abs() < 1e-9);
}

#[tokio::test]
async fn graphql_errors_with_http_200_are_surfaced_in_full() {
    let (server, client) = stub().await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .respond_with(ResponseTemplate::new(200).insert_header("fly-request-id", "gq-1").set_body_json(json!({
            "data": null,
            "errors": [{"message": "Not authorized", "path": ["organizations"], "extensions": {"code": "UNAUTHORIZED"}},
                       {"message": "second"}]})))
        .mount(&server)
        .await;
    let err = client.organizations().await.unwrap_err();
    match &err {
        fly_machines_mcp::fly::Error::GraphQl { errors, .. } => {
            assert_eq!(errors.len(), 2);
            assert_eq!(errors[0].code.as_deref(), Some("UNAUTHORIZED"));
        }
        other => panic!("expected GraphQl, got {other:?}"),
    }
    assert_eq!(err.request_id(), Some("gq-1"));
    assert_eq!(
        err.to_string(),
        "organizations: GraphQL error: Not authorized; second"
    );
}

/// Issue 18 item 16: Fly no longer offers GPU Machines. When GraphQL `platform.vmSizes`
/// still lists GPU sizes, `platform_info`'s facts leave them out (as flyctl's `fly
/// platform vm-sizes` does, `internal/command/platform/vmsizes.go`), and no GPU preset
/// is accepted as a size.
#[tokio::test]
async fn item16_no_gpu_size_is_offered_even_when_graphql_lists_one() {
    let (server, client) = stub().await;
    let size = |name: &str, cpus: f64, mb: i64| {
        json!({"name": name, "cpuCores": cpus, "memoryMb": mb, "memoryGb": mb as f64 / 1024.0,
               "maxMemoryMb": mb, "memoryIncrementsMb": [256], "priceMonth": 1.0, "priceSecond": 0.000001})
    };
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(body_partial_json(json!({"operationName": "VmSizes"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"platform": {"vmSizes": [
            size("shared-cpu-1x", 1.0, 256), size("a10", 8.0, 32768), size("l40s", 32.0, 65536),
            size("a100-40gb", 8.0, 32768), size("a100-80gb", 8.0, 32768),
            size("performance-2x", 2.0, 4096)]}}}),
        ))
        .mount(&server)
        .await;
    let facts = fly_machines_mcp::workflows::observe::platform_facts(&client, false, true)
        .await
        .unwrap();
    let names: Vec<&str> = facts.vm_sizes.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["shared-cpu-1x", "performance-2x"]);
    for gpu in ["a10", "l40s", "a100-40gb", "a100-80gb"] {
        assert!(
            fly_machines_mcp::fly::validate::preset(gpu).is_err(),
            "{gpu}"
        );
    }
}
