//! Fly macaroons (superfly/macaroon's token format): decode a `FlyV1` header into its
//! tokens, re-encode them byte for byte, and attenuate (append caveats) without Fly's key.
//!
//! Facts, from superfly/macaroon (`macaroon.go`, `caveat_set.go`, `caveat.go`,
//! `nonce.go`, `format.go`, `flyio/caveats.go`, `resset/*.go`):
//! - a header is comma-joined tokens, each `fm2_` (or `fm1r_` / `fm1a_`) + standard
//!   base64 with padding of a msgpack array `[nonce, location, caveats, tail]`, encoded
//!   as Go's msgpack v5 does with `UseCompactInts` and `UseArrayEncodedStructs`;
//! - caveats are ONE flat array `[type, body, type, body, …]`; a body is the caveat
//!   struct encoded as an array (`Action` is a bare integer);
//! - appending a caveat: `tail = HMAC-SHA256(key = tail, msg = msgpack([type, body]))`
//!   (`Macaroon.Add`), skipping a caveat whose packed bytes the token already has;
//! - permission tokens have location `https://api.fly.io/v1` (`flyio.LocationPermission`);
//!   the others are discharges of third-party caveats and pass through unchanged.
//!
//! Caveat bodies are kept as the bytes that came in, so a caveat type this module does
//! not know survives a decode and re-encode untouched; the types it builds
//! ([`Caveat`]) encode exactly as Go does (the vectors in the tests prove both).
//!
//! A token's tail is what makes it a credential: `Macaroon` and `Bundle` never
//! print it (their `Debug` is redacted) and nothing here logs.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Location of Fly's permission tokens (`flyio.LocationPermission`).
pub(crate) const PERMISSION_LOCATION: &str = "https://api.fly.io/v1";

/// Caveat type numbers (superfly/macaroon `caveat.go`).
pub(crate) mod kind {
    pub const ORGANIZATION: u64 = 0;
    pub const APPS: u64 = 3;
    pub const VALIDITY_WINDOW: u64 = 4;
    pub const IF_PRESENT: u64 = 13;
    pub const ACTION: u64 = 26;
}

/// Names of the caveat types of `caveat.go`, for describing a token.
fn kind_name(kind: u64) -> Option<&'static str> {
    Some(match kind {
        0 => "Organization",
        2 => "Volumes",
        3 => "Apps",
        4 => "ValidityWindow",
        5 => "FeatureSet",
        6 => "Mutations",
        7 => "Machines",
        8 => "ConfineUser",
        9 => "ConfineOrganization",
        10 => "IsUser",
        11 => "ThirdParty",
        12 => "BindToParentToken",
        13 => "IfPresent",
        14 => "MachineFeatureSet",
        15 => "FromMachineSource",
        16 => "Clusters",
        19 => "ConfineGoogleHD",
        20 => "ConfineGitHubOrg",
        21 => "MaxValidity",
        22 => "IsMember",
        23 => "FlyioUserID",
        24 => "GitHubUserID",
        25 => "GoogleUserID",
        26 => "Action",
        27 => "Commands",
        28 => "AppFeatureSet",
        29 => "StorageObjects",
        30 => "AllowedRoles",
        31 => "FlySrc",
        _ => return None,
    })
}

/// An RWX-style action mask (`resset.Action`): r=1 w=2 c=4 d=8 C=16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Action(pub u16);

impl Action {
    /// Read attributes.
    pub const READ: Action = Action(1);
    /// Write attributes.
    pub const WRITE: Action = Action(2);
    /// Create (children of the resource).
    pub const CREATE: Action = Action(4);
    /// Delete.
    pub const DELETE: Action = Action(8);
    /// Control (start, stop, signal).
    pub const CONTROL: Action = Action(16);
    /// Every action `resset` defines.
    pub const ALL: Action = Action(31);

    /// The union of two masks.
    pub const fn union(self, other: Action) -> Action {
        Action(self.0 | other.0)
    }

    /// The bits of `self` also in `other`.
    pub const fn intersect(self, other: Action) -> Action {
        Action(self.0 & other.0)
    }

