//! The client against the in-process simulator: two independent sets of wire
//! types must agree on every call a workflow makes.

use std::collections::BTreeMap;
use std::time::Duration;

use fly_machines_mcp::fly::{
    Client, CreateApp, CreateMachine, CreateVolume, GuestConfig, IpType, LogQuery, MachineConfig,
    MachineFilter, MachineState, Mount, StopOptions, WaitTarget,
};
use fly_machines_mcp::sim::Scenario;
use secrecy::SecretString;

use crate::support::{TestEnv, TestEnvBuilder};

/// The token the bare clients send (the simulator here requires none).
const TOKEN: &str = "fm2_sim-token";

/// The simulator of `env` and a bare client of it: the client's own wire types, no
/// attenuation by the test harness.
async fn sim_client(env: TestEnvBuilder) -> (TestEnv, Client) {
    let env = env.start().await;
    let client = env.bare_client(Some(TOKEN));
    (env, client)
}

#[tokio::test]
async fn provision_like_flow_round_trips() {
    let (env, client) = sim_client(TestEnv::sim_only()).await;
    let orgs = client.organizations().await.unwrap();
    let org = orgs
        .iter()
        .find(|o| o.kind.as_deref() == Some("PERSONAL"))
        .unwrap()
        .slug
        .clone();
    client
        .create_app(&CreateApp {
            name: "dev-alice".into(),
            org_slug: org.clone(),
            ..CreateApp::default()
        })
        .await
        .unwrap();
    assert_eq!(client.get_app("dev-alice").await.unwrap().name, "dev-alice");
    assert!(
        client
            .list_apps(&org)
            .await
            .unwrap()
            .iter()
            .any(|a| a.name == "dev-alice")
    );

    let ip = client
        .gql_allocate_ip("dev-alice", IpType::SharedV4, None)
        .await
        .unwrap();
    assert!(ip.ip.is_some());
    let vol = client
        .create_volume(
            "dev-alice",
            &CreateVolume {
                name: "data".into(),
                region: "iad".into(),
                size_gb: Some(1),
                ..CreateVolume::default()
            },
        )
        .await
        .unwrap();

    let mut changes = BTreeMap::new();
    changes.insert("API_KEY".to_owned(), Some(SecretString::from("value")));
    let secrets = client.update_secrets("dev-alice", &changes).await.unwrap();

    let mut config = MachineConfig {
        image: "nginx:1.27".into(),
        guest: Some(GuestConfig {
            cpu_kind: "shared".into(),
            cpus: 1,
            memory_mb: 256,
            ..GuestConfig::default()
        }),
        mounts: vec![Mount {
            volume: vol.id.clone(),
            path: "/data".into(),
            ..Mount::default()
        }],
        ..MachineConfig::default()
    };
    config.metadata.insert("owner".into(), "alice".into());
    let body = CreateMachine {
        config,
        region: Some("iad".into()),
        min_secrets_version: Some(secrets.version),
        ..CreateMachine::default()
    };
    let m = client
        .create_machine_idempotent("dev-alice", &body, "k-1")
        .await
        .unwrap();
    let out = client
        .wait_for_state(
            "dev-alice",
            &m.id,
            &[WaitTarget::Started],
            Some(&m.version),
            None,
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(out.state, Some(MachineState::Started));
    let again = client
        .create_machine_idempotent("dev-alice", &body, "k-1")
        .await
        .unwrap();
    assert_eq!(again.id, m.id, "re-running converges");

    let owned = client
        .list_machines(
            "dev-alice",
            &MachineFilter {
                metadata: vec![("owner".into(), "alice".into())],
                ..MachineFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(owned.len(), 1);

    let lease = client
        .acquire_lease("dev-alice", &m.id, 30, "test")
        .await
        .unwrap();
    let nonce = lease.nonce.clone().unwrap();
    client
        .stop_machine("dev-alice", &m.id, &StopOptions::default(), Some(&nonce))
        .await
        .unwrap();
    client
        .wait_for_state(
            "dev-alice",
            &m.id,
            &[WaitTarget::Stopped],
            None,
            None,
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    client
        .release_lease("dev-alice", &m.id, &nonce)
        .await
        .unwrap();

    let events = client.machine_events("dev-alice", &m.id, 10).await.unwrap();
    assert!(!events.is_empty());
    client
        .destroy_machine("dev-alice", &m.id, true, None)
        .await
        .unwrap();
    client.delete_app("dev-alice", true).await.unwrap();
    assert!(
        client
            .get_app("dev-alice")
            .await
            .unwrap_err()
            .is_not_found()
    );
    env.shutdown().await;
}

#[tokio::test]
async fn demo_scenario_reads_decode() {
    let (env, client) = sim_client(TestEnv::sim_only().scenario(Scenario::Demo)).await;
    let machines = client
        .list_machines("cdn-demo", &MachineFilter::default())
        .await
        .unwrap();
    assert!(machines.len() >= 10);
    let oom = machines
        .iter()
        .flat_map(|m| &m.events)
        .filter_map(|e| e.exit_event.as_ref())
        .any(|x| x.oom_killed);
    assert!(oom, "the demo has OOM-killed exits");
    assert!(
        machines
            .iter()
            .flat_map(|m| &m.checks)
            .any(|c| c.status == "critical")
    );
    let logs = client
        .app_logs("cdn-demo", &LogQuery::default())
        .await
        .unwrap();
    assert!(!logs.entries.is_empty());
    assert!(!client.vm_sizes().await.unwrap().is_empty());
    assert!(!client.list_regions().await.unwrap().is_empty());
    client.current_token().await.unwrap();
    client.app_ip_addresses("cdn-demo").await.unwrap();
    client.list_volumes("cdn-demo").await.unwrap();
    client.list_certificates("cdn-demo").await.unwrap();
    client.list_secrets("cdn-demo").await.unwrap();
    client.list_ip_assignments("cdn-demo").await.unwrap();
    env.shutdown().await;
}

#[tokio::test]
async fn pacing_keeps_a_burst_under_the_simulators_rate_limits() {
    let (env, client) = sim_client(
        TestEnv::sim_only()
            .scenario(Scenario::Demo)
            .rate_limits()
            .time_scale(1.0),
    )
    .await;
    let mut cfg = env.bare_config(Some(TOKEN));
    cfg.pacing = true;
    cfg.retry = fly_machines_mcp::fly::RetryPolicy::none();
    let paced = Client::new(cfg).unwrap();
    let id = client
        .list_machines("cdn-demo", &MachineFilter::default())
        .await
        .unwrap()[0]
        .id
        .clone();
    // 14 Get Machine calls at once (above the burst of 10, so four must queue)
    // and 5 events calls (1/s, burst 3). No retries: any 429 fails the test.
    let started = std::time::Instant::now();
    let gets = futures::future::join_all((0..14).map(|_| paced.get_machine("cdn-demo", &id)));
    let events =
        futures::future::join_all((0..5).map(|_| paced.machine_events("cdn-demo", &id, 5)));
    let (gets, events) = futures::join!(gets, events);
    for r in gets
        .into_iter()
        .chain(events.into_iter().map(|r| r.map(|_| Default::default())))
    {
        r.unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the burst was queued"
    );
    env.shutdown().await;
}
