//! Fly settings resolved the way flyctl resolves them: token sources in order,
//! API base URLs, default org. The token is held as a [`fly::Token`]
//! (a `SecretString` inside). Environment lookups go through a closure and the
//! home directory is a parameter, so tests never read the real user's files.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use url::Url;

use crate::fly;

/// Name of this project's directory under the user's config dir.
const APP_DIR: &str = "fly-machines-mcp";
/// File holding the token stored by `auth login`.
const TOKEN_FILE: &str = "token";

/// Errors while resolving settings.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An endpoint variable is not a URL.
    #[error("{var} is not a valid URL: {value:?}")]
    InvalidUrl {
        /// The variable, e.g. `FLY_API_HOSTNAME`.
        var: &'static str,
        /// Its value (URLs hold no secrets).
        value: String,
        /// Why it did not parse.
        #[source]
        source: url::ParseError,
    },
    /// A token file exists but could not be read.
    #[error("could not read the token file {}", path.display())]
    ReadTokenFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Resolved Fly settings.
#[derive(Debug, Clone)]
pub struct FlySettings {
    /// The token, if any source had one.
    pub token: Option<fly::Token>,
    /// Machines REST base (`FLY_API_HOSTNAME`).
    pub api_hostname: Url,
    /// GraphQL / logs base (`FLY_API_BASE_URL`).
    pub api_base_url: Url,
    /// Default org slug (`FLY_ORG`, else `personal`).
    pub default_org: String,
    /// Client-side pacing at Fly's documented rate limits; on unless
    /// `FLY_MCP_PACING=off` (for a local simulator, whose limits run on its own
    /// scaled clock, or a proxy that paces for us).
    pub pacing: bool,
}

/// Where the token came from (for `auth status`; never the token itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `--access-token`.
    Explicit,
    /// `FLY_API_TOKEN`.
    FlyApiToken,
    /// `FLY_ACCESS_TOKEN`.
    FlyAccessToken,
    /// The file written by `auth login`.
    Stored,
    /// `access_token` in `~/.fly/config.yml`.
    FlyctlConfig,
}

impl FlySettings {
    /// Resolves settings in flyctl's order: explicit `--access-token`,
    /// `FLY_API_TOKEN`, `FLY_ACCESS_TOKEN`, the stored token file (`auth login`,
    /// see [`stored_token_path`]), then `access_token:` in `~/.fly/config.yml`.
    pub fn resolve(
        explicit_token: Option<SecretString>,
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        Ok(Self::resolve_with_source(explicit_token, env, home)?.0)
    }

    /// Like [`FlySettings::resolve`], also saying which source gave the token.
    pub fn resolve_with_source(
        explicit_token: Option<SecretString>,
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<(Self, Option<TokenSource>), ConfigError> {
        let env_nonempty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let (token, source) = resolve_token(explicit_token, &env_nonempty, home)?;
        let api_hostname = url_from(
            "FLY_API_HOSTNAME",
            env_nonempty("FLY_API_HOSTNAME"),
            fly::DEFAULT_API_HOSTNAME,
        )?;
        let api_base_url = url_from(
            "FLY_API_BASE_URL",
            env_nonempty("FLY_API_BASE_URL"),
            fly::DEFAULT_API_BASE_URL,
        )?;
        let default_org = env_nonempty("FLY_ORG")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| "personal".to_owned());
        let pacing = !env_nonempty("FLY_MCP_PACING").is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "off" | "0" | "false"
            )
        });
        Ok((
            FlySettings {
                token,
                api_hostname,
                api_base_url,
                default_org,
                pacing,
            },
            source,
        ))
    }

    /// A client config for these settings (production retry and pacing defaults).
    pub fn client_config(&self) -> Result<fly::ClientConfig, fly::Error> {
        let mut cfg = fly::ClientConfig::new(self.token.clone())?;
        cfg.api_hostname = self.api_hostname.clone();
        cfg.api_base_url = self.api_base_url.clone();
        cfg.pacing = self.pacing;
        Ok(cfg)
    }
}

