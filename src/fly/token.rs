//! The Fly API token: a `SecretString` plus the auth scheme it is sent with.
//!
//! Owns scheme detection (macaroon tokens go as `FlyV1`, others as `Bearer`), prefix
//! stripping (recursive: `Bearer FlyV1 fm2_…` is one token), which parts of a
//! comma-joined token each API gets, and the decoded macaroons that attenuation
//! appends caveats to. The secret is exposed in exactly one function,
//! [`Token::authorization`], which builds a header value marked sensitive. Knows
//! nothing of where a token came from (see `crate::config`) nor of which caveats a
//! call needs (see `attenuate.rs`).

use std::sync::Arc;

use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

use super::Error;
use super::macaroon::{self, Bundle, Caveat, DecodeError, PERMISSION_LOCATION};

/// How the token is presented in the `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthScheme {
    /// `Authorization: FlyV1 <macaroons>`.
    FlyV1,
    /// `Authorization: Bearer <token>` (OAuth / personal tokens).
    Bearer,
}

impl AuthScheme {
    /// The scheme word written before the token.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthScheme::FlyV1 => "FlyV1",
            AuthScheme::Bearer => "Bearer",
        }
    }
}

/// Which Fly API a header is for: they take different parts of a comma-joined token
/// (fly-go `tokens.Tokens`: `FlapsHeader` and `BubblegumHeader` send the macaroons
/// only when there are any, `GraphQLHeader` sends macaroons and user tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    /// The Machines REST API.
    Machines,
    /// The logs API (`/api/v1/apps/{app}/logs`).
    Logs,
    /// GraphQL.
    GraphQl,
}

/// A Fly API token. `Debug` prints `Token(***)`; the value never leaves this type
/// except into a sensitive header.
#[derive(Clone)]
pub struct Token {
    /// The comma-joined tokens, scheme stripped.
    secret: SecretString,
    scheme: AuthScheme,
    /// The macaroons, decoded (`Err` when a macaroon part cannot be decoded, or there
    /// is none).
    decoded: Arc<Result<Bundle, DecodeError>>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// What one macaroon of a token says about itself: where it is for and its caveats
/// (never the signature, so never the credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacaroonSummary {
    /// Its location (`https://api.fly.io/v1` for permission tokens).
    pub location: String,
    /// A permission token (as opposed to a discharge of a third-party caveat).
    pub permission: bool,
    /// Its caveats, oldest first.
    pub caveats: Vec<Caveat>,
}

impl Token {
    /// Parses a token as a user would paste it: surrounding whitespace and leading
    /// `FlyV1 ` / `Bearer ` schemes (any number, any case: `Bearer FlyV1 fm2_…`) are
    /// stripped, then the scheme is picked again from the token itself. Returns `None`
    /// for an empty token.
    pub fn parse(raw: impl Into<String>) -> Option<Token> {
        let raw: String = raw.into();
        let unprefixed = strip_schemes(&raw);
        let parts: Vec<&str> = unprefixed
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if parts.is_empty() {
            return None;
        }
        let joined = parts.join(",");
        let scheme = if parts.iter().any(|p| macaroon::is_macaroon_part(p)) {
            AuthScheme::FlyV1
        } else {
            AuthScheme::Bearer
        };
        let decoded = Bundle::parse(&joined);
        Some(Token {
            secret: SecretString::from(joined),
            scheme,
            decoded: Arc::new(decoded),
        })
    }

    /// Parses a token held as a `SecretString` (see [`Token::parse`]).
    pub fn from_secret(secret: &SecretString) -> Option<Token> {
        Token::parse(secret.expose_secret().to_owned())
    }

