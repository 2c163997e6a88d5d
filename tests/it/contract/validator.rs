//! Unit tests of the contract validator and the divergence list, against hand-written
//! bodies shaped like real Fly responses (ids and values are our own).

use serde_json::{Value, json};

use super::divergences::{self, Divergence, Side};
use super::openapi::{
    CapturedRequest, CapturedResponse, Spec, Violation, load_document, spec_path, to_json_schema,
};

fn spec() -> Spec {
    Spec::load().unwrap()
}

fn resp_ok(spec: &Spec, method: &str, path: &str, status: u16, body: &Value) -> Vec<Violation> {
    spec.validate_response(
        &CapturedRequest::new(method, path),
        &CapturedResponse::json(status, body),
    )
}

fn machine_body() -> Value {
    json!({
        "id": "3d8d9e2fa61e48",
        "name": "quiet-river-2041",
        "state": "started",
        "region": "ams",
        "instance_id": "01JB3V9S1QK0V7J8ZP3T6W2M4N",
        "version": "01JB3V9S1QK0V7J8ZP3T6W2M4N",
        "private_ip": "fdaa:2:3c4d:a7b:11e:91ac:55f0:2",
        "created_at": "2025-03-02T10:11:12Z",
        "updated_at": "2025-03-02T10:11:19Z",
        "incomplete_config": null,
        "config": {
            "image": "docker.io/library/nginx:1.27",
            "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 512},
            "env": {"MODE": "dev"},
            "metadata": null,
            "init": {"exec": null, "entrypoint": null, "cmd": ["nginx", "-g", "daemon off;"], "tty": false},
            "restart": {"policy": ""},
            "auto_destroy": false,
            "mounts": [{"volume": "vol_5r2k9z1qv8mx3w7p", "path": "/data", "extend_threshold_percent": 80, "add_size_gb": 1, "size_gb_limit": 10}],
            "services": [{
                "protocol": "tcp", "internal_port": 8080, "autostop": false, "autostart": true,
                "min_machines_running": 0,
                "ports": [{"port": 443, "handlers": ["tls", "http"]}, {"port": 80, "handlers": ["http"], "force_https": true}]
            }],
            "checks": {"alive": {"type": "http", "port": 8080, "path": "/health", "interval": "15s", "timeout": "2s"}},
            "dns": {}
        },
        "image_ref": {
            "registry": "docker.io", "repository": "library/nginx", "tag": "1.27",
            "digest": "sha256:0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a090807060504030201000",
            "labels": {}
        },
        "events": [
            {"id": "01JB3V9W8M2D5X0C6R1N7Q4T9E", "type": "exit", "status": "stopped", "source": "flyd", "timestamp": 1740910279000_i64,
             "request": {"exit_event": {"exit_code": 137, "oom_killed": true, "signal": 9, "requested_stop": false, "restarting": true, "exited_at": 1740910278990_i64}, "restart_count": 1}},
            {"id": "01JB3V9S1QK0V7J8ZP3T6W2M4P", "type": "launch", "status": "created", "source": "user", "timestamp": 1740910272000_i64}
        ],
        "checks": [{"name": "servicecheck-00-http-8080", "status": "passing", "output": "OK", "updated_at": "2025-03-02T10:11:25.5Z"}],
        "host_status": "ok"
    })
}

fn volume_body() -> Value {
    json!({
        "id": "vol_5r2k9z1qv8mx3w7p", "name": "data", "state": "created", "size_gb": 3,
        "region": "ams", "zone": "7f21", "encrypted": true,
        "attached_machine_id": null, "attached_alloc_id": null,
        "created_at": "2025-03-02T10:00:00.123Z",
        "blocks": 0, "block_size": 0, "blocks_free": 0, "blocks_avail": 0,
        "fstype": "ext4", "snapshot_retention": 5, "auto_backup_enabled": true,
        "host_status": "ok", "host_dedication_key": ""
    })
}