    /// Whether every bit of `self` is in `other` (`resset.IsSubsetOf`).
    pub const fn is_subset_of(self, other: Action) -> bool {
        self.0 & other.0 == self.0
    }

    /// Letters as `resset.Action.String` writes them (`rwcdC`); `none` when empty.
    pub fn letters(self) -> String {
        let mut s = String::new();
        for (bit, c) in [(1, 'r'), (2, 'w'), (4, 'c'), (8, 'd'), (16, 'C')] {
            if self.0 & bit != 0 {
                s.push(c);
            }
        }
        if s.is_empty() {
            s.push_str("none");
        }
        s
    }

    /// In words: `read, write, create, delete, control`.
    pub fn words(self) -> String {
        let names: Vec<&str> = [
            (1, "read"),
            (2, "write"),
            (4, "create"),
            (8, "delete"),
            (16, "control"),
        ]
        .into_iter()
        .filter(|(bit, _)| self.0 & bit != 0)
        .map(|(_, n)| n)
        .collect();
        if names.is_empty() {
            "nothing".to_owned()
        } else {
            names.join(", ")
        }
    }
}

/// A caveat as it travels: its type and its msgpack body, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawCaveat {
    pub(crate) kind: u64,
    pub(crate) body: Vec<u8>,
}

impl RawCaveat {
    /// `msgpack([type, body])`: what the tail is chained over (`NewCaveatSet(c).MarshalMsgpack`).
    pub(crate) fn packed(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.body.len() + 10);
        write_array_len(&mut buf, 2);
        write_uint(&mut buf, self.kind);
        buf.extend_from_slice(&self.body);
        buf
    }
}

/// The caveats this project builds and reads; any other type stays [`Caveat::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caveat {
    /// `flyio.Organization`: only org `id`, with at most `mask`.
    Organization {
        /// The org's internal numeric id.
        id: u64,
        /// What may be done in it.
        mask: Action,
    },
    /// `flyio.Apps`: only these apps (internal numeric id → mask).
    Apps(BTreeMap<u64, Action>),
    /// `macaroon.ValidityWindow`: valid from `not_before` to `not_after` (Unix seconds).
    ValidityWindow {
        /// First second of validity.
        not_before: i64,
        /// Last second of validity.
        not_after: i64,
    },
    /// `resset.IfPresent`: `ifs` apply when the request names their resource, else the
    /// request may do at most `otherwise`.
    IfPresent {
        /// The conditional caveats.
        ifs: Vec<Caveat>,
        /// The mask for requests that name none of their resources.
        otherwise: Action,
    },
    /// `resset.Action`: at most `mask`, whatever the resource.
    Action(Action),
    /// A type this module does not interpret, kept byte for byte.
    Other {
        /// The caveat type number.
        kind: u64,
        /// The msgpack body.
        body: Vec<u8>,
    },
}

impl Caveat {
    /// The caveat type number.
    pub fn kind(&self) -> u64 {
        match self {
            Caveat::Organization { .. } => kind::ORGANIZATION,
            Caveat::Apps(_) => kind::APPS,
            Caveat::ValidityWindow { .. } => kind::VALIDITY_WINDOW,
            Caveat::IfPresent { .. } => kind::IF_PRESENT,
            Caveat::Action(_) => kind::ACTION,
            Caveat::Other { kind, .. } => *kind,
        }
    }

    /// The type's name in superfly/macaroon, or its number.
    pub fn name(&self) -> String {
        kind_name(self.kind()).map_or_else(|| format!("caveat type {}", self.kind()), str::to_owned)
    }

