//! The simulator's own Fly macaroons: it mints its tokens with its own root key and
//! checks the signature chain of every macaroon it is sent, as Fly's API does
//! (superfly/macaroon `macaroon.go` `Verify`: `HMAC(root key, nonce)`, then
//! `HMAC(previous, msgpack([type, body]))` over each caveat, compared with the tail).
//!
//! Written apart from the client's codec (it never imports `crate::fly`): it reads the
//! token into msgpack values and re-encodes each caveat from its value before chaining,
//! as Fly does (Go decodes caveats into structs and marshals them again), so a client
//! that appends a caveat encoded differently from Go's msgpack v5 (compact integers,
//! structs as arrays, maps sorted by key) fails verification here as it would on Fly.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use rmpv::Value;
use sha2::Sha256;

/// Fly's permission-token location (superfly/macaroon `flyio.LocationPermission`).
pub(crate) const PERMISSION_LOCATION: &str = "https://api.fly.io/v1";

/// Caveat type numbers (superfly/macaroon `caveat.go`).
pub(crate) const ORGANIZATION: u64 = 0;
pub(crate) const APPS: u64 = 3;
pub(crate) const VALIDITY_WINDOW: u64 = 4;
pub(crate) const IS_USER: u64 = 10;
pub(crate) const THIRD_PARTY: u64 = 11;
pub(crate) const IF_PRESENT: u64 = 13;
pub(crate) const ACTION: u64 = 26;

/// A caveat the verifier understands; anything else is `Unknown` (and refuses every
/// request, as Go's `UnregisteredCaveat.Prohibits` does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SimCaveat {
    Organization {
        id: u64,
        mask: u16,
    },
    Apps(Vec<(u64, u16)>),
    ValidityWindow {
        not_before: i64,
        not_after: i64,
    },
    IfPresent {
        ifs: Vec<SimCaveat>,
        otherwise: u16,
    },
    Action(u16),
    /// Metadata with no bearing on access (`flyio.IsUser`).
    Inert(u64),
    Unknown(u64),
}

/// One macaroon as the verifier reads it.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) location: String,
    nonce: Value,
    /// `(type, body)` as decoded values.
    caveats: Vec<(u64, Value)>,
    tail: Vec<u8>,
}