fn resolve_token(
    explicit: Option<SecretString>,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Result<(Option<fly::Token>, Option<TokenSource>), ConfigError> {
    if let Some(t) = explicit.as_ref().and_then(fly::Token::from_secret) {
        return Ok((Some(t), Some(TokenSource::Explicit)));
    }
    if let Some(t) = env("FLY_API_TOKEN").and_then(fly::Token::parse) {
        return Ok((Some(t), Some(TokenSource::FlyApiToken)));
    }
    if let Some(t) = env("FLY_ACCESS_TOKEN").and_then(fly::Token::parse) {
        return Ok((Some(t), Some(TokenSource::FlyAccessToken)));
    }
    if let Some(path) = stored_token_path_in(env, home)
        && let Some(text) = read_if_exists(&path)?
        && let Some(t) = fly::Token::parse(text)
    {
        return Ok((Some(t), Some(TokenSource::Stored)));
    }
    if let Some(home) = home {
        let path = home.join(".fly").join("config.yml");
        if let Some(text) = read_if_exists(&path)?
            && let Some(t) = flyctl_access_token(&text).and_then(fly::Token::parse)
        {
            return Ok((Some(t), Some(TokenSource::FlyctlConfig)));
        }
    }
    Ok((None, None))
}

fn read_if_exists(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::ReadTokenFile {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Reads the top-level `access_token:` of flyctl's `config.yml` (a flat YAML map).
fn flyctl_access_token(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix("access_token:")?.trim();
        let unquoted = rest
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .or_else(|| rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
            .unwrap_or(rest);
        (!unquoted.is_empty()).then(|| unquoted.to_owned())
    })
}

fn url_from(var: &'static str, value: Option<String>, default: &str) -> Result<Url, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_owned());
    Url::parse(value.trim()).map_err(|source| ConfigError::InvalidUrl { var, value, source })
}

/// The file `auth login` writes the token to: `<config dir>/fly-machines-mcp/token`
/// (`$XDG_CONFIG_HOME` when set, else the platform's config dir).
pub fn stored_token_path() -> Option<PathBuf> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if env("XDG_CONFIG_HOME").is_some() {
        return stored_token_path_in(&env, None);
    }
    dirs::config_dir().map(|d| d.join(APP_DIR).join(TOKEN_FILE))
}

/// [`stored_token_path`] with injected environment and home directory.
pub fn stored_token_path_in(
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Option<PathBuf> {
    let base = match env("XDG_CONFIG_HOME") {
        Some(x) => PathBuf::from(x),
        None => {
            let home = home?;
            if cfg!(target_os = "macos") {
                home.join("Library").join("Application Support")
            } else {
                home.join(".config")
            }
        }
    };
    Some(base.join(APP_DIR).join(TOKEN_FILE))
}

/// Where this server's token can be read from on disk: this project's config
/// directory (the stored token), flyctl's directory `~/.fly` (its `config.yml` holds a
/// login token) — both with everything under them. Secret references never read
/// these, whatever the operator's allowlists say.
pub fn credential_paths(env: &dyn Fn(&str) -> Option<String>, home: Option<&Path>) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = stored_token_path_in(env, home)
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .into_iter()
        .collect();
    if env("XDG_CONFIG_HOME").is_none()
        && let Some(dir) = dirs::config_dir()
    {
        paths.push(dir.join(APP_DIR));
    }
    if let Some(home) = home {
        paths.push(home.join(".fly"));
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn token_order_and_defaults() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".fly")).unwrap();
        std::fs::write(
            home.path().join(".fly/config.yml"),
            "access_token: fo1_flyctl\nother: x\n",
        )
        .unwrap();
        let env = env_of(&[]);
        let (s, src) = FlySettings::resolve_with_source(None, &env, Some(home.path())).unwrap();
        assert_eq!(src, Some(TokenSource::FlyctlConfig));
        assert_eq!(s.default_org, "personal");
        assert_eq!(s.api_hostname.as_str(), "https://api.machines.dev/");

        let stored = stored_token_path_in(&env, Some(home.path())).unwrap();
        std::fs::create_dir_all(stored.parent().unwrap()).unwrap();
        std::fs::write(&stored, "FlyV1 fm2_stored\n").unwrap();
        let (_, src) = FlySettings::resolve_with_source(None, &env, Some(home.path())).unwrap();
        assert_eq!(src, Some(TokenSource::Stored));

        let env = env_of(&[
            ("FLY_ACCESS_TOKEN", "b"),
            ("FLY_ORG", "acme"),
            ("FLY_API_HOSTNAME", "http://127.0.0.1:1"),
        ]);
        let (s, src) = FlySettings::resolve_with_source(None, &env, Some(home.path())).unwrap();
        assert_eq!(src, Some(TokenSource::FlyAccessToken));
        assert_eq!(s.default_org, "acme");
        assert_eq!(s.api_hostname.as_str(), "http://127.0.0.1:1/");

        let env = env_of(&[("FLY_ACCESS_TOKEN", "b"), ("FLY_API_TOKEN", "a")]);
        let (_, src) = FlySettings::resolve_with_source(None, &env, Some(home.path())).unwrap();
        assert_eq!(src, Some(TokenSource::FlyApiToken));

        let (s, src) =
            FlySettings::resolve_with_source(Some(SecretString::from("Bearer fm2_x")), &env, None)
                .unwrap();
        assert_eq!(src, Some(TokenSource::Explicit));
        assert_eq!(s.token.unwrap().scheme(), fly::AuthScheme::FlyV1);
    }

    #[test]
    fn empty_values_are_unset_and_bad_urls_named() {
        let env = env_of(&[("FLY_API_TOKEN", "  "), ("FLY_ORG", "")]);
        let s = FlySettings::resolve(None, &env, None).unwrap();
        assert!(s.token.is_none());
        assert_eq!(s.default_org, "personal");
        let env = env_of(&[("FLY_API_BASE_URL", "not a url")]);
        let e = FlySettings::resolve(None, &env, None).unwrap_err();
        assert!(e.to_string().contains("FLY_API_BASE_URL"));
    }

    #[test]
    fn pacing_is_on_unless_turned_off() {
        let on = FlySettings::resolve(None, &env_of(&[("FLY_MCP_PACING", "")]), None).unwrap();
        assert!(on.pacing && on.client_config().unwrap().pacing);
        let off = FlySettings::resolve(None, &env_of(&[("FLY_MCP_PACING", "Off")]), None).unwrap();
        assert!(!off.pacing && !off.client_config().unwrap().pacing);
    }

    #[test]
    fn flyctl_yaml_quotes() {
        assert_eq!(
            flyctl_access_token("access_token: \"abc\"\n").as_deref(),
            Some("abc")
        );
        assert_eq!(flyctl_access_token("x: 1\naccess_token: ''\n"), None);
    }
}