    /// Encodes the body as Go's msgpack v5 does (compact integers, structs as arrays).
    pub(crate) fn to_raw(&self) -> RawCaveat {
        let mut body = Vec::new();
        match self {
            Caveat::Organization { id, mask } => {
                write_array_len(&mut body, 2);
                write_uint(&mut body, *id);
                write_uint(&mut body, u64::from(mask.0));
            }
            Caveat::Apps(apps) => {
                // A struct of one field (`Apps`) holding a map sorted by id
                // (`resset.ResourceSet.EncodeMsgpack` sorts for a canonical encoding).
                write_array_len(&mut body, 1);
                write_map_len(&mut body, apps.len());
                for (id, mask) in apps {
                    write_uint(&mut body, *id);
                    write_uint(&mut body, u64::from(mask.0));
                }
            }
            Caveat::ValidityWindow {
                not_before,
                not_after,
            } => {
                write_array_len(&mut body, 2);
                write_sint(&mut body, *not_before);
                write_sint(&mut body, *not_after);
            }
            Caveat::IfPresent { ifs, otherwise } => {
                write_array_len(&mut body, 2);
                let raws: Vec<RawCaveat> = ifs.iter().map(Caveat::to_raw).collect();
                write_caveat_set(&mut body, &raws);
                write_uint(&mut body, u64::from(otherwise.0));
            }
            Caveat::Action(mask) => write_uint(&mut body, u64::from(mask.0)),
            Caveat::Other { body: b, .. } => body.extend_from_slice(b),
        }
        RawCaveat {
            kind: self.kind(),
            body,
        }
    }

    /// Reads a caveat of a known type; anything unexpected stays [`Caveat::Other`].
    pub(crate) fn from_raw(raw: &RawCaveat) -> Caveat {
        let typed = match raw.kind {
            kind::ORGANIZATION => read_pair(&raw.body).and_then(|(id, mask)| {
                Some(Caveat::Organization {
                    id: u64::try_from(id).ok()?,
                    mask: Action(u16::try_from(mask).ok()?),
                })
            }),
            kind::APPS => read_apps(&raw.body).map(Caveat::Apps),
            kind::VALIDITY_WINDOW => read_pair(&raw.body).and_then(|(not_before, not_after)| {
                Some(Caveat::ValidityWindow {
                    not_before: i64::try_from(not_before).ok()?,
                    not_after: i64::try_from(not_after).ok()?,
                })
            }),
            kind::IF_PRESENT => read_if_present(&raw.body),
            kind::ACTION => read_whole(&raw.body, |rd| {
                let mask: u16 = rmp::decode::read_int(rd).ok()?;
                Some(Caveat::Action(Action(mask)))
            }),
            _ => None,
        };
        // Only a body that re-encodes to the same bytes is taken as typed: the chain is
        // over the bytes, and a caveat we re-encode differently must not be "understood".
        match typed {
            Some(c) if c.to_raw().body == raw.body => c,
            _ => Caveat::Other {
                kind: raw.kind,
                body: raw.body.clone(),
            },
        }
    }

    /// The caveat in words (`org 1234: read, write`), for `auth status`. `org_name`
    /// turns an org id into a slug when the caller knows it.
    pub fn describe(&self, org_name: &dyn Fn(u64) -> Option<String>) -> String {
        match self {
            Caveat::Organization { id, mask } => {
                let org =
                    org_name(*id).map_or_else(|| format!("#{id}"), |s| format!("{s} (#{id})"));
                format!("only organization {org}; actions: {}", mask.words())
            }
            Caveat::Apps(apps) if apps.is_empty() => "no app at all".to_owned(),
            Caveat::Apps(apps) => {
                let list: Vec<String> = apps
                    .iter()
                    .map(|(id, mask)| format!("app #{id} ({})", mask.words()))
                    .collect();
                format!("only {}", list.join(", "))
            }
            Caveat::ValidityWindow {
                not_before,
                not_after,
            } => format!(
                "valid from {} until {}",
                unix_text(*not_before),
                unix_text(*not_after)
            ),
            Caveat::IfPresent { ifs, otherwise } => {
                let inner: Vec<String> = ifs.iter().map(|c| c.describe(org_name)).collect();
                format!(
                    "when the request names its resource: {}; otherwise actions: {}",
                    inner.join("; "),
                    otherwise.words()
                )
            }
            Caveat::Action(mask) => format!("actions: {}", mask.words()),
            Caveat::Other { .. } => format!("{} (not interpreted here)", self.name()),
        }
    }
}

