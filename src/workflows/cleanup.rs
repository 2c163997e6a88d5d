//! Removing what an environment is made of, each step tolerant of "already gone":
//! shared by provision's rollback and by teardown.

use std::time::Duration;

use super::{Error, sched::Poll};
use crate::fly;

/// Destroys a machine (force) and waits until it is gone. Gone already is fine.
pub async fn destroy_machine_fully(
    client: &fly::Client,
    app: &str,
    id: &str,
    wait: Duration,
) -> Result<(), Error> {
    match client.destroy_machine(app, id, true, None).await {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => {
            return Err(Error::fly(format!("destroying machine {id} of app {app}"))(
                e,
            ));
        }
    }
    match client
        .wait_for_state(app, id, &[fly::WaitTarget::Destroyed], None, None, wait)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(Error::fly(format!(
            "waiting for machine {id} to be destroyed"
        ))(e)),
    }
}

/// Destroys a volume, retrying while its machine is still being destroyed.
pub async fn destroy_volume_retrying(
    client: &fly::Client,
    app: &str,
    id: &str,
    wait: Duration,
) -> Result<(), Error> {
    let mut poll = Poll::starting_at(Duration::from_millis(20));
    loop {
        match client.destroy_volume(app, id).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) if poll.elapsed() < wait && (e.status() == Some(412) || e.is_retryable()) => {
                poll.sleep().await;
            }
            Err(e) => {
                return Err(Error::fly(format!("destroying volume {id} of app {app}"))(
                    e,
                ));
            }
        }
    }
}

/// Releases an IP; already released is fine.
pub async fn release_ip(client: &fly::Client, app: &str, address: &str) -> Result<(), Error> {
    match client.release_ip_assignment(app, address).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(Error::fly(format!("releasing IP {address} of app {app}"))(
            e,
        )),
    }
}

/// Deletes an app (force) and confirms it is gone.
pub async fn delete_app_fully(
    client: &fly::Client,
    app: &str,
    wait: Duration,
) -> Result<(), Error> {
    let mut poll = Poll::starting_at(Duration::from_millis(20));
    loop {
        match client.delete_app(app, true).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) if poll.elapsed() < wait && e.is_retryable() => {}
            Err(e) => return Err(Error::fly(format!("deleting app {app}"))(e)),
        }
        match client.get_app(app).await {
            Err(e) if e.is_not_found() => return Ok(()),
            Ok(_) | Err(_) if poll.elapsed() < wait => poll.sleep().await,
            Ok(_) => {
                return Err(Error::NotConverged {
                    subject: format!("app {app}"),
                    outcome: "still exists after its deletion".to_owned(),
                    next: "call list_apps later to see whether it is gone".to_owned(),
                });
            }
            Err(e) => return Err(Error::fly(format!("confirming app {app} is gone"))(e)),
        }
    }
}