fn certificate_body() -> Value {
    json!({
        "hostname": "dev.example.org", "configured": false, "acme_requested": true,
        "status": "pending_validation", "dns_provider": "cloudflare", "rate_limited_until": null,
        "certificates": [{"source": "fly", "status": "pending_validation", "created_at": "2025-03-02T10:00:00Z",
                          "expires_at": "2025-06-01T10:00:00Z", "issuer": null, "issued": []}],
        "validation": {"dns_configured": false, "alpn_configured": false, "http_configured": false, "ownership_txt_configured": false},
        "dns_requirements": {
            "a": ["66.241.0.10"], "aaaa": ["2a09:8280:1::abcd"], "cname": "my-dev.fly.dev",
            "acme_challenge": {"name": "_acme-challenge.dev.example.org", "target": "dev.example.org.x1y2.flydns.net"},
            "ownership": {"name": "_fly-ownership.dev.example.org", "app_value": "app-q1w2e3", "org_value": "org-r4t5y6"}
        },
        "validation_errors": []
    })
}

#[test]
fn spec_loads_and_every_schema_converts() {
    let doc = load_document(&spec_path()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for (name, schema) in schemas {
        let converted = to_json_schema(&doc, schema).unwrap_or_else(|e| panic!("{name}: {e}"));
        jsonschema::draft202012::new(&converted).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let ids = spec().operation_ids();
    for must in [
        "Apps_list",
        "Apps_create",
        "Apps_show",
        "Apps_delete",
        "App_IPAssignments_list",
        "App_IPAssignments_create",
        "App_IPAssignments_delete",
        "Machines_list",
        "Machines_create",
        "Machines_show",
        "Machines_update",
        "Machines_delete",
        "Machines_start",
        "Machines_stop",
        "Machines_suspend",
        "Machines_restart",
        "Machines_signal",
        "Machines_cordon",
        "Machines_uncordon",
        "Machines_list_events",
        "Machines_list_versions",
        "Machines_list_processes",
        "Machines_exec",
        "Machines_wait",
        "Machines_show_lease",
        "Machines_create_lease",
        "Machines_release_lease",
        "Machines_show_metadata",
        "Machines_update_metadata",
        "Machines_get_metadata_key",
        "Machines_upsert_metadata",
        "Machines_delete_metadata",
        "Volumes_list",
        "Volumes_create",
        "Volumes_get_by_id",
        "Volumes_update",
        "Volume_delete",
        "Volumes_extend",
        "Volumes_list_snapshots",
        "createVolumeSnapshot",
        "Secrets_list",
        "Secrets_update",
        "App_Certificates_list",
        "App_Certificates_acme_create",
        "App_Certificates_show",
        "App_Certificates_check",
        "App_Certificates_delete",
        "Platform_regions_get",
        "CurrentToken_show",
        "Logs_list",
        "GraphQL",
    ] {
        assert!(
            ids.iter().any(|i| i == must),
            "operation {must} missing from the spec"
        );
    }
}

#[test]
fn nullable_becomes_a_null_alternative() {
    let doc = json!({"components": {"schemas": {"A": {"type": "object", "properties": {"x": {"type": "integer"}}}}}});
    let s = to_json_schema(
        &doc,
        &json!({"type": "string", "nullable": true, "enum": ["a"]}),
    )
    .unwrap();
    assert_eq!(s, json!({"type": ["string", "null"], "enum": ["a", null]}));
    let s = to_json_schema(
        &doc,
        &json!({"allOf": [{"$ref": "#/components/schemas/A"}], "nullable": true}),
    )
    .unwrap();
    let v = jsonschema::draft202012::new(&s).unwrap();
    assert!(v.is_valid(&json!(null)));
    assert!(v.is_valid(&json!({"x": 1})));
    assert!(!v.is_valid(&json!({"x": "1"})));
    assert!(
        !v.is_valid(&json!({"y": 1})),
        "objects with listed properties are closed"
    );
}

#[test]
fn recursive_refs_are_reported_not_looped() {
    let doc = json!({"components": {"schemas": {"N": {"type": "object", "properties": {"next": {"$ref": "#/components/schemas/N"}}}}}});
    let err = to_json_schema(&doc, &json!({"$ref": "#/components/schemas/N"})).unwrap_err();
    assert!(err.contains("recursive"), "{err}");
    assert!(to_json_schema(&doc, &json!({"$ref": "#/components/schemas/Missing"})).is_err());
}

#[test]
fn paths_match_the_most_specific_template() {
    let s = spec();
    let cases = [
        ("GET", "/v1/apps/my-app", "Apps_show"),
        (
            "GET",
            "/v1/apps/my-app/machines/3d8d9e2fa61e48",
            "Machines_show",
        ),
        (
            "POST",
            "/v1/apps/my-app/machines/3d8d9e2fa61e48",
            "Machines_update",
        ),
        (
            "GET",
            "/v1/apps/my-app/machines/3d8d9e2fa61e48/lease",
            "Machines_show_lease",
        ),
        (
            "DELETE",
            "/v1/apps/my-app/machines/3d8d9e2fa61e48/metadata/role",
            "Machines_delete_metadata",
        ),
        (
            "POST",
            "/v1/apps/my-app/certificates/acme",
            "App_Certificates_acme_create",
        ),
        (
            "GET",
            "/v1/apps/my-app/certificates/dev.example.org",
            "App_Certificates_show",
        ),
        (
            "POST",
            "/v1/apps/my-app/certificates/dev.example.org/check",
            "App_Certificates_check",
        ),
        (
            "DELETE",
            "/v1/apps/my-app/ip_assignments/2a09:8280:1::1",
            "App_IPAssignments_delete",
        ),
        (
            "GET",
            "/v1/apps/my-app/machines?state=started",
            "Machines_list",
        ),
        ("GET", "/api/v1/apps/my-app/logs", "Logs_list"),
        ("POST", "/graphql", "GraphQL"),
    ];
    for (method, path, want) in cases {
        assert_eq!(
            s.operation_id(method, path).unwrap(),
            want,
            "{method} {path}"
        );
    }
    let v = s.operation_id("GET", "/v1/apps/my-app/nope").unwrap_err();
    assert!(v.message.contains("no documented path"), "{v}");
    let v = s.operation_id("PUT", "/v1/apps/my-app").unwrap_err();
    assert!(v.message.contains("method not documented"), "{v}");
    assert!(
        s.operation_id("GET", "/v1/apps//machines").is_err(),
        "empty segments do not match a parameter"
    );
}

#[test]
fn real_shaped_responses_validate() {
    let s = spec();
    let m = "/v1/apps/my-app/machines/3d8d9e2fa61e48";
    let cases: Vec<(&str, String, u16, Value)> = vec![
        (
            "POST",
            "/v1/apps".into(),
            201,
            json!({"id": "k3j9x2m1p0q8r7s6", "created_at": 1740910000000_i64}),
        ),
        (
            "GET",
            "/v1/apps/my-app".into(),
            200,
            json!({"id": "k3j9x2m1p0q8r7s6", "name": "my-app", "status": "pending", "organization": {"name": "Dev Org", "slug": "personal"}}),
        ),
        (
            "GET",
            "/v1/apps?org_slug=personal".into(),
            200,
            json!({"apps": [{"id": "k3j9x2m1p0q8r7s6", "name": "my-app", "machine_count": 1, "volume_count": 1, "network": "default"}], "total_apps": 1}),
        ),
        (
            "GET",
            "/v1/apps/my-app/machines".into(),
            200,
            json!([machine_body()]),
        ),
        (
            "POST",
            "/v1/apps/my-app/machines".into(),
            200,
            machine_body(),
        ),
        ("GET", m.into(), 200, machine_body()),
        (
            "POST",
            format!("{m}/start"),
            200,
            json!({"previous_state": "stopped", "migrated": false, "new_host": ""}),
        ),
        ("POST", format!("{m}/stop"), 200, json!({"ok": true})),
        (
            "GET",
            format!("{m}/wait?state=started"),
            200,
            json!({"ok": true}),
        ),
        (
            "GET",
            format!("{m}/wait"),
            200,
            json!({"ok": true, "state": "started", "version": "01JB3V9S1QK0V7J8ZP3T6W2M4N", "event_id": "01JB3V9W8M2D5X0C6R1N7Q4T9E"}),
        ),
        (
            "POST",
            format!("{m}/lease"),
            201,
            json!({"status": "success", "data": {"nonce": "a1b2c3d4e5f6", "expires_at": 1740910500, "owner": "dev@example.org", "description": "", "version": "01JB3V9S1QK0V7J8ZP3T6W2M4N"}}),
        ),
        (
            "POST",
            format!("{m}/lease"),
            201,
            json!({"nonce": "a1b2c3d4e5f6", "expires_at": 1740910500, "owner": "dev@example.org", "version": "01JB3V9S1QK0V7J8ZP3T6W2M4N"}),
        ),
        (
            "DELETE",
            format!("{m}/lease"),
            200,
            json!({"status": "success", "data": {"ok": true}}),
        ),
        (
            "GET",
            format!("{m}/metadata"),
            200,
            json!({"role": "web", "owner": "dev"}),
        ),
        (
            "GET",
            format!("{m}/metadata/role"),
            200,
            json!({"value": "web"}),
        ),
        (
            "GET",
            format!("{m}/events"),
            200,
            machine_body()["events"].clone(),
        ),
        (
            "GET",
            format!("{m}/versions"),
            200,
            json!([{"version": "01JB3V9S1QK0V7J8ZP3T6W2M4N", "user_config": machine_body()["config"].clone()}]),
        ),
        (
            "GET",
            format!("{m}/ps"),
            200,
            json!([{"pid": 1, "command": "nginx", "cpu": 0, "rss": 2048, "rtime": 10, "stime": 2, "directory": "/", "listen_sockets": [{"address": "0.0.0.0:8080", "proto": "tcp"}]}]),
        ),
        (
            "POST",
            format!("{m}/exec"),
            200,
            json!({"exit_code": 0, "exit_signal": 0, "stdout": "hi\n", "stderr": ""}),
        ),
        (
            "GET",
            "/v1/apps/my-app/volumes".into(),
            200,
            json!([volume_body()]),
        ),
        ("POST", "/v1/apps/my-app/volumes".into(), 200, volume_body()),
        (
            "PUT",
            "/v1/apps/my-app/volumes/vol_5r2k9z1qv8mx3w7p/extend".into(),
            200,
            json!({"volume": volume_body(), "needs_restart": false}),
        ),
        (
            "GET",
            "/v1/apps/my-app/volumes/vol_5r2k9z1qv8mx3w7p/snapshots".into(),
            200,
            json!([{"id": "vs_Zx81Qa2Lm7Rt0Pw", "size": 1048576, "digest": "abc123-1", "created_at": "2025-03-01T21:00:00+00:00", "retention_days": 5}]),
        ),
        (
            "GET",
            "/v1/apps/my-app/ip_assignments".into(),
            200,
            json!({"ips": [{"ip": "2a09:8280:1::abcd", "region": "global", "shared": false, "service_name": "", "created_at": "2025-03-02T10:00:00Z"}]}),
        ),
        (
            "POST",
            "/v1/apps/my-app/ip_assignments".into(),
            200,
            json!({"ip": "66.241.0.10", "region": "global", "shared": true}),
        ),
        (
            "GET",
            "/v1/apps/my-app/secrets".into(),
            200,
            json!({"secrets": [{"name": "DATABASE_URL", "digest": "5e884898da28047151d0e56f8dc62927", "created_at": "2025-03-02T10:00:00Z", "updated_at": "2025-03-02T10:00:00Z"}]}),
        ),
        (
            "POST",
            "/v1/apps/my-app/secrets".into(),
            200,
            json!({"secrets": [], "version": 4}),
        ),
        (
            "GET",
            "/v1/apps/my-app/certificates".into(),
            200,
            json!({"certificates": [{"hostname": "dev.example.org", "status": "active", "configured": true, "has_fly_certificate": true, "created_at": "2025-03-02T10:00:00Z"}], "total_count": 1}),
        ),
        (
            "POST",
            "/v1/apps/my-app/certificates/acme".into(),
            201,
            certificate_body(),
        ),
        (
            "GET",
            "/v1/apps/my-app/certificates/dev.example.org".into(),
            200,
            certificate_body(),
        ),
        (
            "GET",
            "/v1/platform/regions".into(),
            200,
            json!({"nearest": "ams", "regions": [{"code": "ams", "name": "Amsterdam, Netherlands", "latitude": 52.37, "longitude": 4.89, "deprecated": false, "requires_paid_plan": false, "gateway_available": true, "geo_region": "eu"}]}),
        ),
        (
            "GET",
            "/v1/tokens/current".into(),
            200,
            json!({"tokens": [{"org_slug": "personal", "apps": [], "user": "dev@example.org", "token_id": "tok_1"}]}),
        ),
        (
            "GET",
            "/api/v1/apps/my-app/logs".into(),
            200,
            json!({"data": [{"id": "l1", "attributes": {"timestamp": "2025-03-02T10:00:00Z", "message": "listening", "level": "info", "instance": "3d8d9e2fa61e48", "region": "ams", "meta": {"event": {"provider": "app"}}}}], "meta": {"next_token": "1740910000000000000"}}),
        ),
        (
            "POST",
            "/graphql".into(),
            200,
            json!({"data": null, "errors": [{"message": "not found", "path": ["app"], "extensions": {"code": "NOT_FOUND"}}]}),
        ),
        // Error bodies.
        (
            "GET",
            "/v1/apps/nope".into(),
            404,
            json!({"error": "app not found"}),
        ),
        (
            "POST",
            "/v1/apps".into(),
            422,
            json!({"error": "Validation failed: Name has already been taken", "status": "name_taken"}),
        ),
        (
            "GET",
            "/v1/tokens/current".into(),
            401,
            json!({"error": "Authenticate: token validation error"}),
        ),
        (
            "POST",
            format!("{m}/lease"),
            409,
            json!({"error": "aborted: machine ID 3d8d9e2fa61e48 lease currently held by dev@example.org, expires at 2025-03-02T10:20:00Z"}),
        ),
        (
            "GET",
            m.into(),
            503,
            json!({"error": "service unavailable"}),
        ),
    ];
    for (method, path, status, body) in cases {
        let v = resp_ok(&s, method, &path, status, &body);
        assert!(v.is_empty(), "{method} {path} {status}: {v:#?}");
    }
    // Empty bodies where none is documented.
    for (method, path, status) in [
        ("DELETE", "/v1/apps/my-app", 202),
        ("DELETE", "/v1/apps/my-app/ip_assignments/66.241.0.10", 204),
        (
            "PATCH",
            "/v1/apps/my-app/machines/3d8d9e2fa61e48/metadata",
            204,
        ),
        (
            "DELETE",
            "/v1/apps/my-app/certificates/dev.example.org",
            204,
        ),
    ] {
        let v = s.validate_response(
            &CapturedRequest::new(method, path),
            &CapturedResponse::empty(status),
        );
        assert!(v.is_empty(), "{method} {path} {status}: {v:#?}");
    }
}

#[test]
fn response_departures_are_reported_with_their_place() {
    let s = spec();
    let m = "/v1/apps/my-app/machines/3d8d9e2fa61e48";

    let mut bad = machine_body();
    bad["instance_id"] = json!(7);
    let v = resp_ok(&s, "GET", m, 200, &bad);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].operation, "Machines_show");
    assert_eq!(v[0].status, Some(200));
    assert!(v[0].location.ends_with("/instance_id"), "{}", v[0]);

    let mut bad = machine_body();
    bad["config"]["guest"]["memoryMb"] = json!(256);
    let v = resp_ok(&s, "GET", m, 200, &bad);
    assert!(
        v.iter()
            .any(|v| v.location.contains("/config/guest") && v.message.contains("memoryMb")),
        "{v:#?}"
    );

    let mut bad = machine_body();
    bad["region"] = Value::Null;
    assert!(
        !resp_ok(&s, "GET", m, 200, &bad).is_empty(),
        "null where not nullable"
    );

    let mut bad = machine_body();
    bad["config"]["services"][0]["autostop"] = json!("sometimes");
    assert!(!resp_ok(&s, "GET", m, 200, &bad).is_empty(), "enum");

    let v = resp_ok(
        &s,
        "POST",
        "/v1/apps",
        422,
        &json!({"error": "x", "status": "taken"}),
    );
    assert!(
        v.iter().any(|v| v.location == "response.body/status"),
        "{v:#?}"
    );

    let v = resp_ok(
        &s,
        "GET",
        "/v1/apps/my-app",
        418,
        &json!({"error": "teapot"}),
    );
    assert!(v[0].message.contains("status 418 not documented"), "{v:#?}");

    let v = resp_ok(
        &s,
        "DELETE",
        "/v1/apps/my-app/ip_assignments/1.2.3.4",
        204,
        &json!({"ok": true}),
    );
    assert!(v[0].message.contains("body not documented"), "{v:#?}");

    let v = s.validate_response(
        &CapturedRequest::new("GET", m),
        &CapturedResponse::empty(200),
    );
    assert!(v[0].message.contains("documented body missing"), "{v:#?}");

    let text = CapturedResponse {
        status: 404,
        content_type: Some("text/plain".into()),
        body: b"404 page not found".to_vec(),
    };
    let v = s.validate_response(&CapturedRequest::new("GET", m), &text);
    assert!(v[0].message.contains("content type `text/plain`"), "{v:#?}");

    let garbled = CapturedResponse {
        status: 200,
        content_type: Some("application/json; charset=utf-8".into()),
        body: b"{nope".to_vec(),
    };
    let v = s.validate_response(&CapturedRequest::new("GET", m), &garbled);
    assert!(v[0].message.contains("not JSON"), "{v:#?}");

    let v = resp_ok(
        &s,
        "POST",
        &format!("{m}/lease"),
        201,
        &json!({"status": "success", "data": {"nonce": 5}}),
    );
    assert!(!v.is_empty(), "a wrapped lease still has typed fields");
}

