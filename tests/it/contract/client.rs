//! Client contract test: every `fly::Client` REST method (plus logs and the GraphQL
//! envelope) runs against the simulator through a recording proxy; each request exactly
//! as it went over the wire is validated against `openapi/machines.yaml`, and the
//! violations are held to `openapi/divergences.yaml` (side `client`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use secrecy::SecretString;

use fly_machines_mcp::fly::{
    AllocateIp, Client, CreateApp, CreateMachine, CreateVolume, ExecRequest, IpType, LogQuery,
    MachineFilter, RestartOptions, StopOptions, Token, UpdateMachine, UpdateVolume, WaitParams,
    WaitTarget,
};
use fly_machines_mcp::fly::{GuestConfig, MachineConfig, Mount};

use super::divergences::{self, Side};
use super::openapi::Spec;
use crate::support::TestEnv;

const APP: &str = "contract-client";

/// Operations the client has no method for (documented for the simulator's sake).
const NOT_CALLED_BY_CLIENT: &[&str] = &[
    "Machines_get_metadata_key",
    "Machines_upsert_metadata",
    "Machines_delete_metadata",
];

async fn wait(c: &Client, id: &str, target: WaitTarget) {
    c.wait_for_state(APP, id, &[target], None, None, Duration::from_secs(20))
        .await
        .unwrap();
}