fn unix_text(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).map_or_else(|_| secs.to_string(), |t| t.to_string())
}

/// Why a token could not be decoded. Never carries any part of the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A part is not valid standard base64.
    #[error("part {part} is not valid base64")]
    Base64 {
        /// 1-based position in the header.
        part: usize,
    },
    /// A part is not a msgpack macaroon `[nonce, location, caveats, tail]`.
    #[error("part {part} is not a Fly macaroon ({what})")]
    Format {
        /// 1-based position in the header.
        part: usize,
        /// What was wrong.
        what: &'static str,
    },
    /// The header holds no macaroon at all.
    #[error("no macaroon in the token")]
    NoMacaroon,
}

/// One decoded macaroon. `Debug` leaves the tail (the credential) out.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Macaroon {
    /// The nonce, as its msgpack bytes (`[kid, rnd]` or `[kid, rnd, proof]`).
    nonce: Vec<u8>,
    proof: bool,
    location: String,
    caveats: Vec<RawCaveat>,
    tail: Vec<u8>,
}

impl std::fmt::Debug for Macaroon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Macaroon")
            .field("location", &self.location)
            .field("caveats", &self.caveats.len())
            .finish_non_exhaustive()
    }
}

impl Macaroon {
    /// Decodes the msgpack bytes of one token.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Macaroon, &'static str> {
        let mut rd: &[u8] = bytes;
        if rmp::decode::read_array_len(&mut rd).map_err(|_| "not an array")? != 4 {
            return Err("not 4 fields");
        }
        let (nonce, proof) = read_nonce(&mut rd)?;
        let location = read_str(&mut rd).ok_or("bad location")?;
        let caveats = read_caveat_set(&mut rd).ok_or("bad caveats")?;
        let len = rmp::decode::read_bin_len(&mut rd).map_err(|_| "bad tail")?;
        let tail = take(&mut rd, len).ok_or("short tail")?.to_vec();
        if !rd.is_empty() {
            return Err("trailing bytes");
        }
        Ok(Macaroon {
            nonce,
            proof,
            location,
            caveats,
            tail,
        })
    }

    /// Encodes as `Macaroon.Encode` does.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.nonce.len() + self.location.len() + 64);
        write_array_len(&mut buf, 4);
        buf.extend_from_slice(&self.nonce);
        write_str(&mut buf, &self.location);
        write_caveat_set(&mut buf, &self.caveats);
        write_bin(&mut buf, &self.tail);
        buf
    }

    /// The token's location (a URL for Fly's tokens).
    pub(crate) fn location(&self) -> &str {
        &self.location
    }

    /// The caveats, read where their type is known.
    pub(crate) fn caveats(&self) -> Vec<Caveat> {
        self.caveats.iter().map(Caveat::from_raw).collect()
    }

    /// Appends caveats, chaining the tail over each one (`Macaroon.Add`). A caveat whose
    /// packed bytes the token already carries is skipped, as Go's `dedup` does.
    pub(crate) fn attenuate(&mut self, caveats: &[Caveat]) {
        for cav in caveats {
            let raw = cav.to_raw();
            let packed = raw.packed();
            if self.caveats.iter().any(|c| c.packed() == packed) {
                continue;
            }
            self.tail = sign(&self.tail, &packed);
            self.caveats.push(raw);
        }
    }

    #[cfg(test)]
    pub(crate) fn tail(&self) -> &[u8] {
        &self.tail
    }
}

/// HMAC-SHA256 (`crypto.go` `sign`).
fn sign(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length, so this never fails; the fallback keeps the
    // signature (and so the token) wrong rather than panicking.
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(msg);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// One comma-separated part of a header.
#[derive(Clone)]
enum Part {
    /// A macaroon (`fm2_`, `fm1r_`, `fm1a_`): its text as given and its decoding.
    Macaroon { text: String, mac: Macaroon },
    /// Anything else (an OAuth `fo1_` token, a personal token), as given.
    Other(String),
}

/// The tokens of a `FlyV1` header, decoded. `Debug` shows no token.
#[derive(Clone)]
pub(crate) struct Bundle {
    parts: Vec<Part>,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let macs: Vec<&Macaroon> = self.macaroons().collect();
        f.debug_struct("Bundle")
            .field("macaroons", &macs)
            .field("others", &(self.parts.len() - macs.len()))
            .finish()
    }
}