#[test]
fn requests_are_checked_against_parameters_and_bodies() {
    let s = spec();
    let m = "/v1/apps/my-app/machines/3d8d9e2fa61e48";
    let ok = [
        CapturedRequest::new("GET", "/v1/apps?org_slug=personal&limit=50&cursor=abc"),
        CapturedRequest::new("GET", "/v1/apps/my-app/machines?state=started,stopped&region=ams&summary=true&metadata.role=web&metadata.owner=dev&include_leases=true"),
        CapturedRequest::new("GET", &format!("{m}/wait?state=started&timeout=60&version=01JB3V9S1QK0V7J8ZP3T6W2M4N&from_event_id=01JB3V9W8M2D5X0C6R1N7Q4T9E")),
        CapturedRequest::new("GET", &format!("{m}/wait?state=stopped,suspended&state=destroyed")),
        CapturedRequest::new("DELETE", &format!("{m}?force=true")).header("fly-machine-lease-nonce", "a1b2"),
        CapturedRequest::new("POST", &format!("{m}/restart?signal=SIGTERM&timeout=10s")),
        CapturedRequest::new("POST", &format!("{m}/start")),
        CapturedRequest::new("POST", &format!("{m}/stop")),
        CapturedRequest::new("POST", &format!("{m}/stop")).json(&json!({"signal": "SIGINT", "timeout": "30s"})),
        CapturedRequest::new("POST", &format!("{m}/lease")).json(&json!({"ttl": 30, "description": "rolling update"})),
        CapturedRequest::new("POST", &format!("{m}/lease?ttl=30")),
        CapturedRequest::new("DELETE", &format!("{m}/lease")).header("Fly-Machine-Lease-Nonce", "a1b2"),
        CapturedRequest::new("PATCH", &format!("{m}/metadata")).json(&json!({"metadata": {"role": "web", "old": null, "gone": ""}, "machine_version": "01JB3V9S1QK0V7J8ZP3T6W2M4N"})),
        CapturedRequest::new("POST", &format!("{m}/exec")).json(&json!({"command": ["ls", "-la"], "timeout": 10})),
        CapturedRequest::new("POST", &format!("{m}/exec")).json(&json!({"cmd": "ls -la"})),
        CapturedRequest::new("POST", "/v1/apps/my-app/machines").json(&json!({
            "name": "web-1", "region": "ams", "skip_launch": false, "lease_ttl": 30, "min_secrets_version": 4,
            "config": machine_body()["config"].clone()
        })),
        CapturedRequest::new("POST", m).json(&json!({"config": {"image": "nginx:1.28"}, "current_version": "01JB3V9S1QK0V7J8ZP3T6W2M4N"})),
        CapturedRequest::new("POST", "/v1/apps").json(&json!({"name": "my-app", "org_slug": "personal", "idempotency_key": "k-1"})),
        CapturedRequest::new("POST", "/v1/apps/my-app/volumes").json(&json!({"name": "data", "region": "ams", "size_gb": 3, "snapshot_id": "vs_Zx81Qa2Lm7Rt0Pw"})),
        CapturedRequest::new("POST", "/v1/apps/my-app/secrets").json(&json!({"values": {"A": "1", "B": null}})),
        CapturedRequest::new("POST", "/v1/apps/my-app/ip_assignments").json(&json!({"type": "shared_v4"})),
        CapturedRequest::new("GET", "/api/v1/apps/my-app/logs?next_token=1740910000000000000&instance=3d8d9e2fa61e48&region=ams"),
        CapturedRequest::new("POST", "/graphql").json(&json!({"query": "query { viewer { id } }", "variables": {}})),
    ];
    for req in ok {
        let v = s.validate_request(&req);
        assert!(v.is_empty(), "{} {}: {v:#?}", req.method, req.path);
    }

    let bad: Vec<(CapturedRequest, &str)> = vec![
        (
            CapturedRequest::new("DELETE", &format!("{m}?nuke=true")),
            "request.query.nuke: query parameter not documented",
        ),
        (
            CapturedRequest::new("GET", "/v1/apps"),
            "request.query.org_slug: required query parameter missing",
        ),
        (
            CapturedRequest::new("GET", "/v1/apps?org_slug=a&org_slug=b"),
            "given 2 times",
        ),
        (
            CapturedRequest::new("GET", "/v1/apps?org_slug=a&limit=ten"),
            "not an integer",
        ),
        (
            CapturedRequest::new("GET", "/v1/apps/my-app/machines?summary=yes"),
            "not `true` or `false`",
        ),
        (
            CapturedRequest::new("GET", &format!("{m}/wait?state=started,running")),
            "request.query.state",
        ),
        (
            CapturedRequest::new("GET", "/v1/apps/my-app/machines?metadata.=x"),
            "query parameter not documented",
        ),
        (
            CapturedRequest::new("POST", &format!("{m}/restart?signal=SIGSTOP")),
            "request.query.signal",
        ),
        (
            CapturedRequest::new("DELETE", &format!("{m}/lease")),
            "request.header.fly-machine-lease-nonce: required header missing",
        ),
        (
            CapturedRequest::new("POST", "/v1/apps"),
            "required request body missing",
        ),
        (
            CapturedRequest::new("POST", &format!("{m}/start")).json(&json!({})),
            "request body not documented",
        ),
        (
            CapturedRequest::new("POST", &format!("{m}/signal"))
                .json(&json!({"signal": "SIGSTOP"})),
            "request.body/signal",
        ),
        (
            CapturedRequest::new("POST", "/v1/apps")
                .json(&json!({"app_name": "x", "org_slug": "personal"})),
            "app_name",
        ),
        (
            CapturedRequest::new("POST", "/v1/apps/my-app/machines")
                .json(&json!({"config": {"guest": {"cpus": "1"}}})),
            "request.body/config/guest/cpus",
        ),
        (
            CapturedRequest::new("POST", "/v1/apps/my-app/volumes")
                .json(&json!({"name": "d", "size_gb": 1.5})),
            "request.body/size_gb",
        ),
        (
            CapturedRequest {
                body: b"{}".to_vec(),
                ..CapturedRequest::new("POST", "/v1/apps").header("content-type", "text/plain")
            },
            "content type `text/plain` not documented",
        ),
        (
            CapturedRequest::new("GET", "/v2/apps"),
            "no documented path",
        ),
    ];
    for (req, want) in bad {
        let v = s.validate_request(&req);
        let text: Vec<String> = v
            .iter()
            .map(|v| format!("{}: {}", v.location, v.message))
            .collect();
        assert!(
            text.iter().any(|t| t.contains(want)),
            "{} {} {:?}: want `{want}` in {text:#?}",
            req.method,
            req.path,
            req.query
        );
    }
}

