use fly_machines_mcp::fly::{CreateVolume, UpdateVolume};
use serde_json::json;
use wiremock::matchers::{body_json, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

use super::{fixture, stub};

const V: &str = "/v1/apps/web/volumes";

#[tokio::test]
async fn list_get_and_paging() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path(V))
        .and(query_param_is_missing("cursor"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("fly-next-cursor", "v2")
                .set_body_json(json!([fixture("volume.json")])),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(V))
        .and(query_param("cursor", "v2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{"id": "vol_2", "attached_machine_id": "m1", "size_gb": 1}])),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/vol_2")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "vol_2", "attached_machine_id": "m1", "size_gb": 1})),
        )
        .mount(&server)
        .await;
    let vols = client.list_volumes("web").await.unwrap();
    assert_eq!(vols.len(), 2);
    assert!(!vols[0].is_attached());
    assert_eq!(vols[0].auto_backup_enabled, Some(true));
    assert!(
        client
            .get_volume("web", "vol_2")
            .await
            .unwrap()
            .is_attached()
    );
}

#[tokio::test]
async fn create_restore_fork_update_extend_destroy() {
    let (server, client) = stub().await;
    Mock::given(method("POST"))
        .and(path(V))
        .and(body_json(
            json!({"name": "data", "region": "iad", "size_gb": 3, "require_unique_zone": false}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("volume.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(V))
        .and(body_json(
            json!({"name": "data", "region": "iad", "snapshot_id": "vs_1"}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "vol_r", "state": "restoring"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(V))
        .and(body_json(
            json!({"name": "data", "region": "ord", "source_volume_id": "vol_4x2k9m1p0q8r7s6t"}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "vol_f", "region": "ord"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("{V}/vol_1")))
        .and(body_json(json!({"snapshot_retention": 14})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "vol_1", "snapshot_retention": 14})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("{V}/vol_1/extend")))
        .and(body_json(json!({"size_gb": 10})))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"volume": {"id": "vol_1", "size_gb": 10}, "needs_restart": true}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{V}/vol_1")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "vol_1", "state": "destroyed"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let base = CreateVolume {
        name: "data".into(),
        region: "iad".into(),
        ..CreateVolume::default()
    };
    let v = client
        .create_volume(
            "web",
            &CreateVolume {
                size_gb: Some(3),
                require_unique_zone: Some(false),
                ..base.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(v.zone, "b7c2");
    let r = client
        .create_volume(
            "web",
            &CreateVolume {
                snapshot_id: Some("vs_1".into()),
                ..base.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(r.state, "restoring");
    let f = client
        .create_volume(
            "web",
            &CreateVolume {
                region: "ord".into(),
                source_volume_id: Some(v.id.clone()),
                ..base.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(f.region, "ord");
    client
        .update_volume(
            "web",
            "vol_1",
            &UpdateVolume {
                snapshot_retention: Some(14),
                ..UpdateVolume::default()
            },
        )
        .await
        .unwrap();
    let ext = client.extend_volume("web", "vol_1", 10).await.unwrap();
    assert!(ext.needs_restart);
    assert_eq!(ext.volume.size_gb, 10);
    assert_eq!(
        client.destroy_volume("web", "vol_1").await.unwrap().state,
        "destroyed"
    );
}

#[tokio::test]
async fn bad_volume_input_is_named_and_attached_destroy_surfaces_api_message() {
    let (server, client) = stub().await;
    let err = client
        .create_volume(
            "web",
            &CreateVolume {
                name: "data".into(),
                region: "iad".into(),
                ..CreateVolume::default()
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("invalid size_gb:"), "{err}");
    let err = client
        .update_volume(
            "web",
            "vol_1",
            &UpdateVolume {
                snapshot_retention: Some(90),
                ..UpdateVolume::default()
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("between 1 and 60"), "{err}");
    Mock::given(method("DELETE"))
        .and(path(format!("{V}/vol_att")))
        .respond_with(ResponseTemplate::new(412).set_body_json(
            json!({"error": "volume is attached to machine m1; destroy the machine first"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = client.destroy_volume("web", "vol_att").await.unwrap_err();
    assert!(err.to_string().contains("attached to machine m1"), "{err}");
}

#[tokio::test]
async fn snapshots_list_and_create() {
    let (server, client) = stub().await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/vol_1/snapshots")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": "vs_a", "size": 36007729, "digest": "d1", "created_at": "2026-04-30T21:00:35+00:00", "retention_days": 5},
            {"id": "vs_b", "size": 1, "digest": "d2", "created_at": "2026-05-01T21:00:35+00:00", "retention_days": 5, "status": "created", "volume_size": 3221225472_u64}])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{V}/vol_1/snapshots")))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let snaps = client.list_snapshots("web", "vol_1").await.unwrap();
    assert_eq!(snaps[1].volume_size, Some(3221225472));
    client.create_snapshot("web", "vol_1").await.unwrap();
}
