//! Fly's access checks for macaroon tokens: which org, app and action a request is, and
//! whether the caveats of a verified token allow it (superfly/macaroon
//! `flyio/caveats.go`, `resset/*.go`, `caveats.go`: Organization, Apps,
//! ValidityWindow, IfPresent, Action; a caveat type it does not know refuses, as
//! `UnregisteredCaveat.Prohibits` does). A refused request is answered as Fly answers
//! it: `403 {"error":"unauthorized"}` (fly-go `flaps/flaps_apps_test.go` models
//! exactly that body for a token that may not read an app); a macaroon that does not
//! verify gets `401 {"error":"Authenticate: token validation error"}` (a real 401
//! body, `reference/examples/error-401-token-validation.clutterfly.json`).
//!
//! The simulator's rules where Fly's are not published (each a choice made here):
//! - actions by method: GET reads (`r`); DELETE deletes (`d`) except releasing a lease
//!   and deleting one metadata key (writes to the machine, `w`); POST creates (`c`) on
//!   the collections (apps, machines, volumes, snapshots, IPs, ACME certificates,
//!   deploy tokens), controls (`C`) on start/stop/suspend/restart/signal/cordon/uncordon,
//!   and writes (`w`) elsewhere;
//! - creating an app is `c` on the org for app id 0 (`resset.ZeroID`: "when creating a
//!   new app, you would check for app:0:c permission");
//! - `/v1/platform/regions`, `/v1/tokens/current` and the GraphQL fields that name no
//!   org or app (viewer, organizations, platform) are platform requests: only the
//!   ValidityWindow and Action caveats (and unknown ones) apply to them;
//! - a request on an app that does not exist is let through to its 404.
//!
//! A token the simulator cannot decode as macaroons is not judged here (the sandbox,
//! the examples and many tests use such tokens).

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::Method;
use serde_json::Value;

use super::macaroon::{self, PERMISSION_LOCATION, SimCaveat};
use super::model::World;
use super::rest::resolve_org;

/// Bits of `resset.Action`.
pub(crate) const READ: u16 = 1;
pub(crate) const WRITE: u16 = 2;
pub(crate) const CREATE: u16 = 4;
pub(crate) const DELETE: u16 = 8;
pub(crate) const CONTROL: u16 = 16;
/// Every action (`resset.ActionAll`).
pub(crate) const ALL: u16 = READ | WRITE | CREATE | DELETE | CONTROL;

/// The simulator's root key and a counter for fresh nonces (so minting never draws
/// from the world's random stream, and ids stay what the scenario makes them).
#[derive(Debug)]
pub(crate) struct Keys {
    root: Vec<u8>,
    minted: AtomicU64,
}

impl Keys {
    pub(crate) fn new(seed: u64) -> Self {
        Keys {
            root: macaroon::root_key(seed),
            minted: AtomicU64::new(0),
        }
    }

    /// A permission token with `caveats`, as `FlyV1 fm2_…`.
    pub(crate) fn mint(&self, caveats: &[SimCaveat]) -> String {
        let n = self.minted.fetch_add(1, Ordering::Relaxed);
        let mut rnd = [0u8; 16];
        for (i, b) in n.to_le_bytes().iter().chain(b"sim-rnd!").enumerate() {
            if let Some(slot) = rnd.get_mut(i) {
                *slot = *b;
            }
        }
        macaroon::mint(&self.root, b"sim", &rnd, caveats)
    }
}

/// What the `Authorization` header is, to the verifier.
#[derive(Debug)]
pub(crate) enum Authn {
    /// Not macaroons the simulator can read: judged the old way.
    NotMacaroons,
    /// Macaroons, but no permission token verifies under the root key.
    Invalid,
    /// The caveats of every permission token that verified.
    Verified(Grant),
}

/// The verified permission tokens of a request. Fly is given one permission token per
/// org by a user's login; a request is allowed when one of them allows it.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    tokens: Vec<Vec<SimCaveat>>,
}

