//! The network toolset: allocate then release an address (confirmation enforced,
//! effect checked in the simulator's state), and a certificate's DNS requirements
//! from add to active, then its removal.

use serde_json::json;

use super::{DEMO_APP, Harness};

fn addresses(h: &Harness) -> Vec<String> {
    let app = h.app_state(DEMO_APP).unwrap();
    app["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["address"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn allocate_then_release_an_ip_only_once_confirmed() {
    let h = Harness::opt_in().await;
    let before = addresses(&h);
    let (text, out) = h
        .ok("allocate_ip", json!({"app": DEMO_APP, "kind": "v6"}))
        .await;
    let address = out["addresses"][0]["address"].as_str().unwrap().to_owned();
    assert_eq!(out["addresses"][0]["kind"], "v6");
    assert_eq!(out["public"], true);
    assert!(text.contains("reachable from the internet"), "{text}");
    assert!(addresses(&h).contains(&address));
    assert_eq!(addresses(&h).len(), before.len() + 1);

    // Without confirm: the plan, and nothing released.
    let err = h
        .err("release_ip", json!({"app": DEMO_APP, "address": address}))
        .await;
    assert!(err.contains("confirmation required"), "{err}");
    assert!(err.contains(&address), "{err}");
    assert!(addresses(&h).contains(&address));
    // A wrong confirmation is refused too.
    let err = h
        .err(
            "release_ip",
            json!({"app": DEMO_APP, "address": address, "confirm": "other-app"}),
        )
        .await;
    assert!(!err.is_empty());
    assert!(addresses(&h).contains(&address));

    let (text, out) = h
        .confirmed("release_ip", json!({"app": DEMO_APP, "address": address}))
        .await;
    assert_eq!(out["released"]["address"], address.as_str());
    assert!(text.contains("released"), "{text}");
    assert!(!addresses(&h).contains(&address));
    assert_eq!(addresses(&h), before);

    // An address the app does not have: an error naming the ones it has.
    let err = h
        .err(
            "release_ip",
            json!({"app": DEMO_APP, "address": "10.9.9.9", "confirm": DEMO_APP}),
        )
        .await;
    assert!(err.contains("not found"), "{err}");
}

#[tokio::test]
async fn private_and_egress_addresses_are_not_public() {
    let h = Harness::opt_in().await;
    let (_, out) = h
        .ok(
            "allocate_ip",
            json!({"app": DEMO_APP, "kind": "private_v6"}),
        )
        .await;
    assert_eq!(out["public"], false);
    assert!(
        out["addresses"][0]["address"]
            .as_str()
            .unwrap()
            .starts_with("fdaa:")
    );
    let (_, out) = h
        .ok(
            "allocate_ip",
            json!({"app": DEMO_APP, "kind": "egress_pair", "region": "ams"}),
        )
        .await;
    let kinds: Vec<&str> = out["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["egress_v4", "egress_v6"]);
    let err = h
        .err(
            "allocate_ip",
            json!({"app": DEMO_APP, "kind": "v6", "network": "blue"}),
        )
        .await;
    assert!(err.contains("network"), "{err}");
}

#[tokio::test]
async fn a_certificate_shows_its_dns_requirements_until_it_is_active() {
    let h = Harness::opt_in().await;
    let host = "shop.example.com";
    let certs_before = h.app_state(DEMO_APP).unwrap()["certificates"]
        .as_array()
        .map_or(0, Vec::len);
    let (text, out) = h
        .ok(
            "certificate_action",
            json!({"app": DEMO_APP, "hostname": host, "action": "add"}),
        )
        .await;
    assert_eq!(out["ready"], false);
    let types: Vec<(String, String)> = out["dns_records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap().to_owned(),
                r["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for want in ["A", "CNAME", "TXT"] {
        assert!(types.iter().any(|(t, _)| t == want), "{want}: {text}");
    }
    assert!(
        types
            .iter()
            .any(|(t, n)| t == "CNAME" && n == &format!("_acme-challenge.{host}")),
        "{text}"
    );
    let missing = out["missing"].as_array().unwrap();
    assert!(!missing.is_empty(), "{text}");
    assert!(text.contains("does not point at the app"), "{text}");
    assert!(text.contains("missing:"), "{text}");
    assert_eq!(
        h.app_state(DEMO_APP).unwrap()["certificates"]
            .as_array()
            .map(Vec::len),
        Some(certs_before + 1)
    );

    // Adding it again shows it (no error); check runs Fly's validation.
    h.ok(
        "certificate_action",
        json!({"app": DEMO_APP, "hostname": host, "action": "add"}),
    )
    .await;
    let (text, out) = h
        .ok(
            "certificate_action",
            json!({"app": DEMO_APP, "hostname": host, "action": "check"}),
        )
        .await;
    assert_eq!(out["ready"], true, "{text}");
    assert_eq!(out["missing"].as_array().unwrap().len(), 0, "{text}");

    // Removal is confirmed.
    let err = h
        .err(
            "remove_certificate",
            json!({"app": DEMO_APP, "hostname": host}),
        )
        .await;
    assert!(err.contains("confirmation required"), "{err}");
    assert!(err.contains(host), "{err}");
    h.ok(
        "remove_certificate",
        crate::support::with_confirm(&json!({"app": DEMO_APP, "hostname": host}), &err),
    )
    .await;
    let certs = h.app_state(DEMO_APP).unwrap()["certificates"].clone();
    assert_eq!(
        certs.as_array().map_or(0, Vec::len),
        certs_before,
        "{certs}"
    );
    assert!(!certs.to_string().contains(host), "{certs}");
    let err = h
        .err(
            "certificate_action",
            json!({"app": DEMO_APP, "hostname": host, "action": "show"}),
        )
        .await;
    assert!(err.contains("not found"), "{err}");
}