/// Whether a part is a macaroon by its prefix (fly-go `tokens.Parse`).
pub(crate) fn is_macaroon_part(part: &str) -> bool {
    matches!(part.split_once('_'), Some(("fm1r" | "fm1a" | "fm2", _)))
}

impl Bundle {
    /// Decodes comma-joined tokens (scheme already stripped). Every macaroon part must
    /// decode; other parts are kept as they are.
    pub(crate) fn parse(tokens: &str) -> Result<Bundle, DecodeError> {
        let mut parts = Vec::new();
        for (i, text) in tokens
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .enumerate()
        {
            let part = i + 1;
            match text.split_once('_') {
                Some(("fm1r" | "fm1a" | "fm2", b64)) => {
                    let bytes = BASE64
                        .decode(b64)
                        .map_err(|_| DecodeError::Base64 { part })?;
                    let mac = Macaroon::decode(&bytes)
                        .map_err(|what| DecodeError::Format { part, what })?;
                    parts.push(Part::Macaroon {
                        text: text.to_owned(),
                        mac,
                    });
                }
                _ => parts.push(Part::Other(text.to_owned())),
            }
        }
        let bundle = Bundle { parts };
        if bundle.macaroons().next().is_none() {
            return Err(DecodeError::NoMacaroon);
        }
        Ok(bundle)
    }

    /// The macaroons, in header order.
    pub(crate) fn macaroons(&self) -> impl Iterator<Item = &Macaroon> {
        self.parts.iter().filter_map(|p| match p {
            Part::Macaroon { mac, .. } => Some(mac),
            Part::Other(_) => None,
        })
    }

    /// Whether some permission token (at `location`) can take caveats.
    pub(crate) fn attenuable(&self, location: &str) -> bool {
        self.macaroons().any(|m| m.location == location && !m.proof)
    }

    /// The header's tokens (no scheme) with `caveats` appended to every permission
    /// token at `location`; discharges and other parts unchanged. `macaroons_only`
    /// leaves the non-macaroon parts out (the Machines and logs APIs take macaroons
    /// only; GraphQL takes both, macaroons first: fly-go `tokens.normalized`).
    pub(crate) fn render(
        &self,
        location: &str,
        caveats: &[Caveat],
        macaroons_only: bool,
    ) -> String {
        let mut macs = Vec::new();
        let mut others = Vec::new();
        for part in &self.parts {
            match part {
                Part::Macaroon { text, mac } => {
                    if caveats.is_empty() || mac.location != location || mac.proof {
                        macs.push(text.clone());
                    } else {
                        let mut m = mac.clone();
                        m.attenuate(caveats);
                        macs.push(format!("fm2_{}", BASE64.encode(m.encode())));
                    }
                }
                Part::Other(text) => others.push(text.clone()),
            }
        }
        if !macaroons_only {
            macs.extend(others);
        }
        macs.join(",")
    }
}

// ---- msgpack, as Go's msgpack v5 writes it with compact ints ----
// Writing into a Vec cannot fail, so the writers' results carry nothing.

fn write_array_len(buf: &mut Vec<u8>, len: usize) {
    let _ = rmp::encode::write_array_len(buf, u32::try_from(len).unwrap_or(u32::MAX));
}

fn write_map_len(buf: &mut Vec<u8>, len: usize) {
    let _ = rmp::encode::write_map_len(buf, u32::try_from(len).unwrap_or(u32::MAX));
}

fn write_uint(buf: &mut Vec<u8>, v: u64) {
    let _ = rmp::encode::write_uint(buf, v);
}

/// Go's `EncodeInt` with compact ints: non-negative values as the smallest uint.
fn write_sint(buf: &mut Vec<u8>, v: i64) {
    let _ = rmp::encode::write_sint(buf, v);
}

