//! The provision itself: the numbered steps, the ledger of what this call created,
//! and the rollback.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::fly;
use crate::workflows::cleanup::{
    delete_app_fully, destroy_machine_fully, destroy_volume_retrying, release_ip,
};
use crate::workflows::sched::Control;
use crate::workflows::{self, Error, OWNER_METADATA_KEY, OWNER_METADATA_VALUE};

use super::plan::{existing_ips, existing_volume};
use super::{EnvSpec, Provisioned, Resource, VolumeSpec, machine_config, resolve_guest};

/// The resources this call created, in creation order. Parallel steps push into it
/// as soon as something exists, so a failure in one branch still sees the other's.
#[derive(Debug, Default)]
struct Ledger(Mutex<Vec<Resource>>);

impl Ledger {
    fn push(&self, r: Resource) {
        match self.0.lock() {
            Ok(mut v) => v.push(r),
            Err(poisoned) => poisoned.into_inner().push(r),
        }
    }

    fn take(&self) -> Vec<Resource> {
        match self.0.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

/// A provision that failed part-way: what failed, what this call had created, what
/// was undone and what is left.
#[derive(Debug)]
pub struct ProvisionFailure {
    pub step: String,
    pub error: Error,
    pub created: Vec<Resource>,
    pub rolled_back: Vec<Resource>,
    /// Created by this call and still there (rollback off, or a rollback step failed).
    pub left: Vec<Resource>,
    pub rollback_errors: Vec<String>,
}

impl ProvisionFailure {
    /// The domain error the tool layer returns: the cause plus exactly what exists
    /// now and how to resume.
    pub fn into_error(self, app: &str, rollback: bool) -> Error {
        let list = |rs: &[Resource]| {
            if rs.is_empty() {
                "nothing".to_owned()
            } else {
                rs.iter()
                    .map(Resource::describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let mut report = String::new();
        if rollback {
            report.push_str(&format!("rolled back {}", list(&self.rolled_back)));
            if !self.left.is_empty() {
                report.push_str(&format!(
                    "; could not remove {} ({}); call teardown_environment for app {app} to remove them",
                    list(&self.left),
                    self.rollback_errors.join("; ")
                ));
            } else {
                report.push_str(" (only what this call created; nothing it created is left)");
            }
        } else {
            report.push_str(&format!(
                "left in place as asked (rollback: false): {}; to resume, call provision_environment again with the same arguments (it reuses what exists); to remove everything, call teardown_environment for app {app}",
                list(&self.left)
            ));
        }
        Error::Partial {
            step: self.step,
            report,
            source: Box::new(self.error),
        }
    }
}

/// Provisions the environment; on a failed step undoes what this call created
/// (unless `rollback` is false) and says what is left.
pub async fn provision_environment(
    client: &fly::Client,
    spec: &EnvSpec,
    rollback: bool,
    ctl: &Control,
) -> Result<Provisioned, ProvisionFailure> {
    let started = Instant::now();
    let ledger = Ledger::default();
    let mut reused = Vec::new();
    let outcome = provision_steps(client, spec, ctl, &ledger, &mut reused).await;
    match outcome {
        Ok(mut done) => {
            done.created = ledger.take();
            done.reused = reused;
            done.elapsed = started.elapsed();
            Ok(done)
        }
        Err((step, error)) => {
            let created = ledger.take();
            let (rolled_back, left, rollback_errors) = if rollback {
                ctl.progress.report(
                    0,
                    None,
                    format!("{step} failed; rolling back what this call created"),
                );
                undo(client, &spec.app, &created, spec.wait_timeout).await
            } else {
                (Vec::new(), created.clone(), Vec::new())
            };
            Err(ProvisionFailure {
                step,
                error,
                created,
                rolled_back,
                left,
                rollback_errors,
            })
        }
    }
}

const TOTAL_STEPS: u32 = 4;

async fn provision_steps(
    client: &fly::Client,
    spec: &EnvSpec,
    ctl: &Control,
    ledger: &Ledger,
    reused: &mut Vec<Resource>,
) -> Result<Provisioned, (String, Error)> {
    let at = |step: &str| {
        let step = step.to_owned();
        move |e: Error| (step, e)
    };
    let progress = &ctl.progress;

    // 1. The app.
    progress.report(0, Some(TOTAL_STEPS), format!("app {}", spec.app));
    ctl.guard("ensuring the app", ensure_app(client, spec, ledger, reused))
        .await
        .map_err(at("app"))?;
    // The version the secrets write answers goes on the machine create as
    // `min_secrets_version`, as flyctl does on every launch after a secrets write
    // (`internal/appsecrets/minvers.go`, `deploy/machines_launchinput.go`): without it
    // the machine may boot before its host has seen the new secrets.
    let mut secrets_version = None;
    if !spec.secrets.0.is_empty() {
        let changes = spec
            .secrets
            .0
            .iter()
            .map(|(name, value)| (name.clone(), Some(value.clone())))
            .collect();
        let written = ctl
            .guard("setting app secrets", async {
                client
                    .update_secrets(&spec.app, &changes)
                    .await
                    .map_err(Error::fly(format!("setting secrets of app {}", spec.app)))
            })
            .await
            .map_err(at("secrets"))?;
        secrets_version = Some(written.version).filter(|v| *v > 0);
    }
    let (guest, _) = ctl
        .guard("resolving the VM size", resolve_guest(client, &spec.guest))
        .await
        .map_err(at("guest size"))?;

    // 2. IPs and the volume, in parallel.
    progress.report(1, Some(TOTAL_STEPS), "IPs and volume");
    let ips_fut = async {
        if spec.public_ips {
            ctl.guard("allocating IPs", ensure_ips(client, &spec.app, ledger))
                .await
        } else {
            Ok(IpsOutcome::default())
        }
    };
    let vol_fut = async {
        match &spec.volume {
            Some(v) => ctl
                .guard(
                    "creating the volume",
                    ensure_volume(client, spec, v, ledger),
                )
                .await
                .map(Some),
            None => Ok(None),
        }
    };
    let (ips, vol) = futures::join!(ips_fut, vol_fut);
    let ips = ips.map_err(at("IPs"))?;
    let vol = vol.map_err(at("volume"))?;
    reused.extend(ips.reused.iter().cloned());
    let volume_id = match &vol {
        Some((v, created)) => {
            if !created {
                reused.push(Resource::Volume {
                    id: v.id.clone(),
                    name: v.name.clone(),
                });
            }
            Some(v.id.clone())
        }
        None => None,
    };

    // 3. The machine.
    progress.report(
        2,
        Some(TOTAL_STEPS),
        format!("machine {}", spec.machine_name),
    );
    let mut config = machine_config(spec, guest, volume_id.as_deref());
    if let Some(v) = secrets_version {
        workflows::record_secrets_version(&mut config, v);
    }
    let (machine, created) = ctl
        .guard(
            "creating the machine",
            ensure_machine(client, spec, config, secrets_version, ledger),
        )
        .await
        .map_err(at("machine"))?;
    if !created {
        reused.push(Resource::Machine {
            id: machine.id.clone(),
            name: machine.name.clone(),
        });
    }

    // 4. Wait until started.
    progress.report(
        3,
        Some(TOTAL_STEPS),
        format!("waiting for machine {} to start", machine.id),
    );
    let state = ctl
        .guard(
            "waiting for the machine to start",
            wait_started(client, &spec.app, &machine, spec.wait_timeout),
        )
        .await
        .map_err(at("start"))?;
    progress.report(
        TOTAL_STEPS,
        Some(TOTAL_STEPS),
        format!("machine {} {state}", machine.id),
    );

    Ok(Provisioned {
        app: spec.app.clone(),
        org: spec.org.clone(),
        url: spec.url(),
        region: machine.region.clone(),
        machine_id: machine.id.clone(),
        machine_name: machine.name.clone(),
        machine_state: state,
        volume_id,
        ipv4: ips.shared_v4,
        ipv6: ips.v6,
        created: Vec::new(),
        reused: Vec::new(),
        idempotency_key: spec.idempotency_key(),
        elapsed: Duration::ZERO,
    })
}

/// Creates the app if missing; adopts it if ours; refuses someone else's.
async fn ensure_app(
    client: &fly::Client,
    spec: &EnvSpec,
    ledger: &Ledger,
    reused: &mut Vec<Resource>,
) -> Result<(), Error> {
    let body = fly::CreateApp {
        name: spec.app.clone(),
        org_slug: spec.org.clone(),
        idempotency_key: Some(spec.app_key()),
        ..fly::CreateApp::default()
    };
    match client.get_app(&spec.app).await {
        Ok(existing) => {
            // `personal` is an alias of the caller's personal org, whatever its slug.
            if let Some(org) = &existing.organization
                && spec.org != "personal"
                && !org.slug.is_empty()
                && org.slug != spec.org
            {
                return Err(refuse_app(
                    &spec.app,
                    &format!("it belongs to org {}, not {}", org.slug, spec.org),
                ));
            }
            // Ours if our idempotent create answers with the same app, or if it
            // already carries a machine this server created.
            let ours = match client.create_app(&body).await {
                Ok(created) => created.id == existing.id || created.id.is_empty(),
                Err(e) if e.code() == Some("name_taken") || e.status() == Some(422) => {
                    owns_a_machine(client, &spec.app).await?
                }
                Err(e) => {
                    return Err(Error::fly(format!(
                        "checking ownership of app {}",
                        spec.app
                    ))(e));
                }
            };
            if !ours {
                return Err(refuse_app(
                    &spec.app,
                    "it was not created by this server (no provision key, no machine with its ownership metadata)",
                ));
            }
            reused.push(Resource::App {
                name: spec.app.clone(),
            });
            Ok(())
        }
        Err(e) if e.is_not_found() => match client.create_app(&body).await {
            Ok(_) => {
                ledger.push(Resource::App {
                    name: spec.app.clone(),
                });
                Ok(())
            }
            Err(e) if e.code() == Some("name_taken") => Err(refuse_app(
                &spec.app,
                "the name is taken (app names are global across Fly)",
            )),
            Err(e) => Err(Error::fly(format!("creating app {}", spec.app))(e)),
        },
        Err(e) if e.status() == Some(403) => Err(refuse_app(
            &spec.app,
            "the name is taken by an app this token cannot see",
        )),
        Err(e) => Err(Error::fly(format!("reading app {}", spec.app))(e)),
    }
}

fn refuse_app(app: &str, why: &str) -> Error {
    Error::Refused {
        rule: "app ownership".to_owned(),
        message: format!("app {app} exists and {why}; choose another app name"),
    }
}

/// Whether the app holds a live machine carrying this server's ownership metadata. The
/// list asks Fly to filter on that metadata (`metadata.{key}=value`) and for a summary,
/// which leaves `config` out (spec: `summary` "leaves out config, checks, events"), so
/// a machine the filter returned without a config counts: the filter is the proof. One
/// that does come with a config must carry the key itself (a server that ignored the
/// filter would otherwise make any app look ours).
async fn owns_a_machine(client: &fly::Client, app: &str) -> Result<bool, Error> {
    let filter = fly::MachineFilter {
        metadata: vec![(
            OWNER_METADATA_KEY.to_owned(),
            OWNER_METADATA_VALUE.to_owned(),
        )],
        summary: true,
        ..fly::MachineFilter::default()
    };
    let list = client
        .list_machines(app, &filter)
        .await
        .map_err(Error::fly(format!("listing machines of app {app}")))?;
    Ok(list.iter().any(|m| {
        !m.state.is_terminal()
            && match &m.config {
                None => true,
                Some(_) => m.metadata(OWNER_METADATA_KEY) == Some(OWNER_METADATA_VALUE),
            }
    }))
}

#[derive(Debug, Default)]
struct IpsOutcome {
    shared_v4: Option<String>,
    v6: Option<String>,
    reused: Vec<Resource>,
}

/// Allocates whichever of shared v4 and v6 the app lacks (both in parallel).
async fn ensure_ips(client: &fly::Client, app: &str, ledger: &Ledger) -> Result<IpsOutcome, Error> {
    let (shared, v6) = existing_ips(client, app).await?;
    let mut out = IpsOutcome::default();
    for (addr, kind) in [(&shared, "shared_v4"), (&v6, "v6")] {
        if let Some(a) = addr {
            out.reused.push(Resource::Ip {
                address: a.clone(),
                kind: kind.to_owned(),
            });
        }
    }
    let alloc = |kind: fly::IpType, have: Option<String>| async move {
        match have {
            Some(a) => Ok(a),
            None => allocate_ip(client, app, kind, ledger).await,
        }
    };
    let (shared, v6) = futures::try_join!(
        alloc(fly::IpType::SharedV4, shared),
        alloc(fly::IpType::V6, v6)
    )?;
    out.shared_v4 = Some(shared);
    out.v6 = Some(v6);
    Ok(out)
}

async fn allocate_ip(
    client: &fly::Client,
    app: &str,
    kind: fly::IpType,
    ledger: &Ledger,
) -> Result<String, Error> {
    let step = || format!("allocating a {} address for app {app}", kind.as_str());
    let mut attempts = 0;
    loop {
        attempts += 1;
        match client
            .allocate_ip_assignment(app, &fly::AllocateIp::new(kind))
            .await
        {
            Ok(ip) => {
                let address = ip.ip.unwrap_or_default();
                ledger.push(Resource::Ip {
                    address: address.clone(),
                    kind: kind.as_str().to_owned(),
                });
                return Ok(address);
            }
            Err(e) if (e.is_ambiguous() || e.is_retryable()) && attempts < 4 => {
                // It may have been allocated: look before asking again.
                let (shared, v6) = existing_ips(client, app).await?;
                let found = match kind {
                    fly::IpType::SharedV4 => shared,
                    _ => v6,
                };
                if let Some(address) = found {
                    ledger.push(Resource::Ip {
                        address: address.clone(),
                        kind: kind.as_str().to_owned(),
                    });
                    return Ok(address);
                }
            }
            Err(e) => return Err(Error::fly(step())(e)),
        }
    }
}

/// Reuses the named volume in the region, or creates it (looking before a retry).
async fn ensure_volume(
    client: &fly::Client,
    spec: &EnvSpec,
    v: &VolumeSpec,
    ledger: &Ledger,
) -> Result<(fly::Volume, bool), Error> {
    if let Some(vol) = existing_volume(client, spec).await? {
        return Ok((vol, false));
    }
    let body = fly::CreateVolume {
        name: v.name.clone(),
        region: spec.region.clone(),
        size_gb: Some(v.size_gb),
        ..fly::CreateVolume::default()
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        match client.create_volume(&spec.app, &body).await {
            Ok(vol) => {
                ledger.push(Resource::Volume {
                    id: vol.id.clone(),
                    name: vol.name.clone(),
                });
                return Ok((vol, true));
            }
            Err(e) if (e.is_ambiguous() || e.is_retryable()) && attempts < 4 => {
                if let Some(vol) = existing_volume(client, spec).await? {
                    ledger.push(Resource::Volume {
                        id: vol.id.clone(),
                        name: vol.name.clone(),
                    });
                    return Ok((vol, true));
                }
            }
            Err(e) => {
                return Err(Error::fly(format!(
                    "creating volume {} in {} for app {}{}",
                    v.name,
                    spec.region,
                    spec.app,
                    capacity_hint(&e, &spec.region)
                ))(e));
            }
        }
    }
}

/// Reuses the machine carrying this spec's idempotency key (starting it when it is
/// stopped or suspended), or creates it.
async fn ensure_machine(
    client: &fly::Client,
    spec: &EnvSpec,
    config: fly::MachineConfig,
    min_secrets_version: Option<u64>,
    ledger: &Ledger,
) -> Result<(fly::Machine, bool), Error> {
    let key = spec.idempotency_key();
    let step = || format!("creating machine {} in app {}", spec.machine_name, spec.app);
    if let Some(m) = client
        .find_machine_by_idempotency_key(&spec.app, &key)
        .await
        .map_err(Error::fly(step()))?
    {
        if matches!(
            m.state,
            fly::MachineState::Stopped | fly::MachineState::Suspended | fly::MachineState::Created
        ) {
            client
                .start_machine(&spec.app, &m.id, None)
                .await
                .map_err(Error::fly(format!("starting machine {}", m.id)))?;
        }
        return Ok((m, false));
    }
    let body = fly::CreateMachine {
        config,
        name: Some(spec.machine_name.clone()),
        region: Some(spec.region.clone()),
        min_secrets_version,
        ..fly::CreateMachine::default()
    };
    let m = client
        .create_machine_idempotent(&spec.app, &body, &key)
        .await
        .map_err(|e| {
            let hint = capacity_hint(&e, &spec.region);
            Error::fly(format!("{}{hint}", step()))(e)
        })?;
    ledger.push(Resource::Machine {
        id: m.id.clone(),
        name: m.name.clone(),
    });
    Ok((m, true))
}

/// Waits until `machine` is started (or failed, which is an error).
async fn wait_started(
    client: &fly::Client,
    app: &str,
    machine: &fly::Machine,
    deadline: Duration,
) -> Result<String, Error> {
    if machine.state == fly::MachineState::Started {
        return Ok(machine.state.to_string());
    }
    let outcome = client
        .wait_for_state(
            app,
            &machine.id,
            &[fly::WaitTarget::Started, fly::WaitTarget::Failed],
            None,
            None,
            deadline,
        )
        .await
        .map_err(Error::fly(format!(
            "waiting for machine {} to start",
            machine.id
        )))?;
    match outcome.state {
        Some(fly::MachineState::Failed) => Err(Error::NotConverged {
            subject: format!("machine {}", machine.id),
            outcome: "failed to start".to_owned(),
            next: "call machine_info for its events".to_owned(),
        }),
        Some(s) => Ok(s.to_string()),
        None => Ok(fly::MachineState::Started.to_string()),
    }
}

/// Removes `created` in reverse order. When this call created the app, deleting
/// the app removes everything in it. Returns (removed, left, errors).
async fn undo(
    client: &fly::Client,
    app: &str,
    created: &[Resource],
    wait: Duration,
) -> (Vec<Resource>, Vec<Resource>, Vec<String>) {
    // Undoing what this call created deletes it: a write call's token gets delete on
    // the app for the rollback (and only the rollback).
    let client = &client.for_rollback();
    let mut removed = Vec::new();
    let mut left = Vec::new();
    let mut errors = Vec::new();
    if created.iter().any(|r| matches!(r, Resource::App { .. })) {
        match delete_app_fully(client, app, wait).await {
            Ok(()) => removed.extend(created.iter().rev().cloned()),
            Err(e) => {
                errors.push(e.source_text());
                left.extend(created.iter().cloned());
            }
        }
        return (removed, left, errors);
    }
    for r in created.iter().rev() {
        let result = match r {
            Resource::Machine { id, .. } => destroy_machine_fully(client, app, id, wait).await,
            Resource::Volume { id, .. } => destroy_volume_retrying(client, app, id, wait).await,
            Resource::Ip { address, .. } => release_ip(client, app, address).await,
            Resource::App { .. } => Ok(()),
        };
        match result {
            Ok(()) => removed.push(r.clone()),
            Err(e) => {
                errors.push(e.source_text());
                left.push(r.clone());
            }
        }
    }
    (removed, left, errors)
}

/// The next step after a capacity error (fly-go's suggestion for the code, "Try
/// choosing a different region"), or nothing for any other error.
fn capacity_hint(e: &fly::Error, region: &str) -> String {
    if e.is_capacity() {
        format!(
            ": Fly has no room in {region} right now; call again with another region (platform_info lists them)"
        )
    } else {
        String::new()
    }
}