pub(crate) fn authenticate(keys: &Keys, header: Option<&str>) -> Authn {
    let Some(tokens) = header.and_then(macaroon::parse_header) else {
        return Authn::NotMacaroons;
    };
    let verified: Vec<Vec<SimCaveat>> = tokens
        .iter()
        .filter(|t| t.location == PERMISSION_LOCATION && t.verify(&keys.root))
        .map(macaroon::Token::caveats)
        .collect();
    if verified.is_empty() {
        Authn::Invalid
    } else {
        Authn::Verified(Grant { tokens: verified })
    }
}

/// One access, as Fly's check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Access {
    pub(crate) action: u16,
    pub(crate) org: Option<u64>,
    pub(crate) app: Option<u64>,
    /// Names no org or app (see the module notes).
    pub(crate) platform: bool,
}

impl Access {
    fn platform(action: u16) -> Self {
        Access {
            action,
            org: None,
            app: None,
            platform: true,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Deny {
    /// The caveat constrains a resource the request does not name
    /// (`resset.ErrResourceUnspecified`).
    Unspecified,
    Unauthorized,
}

fn subset(action: u16, mask: u16) -> bool {
    action & mask == action
}

fn check(c: &SimCaveat, a: &Access, now_s: i64) -> Result<(), Deny> {
    match c {
        SimCaveat::Organization { id, mask } => match a.org {
            None => Err(Deny::Unspecified),
            Some(org) if *id != 0 && *id != org => Err(Deny::Unauthorized),
            Some(_) if !subset(a.action, *mask) => Err(Deny::Unauthorized),
            Some(_) => Ok(()),
        },
        SimCaveat::Apps(set) => {
            let has_zero = set.iter().any(|(id, _)| *id == 0);
            if has_zero && set.len() != 1 {
                return Err(Deny::Unauthorized);
            }
            let Some(app) = a.app else {
                return Err(Deny::Unspecified);
            };
            let mut perm = u16::MAX;
            let mut found = false;
            for (id, mask) in set {
                if *id == 0 || *id == app {
                    perm &= mask;
                    found = true;
                }
            }
            if found && subset(a.action, perm) {
                Ok(())
            } else {
                Err(Deny::Unauthorized)
            }
        }
        SimCaveat::ValidityWindow {
            not_before,
            not_after,
        } => {
            if now_s > *not_after || now_s < *not_before {
                Err(Deny::Unauthorized)
            } else {
                Ok(())
            }
        }
        SimCaveat::IfPresent { ifs, otherwise } => {
            let mut taken = false;
            let mut denied = false;
            for inner in ifs {
                match check(inner, a, now_s) {
                    Err(Deny::Unspecified) => {}
                    Ok(()) => taken = true,
                    Err(Deny::Unauthorized) => {
                        taken = true;
                        denied = true;
                    }
                }
            }
            if denied || (!taken && !subset(a.action, *otherwise)) {
                Err(Deny::Unauthorized)
            } else {
                Ok(())
            }
        }
        SimCaveat::Action(mask) if subset(a.action, *mask) => Ok(()),
        SimCaveat::Action(_) | SimCaveat::Unknown(_) => Err(Deny::Unauthorized),
        SimCaveat::Inert(_) => Ok(()),
    }
}

impl Grant {
    /// Whether some verified permission token allows `access` at `now_s`.
    pub(crate) fn permits(&self, access: &Access, now_s: i64) -> bool {
        self.tokens.iter().any(|caveats| {
            caveats.iter().all(|c| match check(c, access, now_s) {
                Ok(()) => true,
                // A platform request names no resource: resource caveats do not apply.
                Err(Deny::Unspecified) => access.platform,
                Err(Deny::Unauthorized) => false,
            })
        })
    }
}

/// The action of a REST request (the simulator's mapping; see the module notes).
pub(crate) fn rest_action(method: &Method, template: &str) -> u16 {
    const CREATES: [&str; 7] = [
        "/v1/apps",
        "/v1/apps/{app_name}/machines",
        "/v1/apps/{app_name}/volumes",
        "/v1/apps/{app_name}/volumes/{volume_id}/snapshots",
        "/v1/apps/{app_name}/ip_assignments",
        "/v1/apps/{app_name}/certificates/acme",
        "/v1/apps/{app_name}/deploy_token",
    ];
    const CONTROLS: [&str; 7] = [
        "start", "stop", "suspend", "restart", "signal", "cordon", "uncordon",
    ];
    if method == Method::GET || method == Method::HEAD {
        return READ;
    }
    let last = template.rsplit('/').next().unwrap_or("");
    if method == Method::DELETE {
        return if last == "lease" || template.ends_with("/metadata/{key}") {
            WRITE
        } else {
            DELETE
        };
    }
    if method == Method::POST && CREATES.contains(&template) {
        return CREATE;
    }
    if method == Method::POST
        && template.starts_with("/v1/apps/{app_name}/machines/{machine_id}/")
        && CONTROLS.contains(&last)
    {
        return CONTROL;
    }
    WRITE
}

fn app_access(w: &World, name: &str, action: u16) -> Access {
    match w.apps.get(name) {
        Some(a) => Access {
            action,
            org: w.orgs.get(&a.org).map(|o| o.internal_numeric_id),
            app: Some(a.internal_numeric_id),
            platform: false,
        },
        // Let the handler answer 404.
        None => Access::platform(action),
    }
}

fn org_access(w: &World, slug: &str, action: u16, app: Option<u64>) -> Access {
    match resolve_org(w, slug) {
        Some(o) => Access {
            action,
            org: Some(o.internal_numeric_id),
            app,
            platform: false,
        },
        None => Access::platform(action),
    }
}

/// The access of a REST or logs request. `body` is the JSON body where it names the
/// org (app creation).
pub(crate) fn rest_access(
    w: &World,
    method: &Method,
    template: &str,
    path: &str,
    query: Option<&str>,
    body: Option<&Value>,
) -> Access {
    let action = rest_action(method, template);
    let segs: Vec<&str> = path.split('/').collect();
    if template.starts_with("/v1/apps/{app_name}") {
        return app_access(w, segs.get(3).copied().unwrap_or(""), action);
    }
    if template.starts_with("/api/v1/apps/{app_name}") {
        return app_access(w, segs.get(4).copied().unwrap_or(""), READ);
    }
    if template.starts_with("/v1/orgs/{org_slug}") {
        return org_access(w, segs.get(3).copied().unwrap_or(""), action, None);
    }
    if template == "/v1/apps" {
        let creating = method == Method::POST;
        let slug = if creating {
            body.and_then(|b| b.get("org_slug"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        } else {
            query.and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "org_slug")
                    .map(|(_, v)| v.into_owned())
            })
        };
        return match slug {
            Some(slug) => org_access(w, &slug, action, creating.then_some(0)),
            None => Access::platform(action),
        };
    }
    Access::platform(action)
}

/// The access of one GraphQL root field (`None`: not judged, the resolver refuses it).
pub(crate) fn graphql_access(
    w: &World,
    field: &str,
    args: &serde_json::Map<String, Value>,
) -> Access {
    let str_arg = |m: &serde_json::Map<String, Value>, k: &str| {
        m.get(k).and_then(Value::as_str).unwrap_or("").to_owned()
    };
    let input = args
        .get("input")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match field {
        "app" => {
            let name = if args.contains_key("name") {
                str_arg(args, "name")
            } else {
                str_arg(args, "id")
            };
            app_access(w, &name, READ)
        }
        "organization" => {
            let slug = str_arg(args, "slug");
            if slug.is_empty() {
                Access::platform(READ)
            } else {
                org_access(w, &slug, READ, None)
            }
        }
        "allocateIpAddress" => app_access(w, &str_arg(&input, "appId"), CREATE),
        "releaseIpAddress" => {
            let app = str_arg(&input, "appId");
            if app.is_empty() {
                Access::platform(DELETE)
            } else {
                app_access(w, &app, DELETE)
            }
        }
        _ => Access::platform(READ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_app(action: u16) -> Access {
        Access {
            action,
            org: Some(10),
            app: Some(20),
            platform: false,
        }
    }

    fn grant(caveats: Vec<SimCaveat>) -> Grant {
        Grant {
            tokens: vec![caveats],
        }
    }

    #[test]
    fn caveats_narrow_as_resset_does() {
        let org = SimCaveat::Organization { id: 10, mask: ALL };
        assert!(grant(vec![org.clone()]).permits(&on_app(DELETE), 0));
        let other_org = SimCaveat::Organization { id: 11, mask: ALL };
        assert!(!grant(vec![other_org]).permits(&on_app(READ), 0));
        let read_only = SimCaveat::Action(READ);
        let g = grant(vec![org.clone(), read_only]);
        assert!(g.permits(&on_app(READ), 0));
        assert!(!g.permits(&on_app(WRITE), 0));
        let apps = SimCaveat::Apps(vec![(20, READ | WRITE)]);
        let g = grant(vec![org.clone(), apps.clone()]);
        assert!(g.permits(&on_app(WRITE), 0));
        assert!(!g.permits(&on_app(DELETE), 0));
        let other_app = Access {
            app: Some(21),
            ..on_app(READ)
        };
        assert!(!g.permits(&other_app, 0));
        // An Apps caveat refuses requests that name no app…
        let org_level = Access {
            app: None,
            ..on_app(READ)
        };
        assert!(!g.permits(&org_level, 0));
        // …unless wrapped in IfPresent, whose else mask then applies.
        let wrapped = grant(vec![
            org,
            SimCaveat::IfPresent {
                ifs: vec![apps],
                otherwise: READ,
            },
        ]);
        assert!(wrapped.permits(&org_level, 0));
        assert!(!wrapped.permits(
            &Access {
                action: CREATE,
                ..org_level.clone()
            },
            0
        ));
        assert!(!wrapped.permits(&other_app, 0));
        // Expiry, and a type the verifier does not know.
        let vw = grant(vec![SimCaveat::ValidityWindow {
            not_before: 100,
            not_after: 200,
        }]);
        assert!(vw.permits(&on_app(READ), 150));
        assert!(!vw.permits(&on_app(READ), 201));
        assert!(!vw.permits(&on_app(READ), 99));
        assert!(!grant(vec![SimCaveat::Unknown(6)]).permits(&on_app(READ), 0));
        // Platform requests: resource caveats do not apply, actions and expiry do.
        let g = grant(vec![
            SimCaveat::Apps(vec![(20, ALL)]),
            SimCaveat::Action(READ),
        ]);
        assert!(g.permits(&Access::platform(READ), 0));
        assert!(!g.permits(&Access::platform(WRITE), 0));
    }

    #[test]
    fn actions_by_route() {
        let m = "/v1/apps/{app_name}/machines/{machine_id}";
        assert_eq!(rest_action(&Method::GET, m), READ);
        assert_eq!(rest_action(&Method::POST, m), WRITE);
        assert_eq!(rest_action(&Method::DELETE, m), DELETE);
        assert_eq!(rest_action(&Method::POST, &format!("{m}/stop")), CONTROL);
        assert_eq!(rest_action(&Method::DELETE, &format!("{m}/lease")), WRITE);
        assert_eq!(rest_action(&Method::POST, "/v1/apps"), CREATE);
        assert_eq!(
            rest_action(&Method::POST, "/v1/apps/{app_name}/machines"),
            CREATE
        );
        assert_eq!(
            rest_action(&Method::POST, "/v1/apps/{app_name}/secrets"),
            WRITE
        );
    }
}
