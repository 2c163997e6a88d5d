use fly_machines_mcp::fly::{AllocateIp, IpType};
use serde_json::json;
use wiremock::matchers::{body_json, body_partial_json, method, path};
use wiremock::{Mock, ResponseTemplate};

use super::{fixture, stub};

#[tokio::test]
async fn rest_ip_assignments() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/ip_assignments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ips": [
            {"ip": "66.241.124.10", "region": "global", "shared": true, "created_at": "2026-05-01T00:00:00Z"},
            {"ip": "2a09:8280:1::1", "region": "global", "shared": false},
            {"ip": "fdaa:0:1::3", "shared": false, "network": {"name": "", "org_slug": "acme"}}]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/web/ip_assignments"))
        .and(body_json(json!({"type": "egress_pair", "region": "iad"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"ip": null, "ip_pair": {"v4": "1.2.3.4", "v6": "2a09::1"}, "egress": true}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/apps/web/ip_assignments/2a09:8280:1::1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let ips = client.list_ip_assignments("web").await.unwrap();
    assert_eq!(
        ips.iter().map(|i| i.kind()).collect::<Vec<_>>(),
        ["shared_v4", "v6", "private_v6"]
    );
    let pair = client
        .allocate_ip_assignment(
            "web",
            &AllocateIp {
                region: Some("iad".into()),
                ..AllocateIp::new(IpType::EgressPair)
            },
        )
        .await
        .unwrap();
    assert_eq!(pair.ip_pair.unwrap().v4, "1.2.3.4");
    client
        .release_ip_assignment("web", "2a09:8280:1::1")
        .await
        .unwrap();
}

#[tokio::test]
async fn graphql_ip_allocation_shared_and_dedicated_release_and_list() {
    let (server, client) = stub().await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(body_partial_json(json!({"operationName": "AllocateIpAddress", "variables": {"input": {"appId": "web", "type": "shared_v4"}}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"allocateIpAddress": {
            "ipAddress": null, "app": {"sharedIpAddress": "66.241.124.10"}}}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(body_partial_json(json!({"operationName": "AllocateIpAddress", "variables": {"input": {"appId": "web", "type": "v6"}}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"allocateIpAddress": {
            "ipAddress": {"id": "ip_1", "address": "2a09:8280:1::1", "type": "v6", "region": "global",
                          "createdAt": "2026-05-01T00:00:00Z", "serviceName": null, "network": null},
            "app": {"sharedIpAddress": null}}}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(body_partial_json(json!({"operationName": "ReleaseIpAddress", "variables": {"input": {"appId": "web", "ip": "2a09:8280:1::1"}}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"releaseIpAddress": {"clientMutationId": null}}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .and(body_partial_json(json!({"operationName": "AppIpAddresses", "variables": {"appName": "web"}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"app": {
            "sharedIpAddress": "66.241.124.10",
            "ipAddresses": {"nodes": [{"id": "ip_1", "address": "2a09:8280:1::1", "type": "v6", "region": "global",
                "createdAt": "2026-05-01T00:00:00Z", "serviceName": null, "network": null}],
                "pageInfo": {"endCursor": null, "hasNextPage": false}}}}})))
        .mount(&server)
        .await;
    let shared = client
        .gql_allocate_ip("web", IpType::SharedV4, None)
        .await
        .unwrap();
    assert_eq!(
        (shared.ip.as_deref(), shared.kind()),
        (Some("66.241.124.10"), "shared_v4")
    );
    let v6 = client
        .gql_allocate_ip("web", IpType::V6, None)
        .await
        .unwrap();
    assert_eq!(v6.kind(), "v6");
    client
        .gql_release_ip("web", "2a09:8280:1::1")
        .await
        .unwrap();
    let ips = client.app_ip_addresses("web").await.unwrap();
    assert_eq!(ips.shared_v4.as_deref(), Some("66.241.124.10"));
    assert_eq!(ips.addresses.len(), 1);
    let err = client
        .gql_allocate_ip("web", IpType::EgressV4, None)
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("invalid ip type:"), "{err}");
}

#[tokio::test]
async fn certificates() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/certificates"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"certificates": [
            {"hostname": "app.example.org", "status": "active", "configured": true, "acme_requested": true,
             "has_fly_certificate": true, "created_at": "2026-05-01T00:00:00Z"}], "total_count": 1})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/apps/web/certificates/app.example.org"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("certificate-detail.json")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/web/certificates/acme"))
        .and(body_json(json!({"hostname": "app.example.org"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("certificate-detail.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/apps/web/certificates/app.example.org/check"))
        .respond_with(ResponseTemplate::new(200).set_body_json({
            let mut c = fixture("certificate-detail.json");
            c["dns_records"] = json!({"a": [], "aaaa": [], "soa": "ns.example."});
            c
        }))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/apps/web/certificates/app.example.org"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        client.list_certificates("web").await.unwrap()[0].status,
        "active"
    );
    let c = client
        .get_certificate("web", "app.example.org")
        .await
        .unwrap();
    let dns = c.dns_requirements.unwrap();
    assert_eq!(dns.cname.as_deref(), Some("web.fly.dev"));
    assert_eq!(dns.ownership.unwrap().app_value, "app-1234");
    assert_eq!(c.validation_errors[0].remediation, "Add an A record");
    client
        .add_acme_certificate("web", "app.example.org")
        .await
        .unwrap();
    client
        .check_certificate("web", "app.example.org")
        .await
        .unwrap();
    client
        .remove_certificate("web", "app.example.org")
        .await
        .unwrap();
    let err = client
        .add_acme_certificate("web", "not a host")
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("invalid hostname:"), "{err}");
}