fn violation(op: &str, status: Option<u16>, location: &str, message: &str) -> Violation {
    Violation {
        operation: op.into(),
        status,
        location: location.into(),
        message: message.into(),
    }
}

fn divergence(side: Side, op: &str, status: Option<u16>, contains: &str) -> Divergence {
    Divergence {
        side,
        operation: op.into(),
        status,
        contains: contains.into(),
        reason: "test".into(),
    }
}

#[test]
fn divergence_list_is_held_exactly() {
    let list = vec![
        divergence(Side::Sim, "Machines_start", Some(200), "previous_state"),
        divergence(Side::Sim, "Apps_show", None, "status 403"),
        divergence(Side::Client, "Machines_delete", None, "query.kill"),
    ];
    let sim_violations = vec![
        violation(
            "Machines_start",
            Some(200),
            "response.body",
            "\"previous_state\" is a required property",
        ),
        violation(
            "Machines_stop",
            Some(200),
            "response.body",
            "body not documented",
        ),
    ];
    let r = divergences::reconcile(Side::Sim, &list, &sim_violations);
    assert!(!r.is_clean());
    assert_eq!(r.unexpected, vec![sim_violations[1].clone()]);
    assert_eq!(
        r.stale.len(),
        1,
        "the Apps_show divergence no longer happens"
    );
    assert_eq!(r.stale[0].operation, "Apps_show");
    assert!(r.report().contains("Machines_stop"));
    assert!(r.report().contains("no longer happen"));

    // The status must match when given; client entries are not judged on a sim run.
    let wrong_status = vec![violation(
        "Machines_start",
        Some(201),
        "response.body",
        "previous_state",
    )];
    let r = divergences::reconcile(Side::Sim, &list[..1], &wrong_status);
    assert_eq!(r.unexpected.len(), 1);
    let r = divergences::reconcile(Side::Sim, &list[2..], &[]);
    assert!(r.is_clean(), "{}", r.report());
    let r = divergences::reconcile(
        Side::Client,
        &list[2..],
        &[violation(
            "Machines_delete",
            None,
            "request.query.kill",
            "query parameter not documented",
        )],
    );
    assert!(r.is_clean(), "{}", r.report());
}

