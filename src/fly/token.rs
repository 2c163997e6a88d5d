//! The Fly API token: a `SecretString` plus the auth scheme it is sent with.
//!
//! Owns scheme detection (macaroon tokens go as `FlyV1`, others as `Bearer`) and
//! prefix stripping. The secret is exposed in exactly one function,
//! [`Token::authorization`], which builds a header value marked sensitive. Knows
//! nothing of where a token came from (see `crate::config`).

use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

use super::Error;

/// Prefixes that mark a comma-separated part of a token as a Fly macaroon.
const MACAROON_PREFIXES: [&str; 3] = ["fm1r_", "fm1a_", "fm2_"];

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

/// A Fly API token. `Debug` prints `Token(***)`; the value never leaves this type
/// except into a sensitive header.
#[derive(Clone)]
pub struct Token {
    secret: SecretString,
    scheme: AuthScheme,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

impl Token {
    /// Parses a token as a user would paste it: surrounding whitespace and a
    /// leading `FlyV1 ` / `Bearer ` scheme are stripped, then the scheme is picked
    /// again from the token itself. Returns `None` for an empty token.
    pub fn parse(raw: impl Into<String>) -> Option<Token> {
        let raw: String = raw.into();
        let trimmed = raw.trim();
        let unprefixed = strip_scheme(trimmed).trim();
        if unprefixed.is_empty() {
            return None;
        }
        let scheme = if unprefixed
            .split(',')
            .any(|part| MACAROON_PREFIXES.iter().any(|p| part.trim().starts_with(p)))
        {
            AuthScheme::FlyV1
        } else {
            AuthScheme::Bearer
        };
        Some(Token {
            secret: SecretString::from(unprefixed.to_owned()),
            scheme,
        })
    }

    /// Parses a token held as a `SecretString` (see [`Token::parse`]).
    pub fn from_secret(secret: &SecretString) -> Option<Token> {
        Token::parse(secret.expose_secret().to_owned())
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

    /// The one place the secret is exposed: an `Authorization` header value
    /// marked sensitive (so HTTP stacks never log it).
    pub(crate) fn authorization(&self) -> Result<HeaderValue, Error> {
        let mut value = HeaderValue::try_from(format!(
            "{} {}",
            self.scheme.as_str(),
            self.secret.expose_secret()
        ))
        .map_err(|_| Error::Invalid {
            field: "token".into(),
            rule: "must contain only visible ASCII characters".into(),
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// Drops a leading `FlyV1` / `Bearer` word (any case), as pasted from a header.
fn strip_scheme(s: &str) -> &str {
    let (first, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
    if first.eq_ignore_ascii_case("flyv1") || first.eq_ignore_ascii_case("bearer") {
        rest
    } else {
        s
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

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
        assert_eq!(t.authorization().unwrap(), "FlyV1 fm2_xyz");
        let t = Token::parse("Bearer fm2_xyz").unwrap();
        assert_eq!(t.authorization().unwrap(), "FlyV1 fm2_xyz");
        let t = Token::parse("Bearer plain").unwrap();
        assert_eq!(t.authorization().unwrap(), "Bearer plain");
        assert!(Token::parse("  ").is_none());
        assert!(Token::parse("Bearer ").is_none());
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
        assert!(t.authorization().unwrap().is_sensitive());
    }
}