/// The macaroons of an `Authorization` header, or `None` when the header is not made
/// of macaroons the simulator can read (such tokens are accepted as before).
pub(crate) fn parse_header(header: &str) -> Option<Vec<Token>> {
    let tokens = strip_schemes(header);
    let mut out = Vec::new();
    for part in tokens.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (prefix, b64) = part.split_once('_')?;
        match prefix {
            "fm1r" | "fm1a" | "fm2" => {
                let bytes = BASE64.decode(b64).ok()?;
                out.push(decode(&bytes)?);
            }
            // OAuth user tokens ride along for GraphQL; they carry no caveats.
            _ => {}
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Drops `Bearer` / `FlyV1` words, however many were pasted.
fn strip_schemes(s: &str) -> &str {
    let mut rest = s.trim();
    loop {
        let Some((first, tail)) = rest.split_once(' ') else {
            return rest;
        };
        if first.eq_ignore_ascii_case("bearer") || first.eq_ignore_ascii_case("flyv1") {
            rest = tail.trim_start();
        } else {
            return rest;
        }
    }
}

fn decode(bytes: &[u8]) -> Option<Token> {
    let mut rd: &[u8] = bytes;
    let value = rmpv::decode::read_value(&mut rd).ok()?;
    if !rd.is_empty() {
        return None;
    }
    let Value::Array(fields) = value else {
        return None;
    };
    let [nonce, location, caveats, tail]: [Value; 4] = fields.try_into().ok()?;
    if !matches!(&nonce, Value::Array(n) if n.len() == 2 || n.len() == 3) {
        return None;
    }
    let location = location.as_str()?.to_owned();
    let Value::Array(flat) = caveats else {
        return None;
    };
    if flat.len() % 2 != 0 {
        return None;
    }
    let mut pairs = Vec::new();
    let mut it = flat.into_iter();
    while let (Some(kind), Some(body)) = (it.next(), it.next()) {
        pairs.push((kind.as_u64()?, body));
    }
    let Value::Binary(tail) = tail else {
        return None;
    };
    Some(Token {
        location,
        nonce,
        caveats: pairs,
        tail,
    })
}

fn encode_value(v: &Value) -> Vec<u8> {
    let mut buf = Vec::new();
    // Writing into a Vec does not fail.
    let _ = rmpv::encode::write_value(&mut buf, v);
    buf
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(msg);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// `msgpack([type, body])` as Go writes it: the body re-encoded from its value, maps of
/// the caveats whose Go type sorts them (`resset.ResourceSet`) sorted by key.
fn packed(kind: u64, body: &Value) -> Vec<u8> {
    let body = match kind {
        APPS => canonical_apps(body).unwrap_or_else(|| body.clone()),
        _ => body.clone(),
    };
    encode_value(&Value::Array(vec![Value::from(kind), body]))
}

fn canonical_apps(body: &Value) -> Option<Value> {
    let Value::Array(fields) = body else {
        return None;
    };
    let Some(Value::Map(entries)) = fields.first() else {
        return None;
    };
    let mut entries = entries.clone();
    entries.sort_by_key(|(k, _)| k.as_u64());
    Some(Value::Array(vec![Value::Map(entries)]))
}

impl Token {
    /// Checks the signature chain against `root_key`. A token with a third-party caveat
    /// needs a discharge the simulator never issues, so it does not verify.
    pub(crate) fn verify(&self, root_key: &[u8]) -> bool {
        let mut mac = hmac(root_key, &encode_value(&self.nonce));
        for (kind, body) in &self.caveats {
            if *kind == THIRD_PARTY {
                return false;
            }
            mac = hmac(&mac, &packed(*kind, body));
        }
        // A proof's signature is finalized (`finalizeSignature`): no caveat can follow.
        if self.is_proof() {
            mac = hmac(b"proof-signature-finalization", &mac);
        }
        ct_eq(&mac, &self.tail)
    }

    fn is_proof(&self) -> bool {
        matches!(&self.nonce, Value::Array(n) if n.get(2) == Some(&Value::Boolean(true)))
    }

    /// The caveats, read.
    pub(crate) fn caveats(&self) -> Vec<SimCaveat> {
        self.caveats
            .iter()
            .map(|(k, b)| read_caveat(*k, b))
            .collect()
    }
}

/// Compares without stopping at the first difference.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn read_caveat(kind: u64, body: &Value) -> SimCaveat {
    let read = || -> Option<SimCaveat> {
        Some(match kind {
            ORGANIZATION => {
                let [id, mask] = two(body)?;
                SimCaveat::Organization {
                    id: id.as_u64()?,
                    mask: u16::try_from(mask.as_u64()?).ok()?,
                }
            }
            APPS => {
                let Value::Array(f) = body else { return None };
                let [Value::Map(m)] = f.as_slice() else {
                    return None;
                };
                let mut apps = Vec::new();
                for (k, v) in m {
                    apps.push((k.as_u64()?, u16::try_from(v.as_u64()?).ok()?));
                }
                SimCaveat::Apps(apps)
            }
            VALIDITY_WINDOW => {
                let [nb, na] = two(body)?;
                SimCaveat::ValidityWindow {
                    not_before: nb.as_i64()?,
                    not_after: na.as_i64()?,
                }
            }
            IF_PRESENT => {
                let [ifs, otherwise] = two(body)?;
                let Value::Array(flat) = ifs else { return None };
                if flat.len() % 2 != 0 {
                    return None;
                }
                let inner = flat
                    .chunks(2)
                    .map(|p| match p {
                        [k, b] => k.as_u64().map(|k| read_caveat(k, b)),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?;
                SimCaveat::IfPresent {
                    ifs: inner,
                    otherwise: u16::try_from(otherwise.as_u64()?).ok()?,
                }
            }
            ACTION => SimCaveat::Action(u16::try_from(body.as_u64()?).ok()?),
            IS_USER => SimCaveat::Inert(kind),
            _ => return None,
        })
    };
    read().unwrap_or(SimCaveat::Unknown(kind))
}

fn two(body: &Value) -> Option<[Value; 2]> {
    let Value::Array(f) = body else { return None };
    f.clone().try_into().ok()
}

fn caveat_value(c: &SimCaveat) -> Option<(u64, Value)> {
    Some(match c {
        SimCaveat::Organization { id, mask } => (
            ORGANIZATION,
            Value::Array(vec![Value::from(*id), Value::from(*mask)]),
        ),
        SimCaveat::Apps(apps) => {
            let mut sorted = apps.clone();
            sorted.sort_unstable();
            (
                APPS,
                Value::Array(vec![Value::Map(
                    sorted
                        .into_iter()
                        .map(|(id, m)| (Value::from(id), Value::from(m)))
                        .collect(),
                )]),
            )
        }
        SimCaveat::ValidityWindow {
            not_before,
            not_after,
        } => (
            VALIDITY_WINDOW,
            Value::Array(vec![Value::from(*not_before), Value::from(*not_after)]),
        ),
        SimCaveat::Action(mask) => (ACTION, Value::from(*mask)),
        SimCaveat::IfPresent { ifs, otherwise } => {
            let mut flat = Vec::new();
            for c in ifs {
                let (k, b) = caveat_value(c)?;
                flat.push(Value::from(k));
                flat.push(b);
            }
            (
                IF_PRESENT,
                Value::Array(vec![Value::Array(flat), Value::from(*otherwise)]),
            )
        }
        SimCaveat::Inert(_) | SimCaveat::Unknown(_) => return None,
    })
}

/// Mints a permission token (`FlyV1 fm2_…`) under `root_key` with `caveats`:
/// `Macaroon.New` (nonce `[kid, 16 random bytes, false]`, tail `HMAC(key, nonce)`),
/// then `Add` for each caveat.
pub(crate) fn mint(root_key: &[u8], kid: &[u8], rnd: &[u8], caveats: &[SimCaveat]) -> String {
    let nonce = Value::Array(vec![
        Value::Binary(kid.to_vec()),
        Value::Binary(rnd.to_vec()),
        Value::Boolean(false),
    ]);
    let mut tail = hmac(root_key, &encode_value(&nonce));
    let mut flat = Vec::new();
    for c in caveats {
        if let Some((kind, body)) = caveat_value(c) {
            tail = hmac(&tail, &packed(kind, &body));
            flat.push(Value::from(kind));
            flat.push(body);
        }
    }
    let token = Value::Array(vec![
        nonce,
        Value::from(PERMISSION_LOCATION),
        Value::Array(flat),
        Value::Binary(tail),
    ]);
    format!("fm2_{}", BASE64.encode(encode_value(&token)))
}

/// The simulator's root key, from its seed (a simulator needs no secrecy, only a key
/// clients do not have).
pub(crate) fn root_key(seed: u64) -> Vec<u8> {
    hmac(&seed.to_le_bytes(), b"fly-machines-mcp simulator root key")
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!("../../tests/it/fly/fixtures/macaroon-vectors.json");

    #[test]
    fn verifies_every_vector_token_with_its_key_and_no_other() {
        let v: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        let key = BASE64.decode(v["key"].as_str().unwrap()).unwrap();
        let mut checked = 0;
        for (name, header) in v["macaroons"].as_object().unwrap() {
            let tokens = parse_header(header.as_str().unwrap()).unwrap();
            let t = &tokens[0];
            // Attestations live in discharges, signed by the third party's key.
            let kid = BASE64.decode(v["kid"].as_str().unwrap()).unwrap();
            let Value::Array(nonce) = &t.nonce else {
                panic!()
            };
            if nonce[0] != Value::Binary(kid) {
                continue;
            }
            assert!(t.verify(&key), "{name}");
            assert!(!t.verify(b"another key"), "{name}");
            checked += 1;
        }
        assert!(checked >= 18, "{checked}");
        // Attenuated without the key (by a client): still verifies with the key.
        for cases in v["attenuation"].as_object().unwrap().values() {
            for header in cases.as_object().unwrap().values() {
                let tokens = parse_header(header.as_str().unwrap()).unwrap();
                let perm = tokens
                    .iter()
                    .find(|t| t.location == v["location"].as_str().unwrap())
                    .unwrap();
                assert!(perm.verify(&key), "{header}");
            }
        }
    }

    #[test]
    fn minted_tokens_verify_and_a_changed_caveat_does_not() {
        let key = root_key(7);
        let header = mint(
            &key,
            b"kid",
            &[1; 16],
            &[
                SimCaveat::Organization { id: 5, mask: 31 },
                SimCaveat::Apps(vec![(9, 1), (3, 31)]),
            ],
        );
        let tokens = parse_header(&format!("Bearer FlyV1 {header}")).unwrap();
        assert!(tokens[0].verify(&key));
        assert_eq!(
            tokens[0].caveats()[1],
            SimCaveat::Apps(vec![(3, 31), (9, 1)])
        );
        let mut forged = tokens[0].clone();
        forged.caveats[0].1 = Value::Array(vec![Value::from(6u64), Value::from(31u64)]);
        assert!(!forged.verify(&key));
        let mut stripped = tokens[0].clone();
        stripped.caveats.pop();
        assert!(!stripped.verify(&key));
        assert!(parse_header("plain-token").is_none());
        assert!(parse_header("fm2_sim-not-base64").is_none());
    }
}