#[test]
fn the_committed_divergence_list_parses() {
    let list = divergences::load(&divergences::divergences_path()).unwrap();
    let ids = spec().operation_ids();
    for d in &list {
        assert!(
            ids.contains(&d.operation),
            "divergence names unknown operation {}",
            d.operation
        );
    }
}

/// Every simulator rule that is not known to be Fly's is listed with what Fly does, what
/// the simulator does and why (issue 18: the simulator only ever gets stricter, and
/// where it must guess, the guess is written down).
#[test]
fn the_simulator_rules_that_differ_from_fly_are_listed_with_reasons() {
    let rules = divergences::load_simulator_rules(&divergences::divergences_path()).unwrap();
    let names: Vec<&str> = rules.iter().map(|r| r.rule.as_str()).collect();
    for expected in [
        "new app hidden",
        "secrets propagation",
        "volume destroy states",
        "idempotency key lifetime",
        "idempotency key with another name",
        "volume name in mounts",
        "organizations for an app-scoped token",
        "token action of lease release and metadata key delete",
        "expired token refused with 403",
        "caveats on platform requests",
        "GraphQL IP mutations as token actions",
        "lease release answers",
        "lease refresh after expiry",
        "full region",
        "capacity failures on demand",
        "status codes of refused machine actions",
        "mount and volume refusals",
        "guest validation",
        "rate-limit answer",
        "transition durations",
        "unhealthy image convention",
        "injected faults",
        "app create refusals",
        "unique zones never run out",
        "extend needs_restart",
        "certificate issuance",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}