#[tokio::test]
async fn every_client_request_matches_the_spec() {
    let spec = Spec::load().unwrap();
    let env = TestEnv::sim_only().proxy().start().await;
    let token = "contract-client-token";
    assert!(Token::parse(token).is_some());
    let c = env.bare_client(Some(token));

    // platform and identity
    c.current_token().await.unwrap();
    c.list_regions().await.unwrap();
    c.organizations().await.unwrap();
    c.vm_sizes().await.unwrap();

    // apps
    c.create_app(&CreateApp {
        name: APP.into(),
        org_slug: "personal".into(),
        idempotency_key: Some("contract-1".into()),
        ..CreateApp::default()
    })
    .await
    .unwrap();
    c.list_apps("personal").await.unwrap();
    c.get_app(APP).await.unwrap();

    // IPs: REST and GraphQL
    let v6 = c
        .allocate_ip_assignment(APP, &AllocateIp::new(IpType::V6))
        .await
        .unwrap();
    c.allocate_ip_assignment(APP, &AllocateIp::new(IpType::SharedV4))
        .await
        .unwrap();
    c.list_ip_assignments(APP).await.unwrap();
    let gql_v6 = c.gql_allocate_ip(APP, IpType::V6, None).await.unwrap();
    c.app_ip_addresses(APP).await.unwrap();
    if let Some(ip) = gql_v6.ip.as_deref() {
        c.gql_release_ip(APP, ip).await.unwrap();
    }

    // volumes
    let vol = c
        .create_volume(
            APP,
            &CreateVolume {
                name: "data".into(),
                region: "ams".into(),
                size_gb: Some(1),
                ..CreateVolume::default()
            },
        )
        .await
        .unwrap();
    c.list_volumes(APP).await.unwrap();
    c.get_volume(APP, &vol.id).await.unwrap();
    c.update_volume(
        APP,
        &vol.id,
        &UpdateVolume {
            snapshot_retention: Some(7),
            ..UpdateVolume::default()
        },
    )
    .await
    .unwrap();
    c.extend_volume(APP, &vol.id, 2).await.unwrap();
    c.create_snapshot(APP, &vol.id).await.unwrap();
    let snaps = c.list_snapshots(APP, &vol.id).await.unwrap();
    let restored = c
        .create_volume(
            APP,
            &CreateVolume {
                name: "restored".into(),
                region: "ams".into(),
                size_gb: Some(2),
                snapshot_id: snaps.first().map(|s| s.id.clone()),
                ..CreateVolume::default()
            },
        )
        .await
        .unwrap();

    // machines
    let config = MachineConfig {
        image: "docker.io/library/nginx:1.27".into(),
        guest: Some(GuestConfig {
            cpu_kind: "shared".into(),
            cpus: 1,
            memory_mb: 256,
            ..GuestConfig::default()
        }),
        env: BTreeMap::from([("MODE".into(), "contract".into())]),
        mounts: vec![Mount {
            volume: vol.id.clone(),
            path: "/data".into(),
            ..Mount::default()
        }],
        ..MachineConfig::default()
    };
    let m = c
        .create_machine(
            APP,
            &CreateMachine {
                config: config.clone(),
                name: Some("web-1".into()),
                region: Some("ams".into()),
                ..CreateMachine::default()
            },
        )
        .await
        .unwrap();
    wait(&c, &m.id, WaitTarget::Started).await;
    let other = c
        .create_machine_idempotent(
            APP,
            &CreateMachine {
                config: MachineConfig {
                    image: "busybox".into(),
                    ..MachineConfig::default()
                },
                region: Some("ams".into()),
                skip_launch: Some(true),
                ..CreateMachine::default()
            },
            "contract-key-1",
        )
        .await
        .unwrap();
    c.list_machines(
        APP,
        &MachineFilter {
            region: Some("ams".into()),
            summary: true,
            metadata: vec![("fly_mcp_idempotency_key".into(), "contract-key-1".into())],
            include_leases: true,
            ..MachineFilter::default()
        },
    )
    .await
    .unwrap();
    c.list_machines(APP, &MachineFilter::default())
        .await
        .unwrap();
    c.get_machine(APP, &m.id).await.unwrap();
    c.get_machine_with_lease(APP, &m.id).await.unwrap();

    c.stop_machine(
        APP,
        &m.id,
        &StopOptions {
            signal: Some("SIGTERM".into()),
            timeout: Some(Duration::from_secs(5)),
        },
        None,
    )
    .await
    .unwrap();
    wait(&c, &m.id, WaitTarget::Stopped).await;
    c.start_machine(APP, &m.id, None).await.unwrap();
    wait(&c, &m.id, WaitTarget::Started).await;
    c.suspend_machine(APP, &m.id, None).await.unwrap();
    wait(&c, &m.id, WaitTarget::Suspended).await;
    c.start_machine(APP, &m.id, None).await.unwrap();
    wait(&c, &m.id, WaitTarget::Started).await;
    c.restart_machine(
        APP,
        &m.id,
        &RestartOptions {
            signal: Some("SIGTERM".into()),
            timeout: Some(Duration::from_secs(5)),
        },
        None,
    )
    .await
    .unwrap();
    wait(&c, &m.id, WaitTarget::Started).await;
    c.signal_machine(APP, &m.id, "SIGUSR1", None).await.unwrap();
    c.cordon_machine(APP, &m.id, None).await.unwrap();
    c.uncordon_machine(APP, &m.id, None).await.unwrap();
    c.machine_events(APP, &m.id, 10).await.unwrap();
    c.machine_versions(APP, &m.id).await.unwrap();
    c.machine_ps(APP, &m.id).await.unwrap();
    c.exec(
        APP,
        &m.id,
        &ExecRequest {
            command: vec!["echo".into(), "hi".into()],
            timeout: Duration::from_secs(5),
            ..ExecRequest::default()
        },
    )
    .await
    .unwrap();
    c.wait_once(
        APP,
        &m.id,
        &WaitParams {
            states: vec![WaitTarget::Settled],
            timeout: Duration::from_secs(5),
            version: None,
            from_event_id: None,
        },
    )
    .await
    .unwrap();

    // leases, metadata and update under the lease
    let lease = c
        .acquire_lease(APP, &m.id, 600, "contract tour")
        .await
        .unwrap();
    let nonce = lease.nonce.clone().unwrap();
    c.get_lease(APP, &m.id).await.unwrap();
    c.refresh_lease(APP, &m.id, &nonce, 600).await.unwrap();
    c.get_metadata(APP, &m.id).await.unwrap();
    let current = c.get_machine(APP, &m.id).await.unwrap();
    c.patch_metadata(
        APP,
        &m.id,
        &BTreeMap::from([
            ("role".to_owned(), Some("web".to_owned())),
            ("gone".to_owned(), None),
        ]),
        Some(&current.version),
        Some(&nonce),
    )
    .await
    .unwrap();
    let current = c.get_machine(APP, &m.id).await.unwrap();
    let mut updated = config.clone();
    updated.env.insert("MODE".into(), "updated".into());
    c.update_machine(
        APP,
        &m.id,
        &UpdateMachine {
            config: updated,
            current_version: Some(current.version.clone()),
            ..UpdateMachine::default()
        },
        Some(&nonce),
    )
    .await
    .unwrap();
    wait(&c, &m.id, WaitTarget::Started).await;
    c.release_lease(APP, &m.id, &nonce).await.unwrap();

    // secrets
    c.update_secrets(
        APP,
        &BTreeMap::from([
            ("API_KEY".to_owned(), Some(SecretString::from("s3cr3t"))),
            ("OLD".to_owned(), None),
        ]),
    )
    .await
    .unwrap();
    c.list_secrets(APP).await.unwrap();

    // certificates
    let host = "client.example.org";
    c.add_acme_certificate(APP, host).await.unwrap();
    c.list_certificates(APP).await.unwrap();
    c.get_certificate(APP, host).await.unwrap();
    c.check_certificate(APP, host).await.unwrap();
    c.remove_certificate(APP, host).await.unwrap();

    // logs
    c.app_logs(APP, &LogQuery::default()).await.unwrap();
    c.app_logs(
        APP,
        &LogQuery {
            next_token: Some("0".into()),
            instance: Some(m.id.clone()),
            region: Some("ams".into()),
        },
    )
    .await
    .unwrap();

    // teardown
    c.destroy_machine(APP, &m.id, true, None).await.unwrap();
    c.destroy_machine(APP, &other.id, true, None).await.unwrap();
    wait(&c, &m.id, WaitTarget::Destroyed).await;
    c.destroy_volume(APP, &restored.id).await.unwrap();
    c.destroy_volume(APP, &vol.id).await.unwrap();
    if let Some(ip) = v6.ip.as_deref() {
        c.release_ip_assignment(APP, ip).await.unwrap();
    }
    c.delete_app(APP, true).await.unwrap();

    drop(c);
    let proxy = env.proxy();

    // Every operation the client can call was called.
    let exercised: BTreeSet<String> = proxy
        .log
        .exercised(&spec)
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    let missing: Vec<String> = spec
        .operation_ids()
        .into_iter()
        .filter(|o| !exercised.contains(o) && !NOT_CALLED_BY_CLIENT.contains(&o.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "operations the client run never reached: {missing:?}"
    );

    let violations = proxy.log.request_violations(&spec);
    let list = divergences::load(&divergences::divergences_path()).unwrap();
    let reconciled = divergences::reconcile(Side::Client, &list, &violations);
    assert!(reconciled.is_clean(), "{}", reconciled.report());
}