fn write_str(buf: &mut Vec<u8>, s: &str) {
    let _ = rmp::encode::write_str(buf, s);
}

fn write_bin(buf: &mut Vec<u8>, b: &[u8]) {
    let _ = rmp::encode::write_bin(buf, b);
}

/// `CaveatSet.EncodeMsgpack`: `[type, body, type, body, …]`.
fn write_caveat_set(buf: &mut Vec<u8>, caveats: &[RawCaveat]) {
    write_array_len(buf, caveats.len() * 2);
    for c in caveats {
        write_uint(buf, c.kind);
        buf.extend_from_slice(&c.body);
    }
}

fn take<'a>(rd: &mut &'a [u8], len: u32) -> Option<&'a [u8]> {
    let len = usize::try_from(len).ok()?;
    if rd.len() < len {
        return None;
    }
    let (head, rest) = rd.split_at(len);
    *rd = rest;
    Some(head)
}

/// The raw bytes of the next msgpack value.
fn read_raw_value<'a>(rd: &mut &'a [u8]) -> Option<&'a [u8]> {
    let start: &'a [u8] = rd;
    let mut cursor: &[u8] = rd;
    rmpv::decode::read_value(&mut cursor).ok()?;
    let used = start.len() - cursor.len();
    let (value, rest) = start.split_at(used);
    *rd = rest;
    Some(value)
}

fn read_str(rd: &mut &[u8]) -> Option<String> {
    let len = rmp::decode::read_str_len(rd).ok()?;
    let bytes = take(rd, len)?;
    String::from_utf8(bytes.to_vec()).ok()
}

/// `Nonce.DecodeMsgpack`: `[kid bin, rnd bin]` or `[kid, rnd, proof bool]`.
fn read_nonce(rd: &mut &[u8]) -> Result<(Vec<u8>, bool), &'static str> {
    let raw = read_raw_value(rd).ok_or("bad nonce")?;
    let mut inner: &[u8] = raw;
    let fields = rmp::decode::read_array_len(&mut inner).map_err(|_| "bad nonce")?;
    if !(fields == 2 || fields == 3) {
        return Err("bad nonce");
    }
    for _ in 0..2 {
        let len = rmp::decode::read_bin_len(&mut inner).map_err(|_| "bad nonce")?;
        take(&mut inner, len).ok_or("bad nonce")?;
    }
    let proof = if fields == 3 {
        rmp::decode::read_bool(&mut inner).map_err(|_| "bad nonce")?
    } else {
        false
    };
    Ok((raw.to_vec(), proof))
}

/// `CaveatSet.DecodeMsgpack`: an even-length array of `type, body`.
fn read_caveat_set(rd: &mut &[u8]) -> Option<Vec<RawCaveat>> {
    let len = rmp::decode::read_array_len(rd).ok()?;
    if len % 2 != 0 {
        return None;
    }
    let mut out = Vec::new();
    for _ in 0..len / 2 {
        let kind: u64 = rmp::decode::read_int(rd).ok()?;
        let body = read_raw_value(rd)?.to_vec();
        out.push(RawCaveat { kind, body });
    }
    Some(out)
}

/// Runs `f` on the whole of `body`; `None` unless it reads every byte.
fn read_whole<T>(body: &[u8], f: impl FnOnce(&mut &[u8]) -> Option<T>) -> Option<T> {
    let mut rd: &[u8] = body;
    let out = f(&mut rd)?;
    rd.is_empty().then_some(out)
}

fn read_pair(body: &[u8]) -> Option<(i128, i128)> {
    read_whole(body, |rd| {
        if rmp::decode::read_array_len(rd).ok()? != 2 {
            return None;
        }
        let a: i128 = rmp::decode::read_int(rd).ok()?;
        let b: i128 = rmp::decode::read_int(rd).ok()?;
        Some((a, b))
    })
}

