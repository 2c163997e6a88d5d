//! Confirmation tokens for `--confirm argument`: the first call of a destructive tool
//! returns its plan and a token bound to that plan; only that token confirms it.
//!
//! A token is `cfm-<expiry>-<mac>`: the expiry in Unix seconds and an HMAC-SHA256 (key
//! from `--confirm-key`, else random per process) over the tool, the digest of the
//! exact plan (targets and versions) and the expiry. Nothing is stored: the second
//! call recomputes its plan, and a token for another plan — a machine added, a
//! version bumped — does not verify, so a new plan is shown. Replicas given the same
//! key accept each other's tokens. An instruction injected into the model's context
//! cannot hand it a one-shot destructive call: the token exists only after the plan
//! was shown.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;

/// How long a token stays valid after its plan was shown.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

const PREFIX: &str = "cfm-";
/// Bytes of the MAC kept in a token (128 bits).
const MAC_BYTES: usize = 16;

/// The key tokens are signed with.
pub struct ConfirmKey {
    key: SecretBox<Vec<u8>>,
    ttl: Duration,
}

impl std::fmt::Debug for ConfirmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConfirmKey(***, ttl {:?})", self.ttl)
    }
}

/// What a given `confirm` value is, for this plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The token of this very plan, in time.
    Valid,
    /// This plan's token, too late.
    Expired,
    /// A token, but of another plan (or altered, or from a key this server lacks).
    Mismatch,
    /// Not a confirmation token at all (e.g. the app name).
    NotAToken,
}

impl ConfirmKey {
    /// A random key, valid for this process only.
    pub fn random() -> Self {
        ConfirmKey::from_bytes(rand::random::<[u8; 32]>().to_vec())
    }

    /// The key operators share between replicas (`--confirm-key`).
    pub fn shared(secret: &SecretString) -> Self {
        ConfirmKey::from_bytes(secret.expose_secret().as_bytes().to_vec())
    }

    fn from_bytes(bytes: Vec<u8>) -> Self {
        ConfirmKey {
            key: SecretBox::new(Box::new(bytes)),
            ttl: DEFAULT_TTL,
        }
    }

    /// The same key with another lifetime for its tokens.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long a token lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for `tool`'s plan with digest `plan`, issued at `now` (Unix seconds).
    pub fn issue(&self, tool: &str, plan: &str, now: u64) -> String {
        let expiry = now.saturating_add(self.ttl.as_secs());
        let mac = self.mac(tool, plan, expiry);
        format!("{PREFIX}{expiry}-{}", hex::encode(mac))
    }

    /// Checks `given` against `tool`'s plan with digest `plan` at `now`.
    pub fn check(&self, tool: &str, plan: &str, given: &str, now: u64) -> Verdict {
        let Some((expiry, mac)) = given
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(e, m)| Some((e.parse::<u64>().ok()?, hex::decode(m).ok()?)))
        else {
            return Verdict::NotAToken;
        };
        let Ok(mut expected) = Hmac::<Sha256>::new_from_slice(self.key.expose_secret()) else {
            return Verdict::Mismatch;
        };
        feed(&mut expected, tool, plan, expiry);
        // Constant-time comparison of the kept prefix.
        if mac.len() != MAC_BYTES || expected.verify_truncated_left(&mac).is_err() {
            return Verdict::Mismatch;
        }
        if now > expiry {
            Verdict::Expired
        } else {
            Verdict::Valid
        }
    }

    fn mac(&self, tool: &str, plan: &str, expiry: u64) -> Vec<u8> {
        match Hmac::<Sha256>::new_from_slice(self.key.expose_secret()) {
            Ok(mut m) => {
                feed(&mut m, tool, plan, expiry);
                let full = m.finalize().into_bytes();
                full.get(..MAC_BYTES)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default()
            }
            // HMAC takes keys of any length; unreachable, and an empty MAC never verifies.
            Err(_) => Vec::new(),
        }
    }
}

fn feed(m: &mut Hmac<Sha256>, tool: &str, plan: &str, expiry: u64) {
    for part in ["fly-machines-mcp confirm v1", tool, plan] {
        m.update(&(part.len() as u64).to_be_bytes());
        m.update(part.as_bytes());
    }
    m.update(&expiry.to_be_bytes());
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_confirms_its_plan_only_in_time_and_unaltered() {
        let key = ConfirmKey::random();
        let td = "teardown_environment";
        let t = key.issue(td, "plan-a", 1_000);
        // The MAC's last character changed.
        let mut altered = t.clone();
        let last = altered.pop().unwrap();
        altered.push(if last == '0' { '1' } else { '0' });
        // A later expiry with the old MAC does not verify either.
        let mac = t.rsplit('-').next().unwrap();
        let stretched = format!("cfm-99999999999-{mac}");
        let cases: [(&str, &str, &str, u64, Verdict); 8] = [
            (td, "plan-a", &t, 1_000, Verdict::Valid),
            (td, "plan-a", &t, 1_300, Verdict::Valid),
            (td, "plan-a", &t, 1_301, Verdict::Expired),
            (td, "plan-b", &t, 1_000, Verdict::Mismatch),
            ("destroy_volume", "plan-a", &t, 1_000, Verdict::Mismatch),
            (td, "plan-a", &altered, 1_000, Verdict::Mismatch),
            (td, "plan-a", &stretched, 1_000, Verdict::Mismatch),
            (td, "plan-a", "my-app", 1_000, Verdict::NotAToken),
        ];
        for (tool, plan, token, now, verdict) in cases {
            assert_eq!(
                key.check(tool, plan, token, now),
                verdict,
                "{tool} {plan} {token} at {now}"
            );
        }
    }

    #[test]
    fn replicas_with_the_same_key_agree_others_do_not() {
        let shared = SecretString::from("replica-key-1".to_owned());
        let (a, b) = (ConfirmKey::shared(&shared), ConfirmKey::shared(&shared));
        let t = a.issue("destroy_volume", "p", 10);
        assert_eq!(b.check("destroy_volume", "p", &t, 10), Verdict::Valid);
        assert_eq!(
            ConfirmKey::random().check("destroy_volume", "p", &t, 10),
            Verdict::Mismatch
        );
        assert!(!format!("{a:?}").contains("replica-key-1"));
    }
}