    /// A one-way fingerprint of the token (SHA-256, hex), to tell two callers apart
    /// without holding their credential (a task is answered only to the token that
    /// started it).
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.secret.expose_secret().as_bytes());
        hex::encode(digest)
    }

    /// The scheme this token is sent with.
    pub fn scheme(&self) -> AuthScheme {
        self.scheme
    }

    /// Whether `text` contains this token or one of its comma-joined parts (a value
    /// about to leave the server, such as an app secret, must not carry it). Parts
    /// too short to be a credential are not looked for.
    pub fn appears_in(&self, text: &str) -> bool {
        self.secret
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|part| part.len() >= 8)
            .any(|part| text.contains(part))
    }

    /// Whether caveats can be appended: a macaroon token whose every part decodes,
    /// with a permission token that is not a finalized proof.
    pub fn attenuable(&self) -> bool {
        matches!(&*self.decoded, Ok(b) if b.attenuable(PERMISSION_LOCATION))
    }

    /// Why this macaroon token cannot be attenuated (`None` when it can, or when it is
    /// not a macaroon token at all). The text holds no part of the token.
    pub fn attenuation_problem(&self) -> Option<String> {
        if self.scheme != AuthScheme::FlyV1 {
            return None;
        }
        match &*self.decoded {
            Err(e) => Some(format!("the macaroon token cannot be decoded: {e}")),
            Ok(b) if !b.attenuable(PERMISSION_LOCATION) => Some(format!(
                "the token holds no permission macaroon (location {PERMISSION_LOCATION}) that can take caveats"
            )),
            Ok(_) => None,
        }
    }

    /// The macaroons of this token and their caveats (empty when it has none or they
    /// cannot be decoded): what `auth status` shows.
    pub fn macaroons(&self) -> Vec<MacaroonSummary> {
        match &*self.decoded {
            Ok(b) => b
                .macaroons()
                .map(|m| MacaroonSummary {
                    location: m.location().to_owned(),
                    permission: m.location() == PERMISSION_LOCATION,
                    caveats: m.caveats(),
                })
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The one place the secret is exposed: an `Authorization` header value for
    /// `audience`, with `caveats` appended to every permission macaroon (none: the
    /// token as it is), marked sensitive (so HTTP stacks never log it).
    pub(crate) fn authorization(
        &self,
        audience: Audience,
        caveats: &[Caveat],
    ) -> Result<HeaderValue, Error> {
        let macaroons_only = audience != Audience::GraphQl;
        let tokens = match &*self.decoded {
            Ok(bundle) => bundle.render(PERMISSION_LOCATION, caveats, macaroons_only),
            Err(_) => select_parts(self.secret.expose_secret(), macaroons_only),
        };
        let scheme = if tokens.split(',').any(macaroon::is_macaroon_part) {
            AuthScheme::FlyV1
        } else {
            AuthScheme::Bearer
        };
        let mut value =
            HeaderValue::try_from(format!("{} {tokens}", scheme.as_str())).map_err(|_| {
                Error::Invalid {
                    field: "token".into(),
                    rule: "must contain only visible ASCII characters".into(),
                }
            })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// The parts an API takes, for a token that does not decode: macaroons first, then
/// the others (GraphQL), or the macaroons alone when there are any (Machines, logs).
fn select_parts(tokens: &str, macaroons_only: bool) -> String {
    let (macs, others): (Vec<&str>, Vec<&str>) = tokens
        .split(',')
        .partition(|p| macaroon::is_macaroon_part(p));
    if macs.is_empty() {
        return others.join(",");
    }
    if macaroons_only {
        return macs.join(",");
    }
    macs.into_iter().chain(others).collect::<Vec<_>>().join(",")
}

/// Drops leading `FlyV1` / `Bearer` words (any case, any number), as pasted from a
/// header (fly-go `tokens.StripAuthorizationScheme` recurses the same way).
fn strip_schemes(s: &str) -> &str {
    let mut rest = s.trim();
    loop {
        let (first, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if first.eq_ignore_ascii_case("flyv1") || first.eq_ignore_ascii_case("bearer") {
            rest = tail.trim();
        } else {
            return rest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(t: &Token, audience: Audience) -> String {
        t.authorization(audience, &[])
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn macaroons_use_flyv1_and_others_bearer() {
        assert_eq!(Token::parse("fm2_abc").unwrap().scheme(), AuthScheme::FlyV1);
        assert_eq!(
            Token::parse("fm1r_abc").unwrap().scheme(),
            AuthScheme::FlyV1
        );
        assert_eq!(
            Token::parse("oauth,fm1a_abc").unwrap().scheme(),
            AuthScheme::FlyV1
        );
        assert_eq!(Token::parse("abc123").unwrap().scheme(), AuthScheme::Bearer);
    }

    #[test]
    fn pasted_scheme_is_stripped() {
        let t = Token::parse("  FlyV1 fm2_xyz\n").unwrap();
        assert_eq!(header(&t, Audience::Machines), "FlyV1 fm2_xyz");
        let t = Token::parse("Bearer fm2_xyz").unwrap();
        assert_eq!(header(&t, Audience::Machines), "FlyV1 fm2_xyz");
        let t = Token::parse("Bearer plain").unwrap();
        assert_eq!(header(&t, Audience::Machines), "Bearer plain");
        assert!(Token::parse("  ").is_none());
        assert!(Token::parse("Bearer ").is_none());
    }

    /// Issue 18 item 8: `Bearer FlyV1 fm2_…` (a header pasted with its scheme, then
    /// given a scheme again) is one macaroon token, sent as `FlyV1 fm2_…`. The old
    /// code stripped one word and sent `Bearer FlyV1 fm2_…`.
    #[test]
    fn pasted_schemes_are_stripped_recursively() {
        for raw in [
            "Bearer FlyV1 fm2_xyz",
            "bearer  flyv1\tfm2_xyz",
            "FlyV1 Bearer FlyV1 fm2_xyz",
        ] {
            let t = Token::parse(raw).unwrap();
            assert_eq!(t.scheme(), AuthScheme::FlyV1, "{raw}");
            assert_eq!(header(&t, Audience::Machines), "FlyV1 fm2_xyz", "{raw}");
            assert_eq!(header(&t, Audience::GraphQl), "FlyV1 fm2_xyz", "{raw}");
        }
        assert!(Token::parse("Bearer FlyV1 ").is_none());
    }

    /// Issue 18 item 8: the Machines and logs APIs get the macaroon parts only, GraphQL
    /// all of them (macaroons first), as fly-go's `tokens` package sends them. The old
    /// code sent the whole comma-joined string everywhere.
    #[test]
    fn each_api_gets_its_parts_of_a_comma_joined_token() {
        let t = Token::parse("FlyV1 fo1_user, fm2_perm,fm2_discharge").unwrap();
        assert_eq!(
            header(&t, Audience::Machines),
            "FlyV1 fm2_perm,fm2_discharge"
        );
        assert_eq!(header(&t, Audience::Logs), "FlyV1 fm2_perm,fm2_discharge");
        assert_eq!(
            header(&t, Audience::GraphQl),
            "FlyV1 fm2_perm,fm2_discharge,fo1_user"
        );
        // Only user tokens: every API gets them, as Bearer.
        let t = Token::parse("fo1_a,fo1_b").unwrap();
        assert_eq!(header(&t, Audience::Machines), "Bearer fo1_a,fo1_b");
        assert_eq!(header(&t, Audience::GraphQl), "Bearer fo1_a,fo1_b");
    }

    #[test]
    fn a_token_is_found_inside_a_value_part_by_part() {
        let t = Token::parse("fm2_firstpart,fm2_secondpart").unwrap();
        assert!(t.appears_in("x=fm2_secondpart\n"));
        assert!(t.appears_in("fm2_firstpart"));
        assert!(!t.appears_in("fm2_other"));
    }

    #[test]
    fn debug_hides_value_and_header_is_sensitive() {
        let t = Token::parse("fm2_canary").unwrap();
        assert_eq!(format!("{t:?}"), "Token(***)");
        assert!(
            t.authorization(Audience::Machines, &[])
                .unwrap()
                .is_sensitive()
        );
        assert!(t.attenuation_problem().is_some());
        assert!(!t.attenuable());
        assert!(!t.attenuation_problem().unwrap().contains("canary"));
        assert!(
            Token::parse("plain")
                .unwrap()
                .attenuation_problem()
                .is_none()
        );
    }
}