fn read_apps(body: &[u8]) -> Option<BTreeMap<u64, Action>> {
    read_whole(body, |rd| {
        if rmp::decode::read_array_len(rd).ok()? != 1 {
            return None;
        }
        let n = rmp::decode::read_map_len(rd).ok()?;
        let mut apps = BTreeMap::new();
        for _ in 0..n {
            let id: u64 = rmp::decode::read_int(rd).ok()?;
            let mask: u16 = rmp::decode::read_int(rd).ok()?;
            apps.insert(id, Action(mask));
        }
        Some(apps)
    })
}

fn read_if_present(body: &[u8]) -> Option<Caveat> {
    read_whole(body, |rd| {
        if rmp::decode::read_array_len(rd).ok()? != 2 {
            return None;
        }
        let ifs = read_caveat_set(rd)?;
        let otherwise: u16 = rmp::decode::read_int(rd).ok()?;
        Some(Caveat::IfPresent {
            ifs: ifs.iter().map(Caveat::from_raw).collect(),
            otherwise: Action(otherwise),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// superfly/macaroon-elixir `test/vectors.json` (see the reference SOURCES).
    const VECTORS: &str = include_str!("../../tests/it/fly/fixtures/macaroon-vectors.json");

    fn vectors() -> Value {
        serde_json::from_str(VECTORS).unwrap()
    }

    fn strip(header: &str) -> &str {
        header.strip_prefix("FlyV1 ").unwrap()
    }

    /// Every token of a header decodes and re-encodes to the same bytes.
    fn assert_round_trip(header: &str) {
        for (i, text) in strip(header).split(',').enumerate() {
            let (_, b64) = text.split_once('_').unwrap();
            let bytes = BASE64.decode(b64).unwrap();
            let mac = Macaroon::decode(&bytes).unwrap_or_else(|e| panic!("part {i}: {e}"));
            assert_eq!(mac.encode(), bytes, "part {i} of {header}");
        }
        let bundle = Bundle::parse(strip(header)).unwrap();
        assert_eq!(
            bundle.render(PERMISSION_LOCATION, &[], false),
            strip(header)
        );
    }

    #[test]
    fn every_vector_token_decodes_and_re_encodes_byte_for_byte() {
        let v = vectors();
        let macaroons = v["macaroons"].as_object().unwrap();
        assert!(macaroons.len() >= 20);
        for (name, header) in macaroons {
            let header = header.as_str().unwrap();
            assert_round_trip(header);
            let bundle = Bundle::parse(strip(header)).unwrap();
            let mac = bundle.macaroons().next().unwrap();
            assert_eq!(mac.location(), v["location"].as_str().unwrap(), "{name}");
        }
        assert_round_trip(v["with_tps"].as_str().unwrap());
        for (base, cases) in v["attenuation"].as_object().unwrap() {
            assert_round_trip(base);
            for expected in cases.as_object().unwrap().values() {
                assert_round_trip(expected.as_str().unwrap());
            }
        }
    }

    #[test]
    fn every_vector_caveat_decodes_and_re_encodes_and_known_ones_are_typed() {
        let v = vectors();
        let mut typed = 0;
        for (name, packed) in v["caveats"].as_object().unwrap() {
            let bytes = BASE64.decode(packed.as_str().unwrap()).unwrap();
            let mut rd: &[u8] = &bytes;
            let set = read_caveat_set(&mut rd).unwrap();
            assert!(rd.is_empty(), "{name}");
            assert_eq!(set.len(), 1, "{name}");
            let mut again = Vec::new();
            write_caveat_set(&mut again, &set);
            assert_eq!(again, bytes, "{name}");
            // Read through the typed form (or Other) and write back: the same bytes.
            let cav = Caveat::from_raw(&set[0]);
            assert_eq!(cav.to_raw().packed(), bytes, "{name}");
            if !matches!(cav, Caveat::Other { .. }) {
                typed += 1;
            }
        }
        // Organization {123, rwcdC} is the one vector of a type built here.
        let org = BASE64
            .decode(v["caveats"]["Organization"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            Caveat::Organization {
                id: 123,
                mask: Action::ALL
            }
            .to_raw()
            .packed(),
            org
        );
        assert_eq!(typed, 1);
    }

    #[test]
    fn every_attenuation_vector_is_reproduced_byte_for_byte() {
        let v = vectors();
        let location = v["location"].as_str().unwrap();
        let mut count = 0;
        for (base, cases) in v["attenuation"].as_object().unwrap() {
            let bundle = Bundle::parse(strip(base)).unwrap();
            for (packed, expected) in cases.as_object().unwrap() {
                let bytes = BASE64.decode(packed).unwrap();
                let mut rd: &[u8] = &bytes;
                let set = read_caveat_set(&mut rd).unwrap();
                let caveats: Vec<Caveat> = set.iter().map(Caveat::from_raw).collect();
                let got = format!("FlyV1 {}", bundle.render(location, &caveats, false));
                assert_eq!(got, expected.as_str().unwrap(), "caveats {packed}");
                count += 1;
            }
        }
        assert_eq!(count, 19);
    }

    #[test]
    fn unknown_caveats_survive_attenuation() {
        let v = vectors();
        let location = v["location"].as_str().unwrap();
        // FlySrc (31) and a user-defined Struct caveat are not interpreted here.
        for name in ["FlySrc", "Struct", "Mutations"] {
            let header = v["macaroons"][name].as_str().unwrap();
            let bundle = Bundle::parse(strip(header)).unwrap();
            let before = bundle.macaroons().next().unwrap().clone();
            let out = bundle.render(location, &[Caveat::Action(Action::READ)], false);
            let after = Bundle::parse(&out).unwrap();
            let mac = after.macaroons().next().unwrap();
            assert_eq!(mac.caveats.len(), before.caveats.len() + 1, "{name}");
            assert_eq!(
                mac.caveats[..before.caveats.len()],
                before.caveats[..],
                "{name}"
            );
            assert!(matches!(mac.caveats()[0], Caveat::Other { .. }), "{name}");
            assert_eq!(mac.caveats().last(), Some(&Caveat::Action(Action::READ)));
            assert_ne!(mac.tail(), before.tail());
        }
    }

    #[test]
    fn built_caveats_encode_as_go_does() {
        // Compact ints, structs as arrays, maps sorted by key.
        let apps = Caveat::Apps(BTreeMap::from([(300, Action::READ), (7, Action::ALL)]));
        assert_eq!(
            apps.to_raw().body,
            vec![0x91, 0x82, 0x07, 0x1f, 0xcd, 0x01, 0x2c, 0x01]
        );
        let vw = Caveat::ValidityWindow {
            not_before: 1_767_225_600,
            not_after: 1_767_225_900,
        };
        assert_eq!(
            vw.to_raw().body,
            vec![
                0x92, 0xce, 0x69, 0x55, 0xb9, 0x00, 0xce, 0x69, 0x55, 0xba, 0x2c
            ]
        );
        let ifp = Caveat::IfPresent {
            ifs: vec![Caveat::Apps(BTreeMap::from([(5, Action::READ)]))],
            otherwise: Action::READ,
        };
        assert_eq!(
            ifp.to_raw().body,
            vec![0x92, 0x92, 0x03, 0x91, 0x81, 0x05, 0x01, 0x01]
        );
        assert_eq!(
            Caveat::Action(Action(0xffff)).to_raw().body,
            vec![0xcd, 0xff, 0xff]
        );
        for c in [apps, vw, ifp] {
            assert_eq!(Caveat::from_raw(&c.to_raw()), c);
        }
    }

    #[test]
    fn fly_v1_parts_and_others() {
        assert!(is_macaroon_part("fm2_abc"));
        assert!(is_macaroon_part("fm1r_abc"));
        assert!(!is_macaroon_part("fo1_abc"));
        assert!(matches!(
            Bundle::parse("fm2_%%%"),
            Err(DecodeError::Base64 { part: 1 })
        ));
        assert!(matches!(
            Bundle::parse("fo1_x"),
            Err(DecodeError::NoMacaroon)
        ));
        assert_eq!(Action(0b10101).letters(), "rcC");
        assert_eq!(Action(0).words(), "nothing");
    }
}
