//! The logs API used by `fly logs` (`GET {FLY_API_BASE_URL}/api/v1/apps/{app}/logs`):
//! one page per call, `meta.next_token` as the cursor, optional `instance` and `region`
//! filters. Polling policy belongs to callers.
//!
//! The cursor is the server's `meta.next_token`, never one made from the entries'
//! timestamps (they may be rounded, and several lines share one): flyctl pages with
//! `next_token` only and keeps the token it had when a page comes back empty
//! (`logs/polling.go`, `Poll`; fly-go `resource_logs.go`, `GetAppLogs`).

use http::Method;
use serde::{Deserialize, Serialize};

use super::client::{Api, Req};
use super::{Client, Error, null_as_default};

/// Filters and cursor of a logs call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogQuery {
    /// Return entries after this token (a `next_token` from an earlier page, or a
    /// Unix time in nanoseconds to start from); `None` for the latest lines.
    pub next_token: Option<String>,
    /// Only this machine.
    pub instance: Option<String>,
    /// Only this region.
    pub region: Option<String>,
}

/// One log line.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Entry id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    /// RFC 3339 timestamp.
    #[serde(default, deserialize_with = "null_as_default")]
    pub timestamp: String,
    /// The line.
    #[serde(default, deserialize_with = "null_as_default")]
    pub message: String,
    /// Level (`info`, `error`, …).
    #[serde(default, deserialize_with = "null_as_default")]
    pub level: String,
    /// Machine id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub instance: String,
    /// Region.
    #[serde(default, deserialize_with = "null_as_default")]
    pub region: String,
    /// Source (`app`, `runner`, `proxy`, …) from `meta.event.provider`.
    pub provider: Option<String>,
}

/// One page of logs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogPage {
    /// Entries, oldest first as the API sends them.
    pub entries: Vec<LogEntry>,
    /// Pass back to get what comes after: the server's `meta.next_token`, or the
    /// token of the request when the page was empty (or gave none).
    pub next_token: Option<String>,
}

#[derive(Deserialize)]
struct WireLogs {
    #[serde(default, deserialize_with = "null_as_default")]
    data: Vec<WireLogItem>,
    #[serde(default)]
    meta: Option<WireLogsMeta>,
}

#[derive(Deserialize)]
struct WireLogsMeta {
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Deserialize)]
struct WireLogItem {
    #[serde(default, deserialize_with = "null_as_default")]
    id: String,
    #[serde(default)]
    attributes: WireLogAttributes,
}

#[derive(Deserialize, Default)]
struct WireLogAttributes {
    #[serde(default, deserialize_with = "null_as_default")]
    timestamp: String,
    #[serde(default, deserialize_with = "null_as_default")]
    message: String,
    #[serde(default, deserialize_with = "null_as_default")]
    level: String,
    #[serde(default, deserialize_with = "null_as_default")]
    instance: String,
    #[serde(default, deserialize_with = "null_as_default")]
    region: String,
    #[serde(default)]
    meta: Option<serde_json::Value>,
}

impl Client {
    /// App logs: `GET {FLY_API_BASE_URL}/api/v1/apps/{app_name}/logs?next_token=&instance=&region=`.
    pub async fn app_logs(&self, app: &str, query: &LogQuery) -> Result<LogPage, Error> {
        let req = Req::new(
            "app_logs",
            Method::GET,
            Api::Platform,
            &["api", "v1", "apps", app, "logs"],
        )
        .query_opt("next_token", query.next_token.as_deref())
        .query_opt("instance", query.instance.as_deref())
        .query_opt("region", query.region.as_deref());
        let wire: WireLogs = self.send(req).await?.json()?;
        let entries: Vec<LogEntry> = wire
            .data
            .into_iter()
            .map(|item| {
                let a = item.attributes;
                let provider = a
                    .meta
                    .as_ref()
                    .and_then(|m| m.pointer("/event/provider"))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned);
                LogEntry {
                    id: item.id,
                    timestamp: a.timestamp,
                    message: a.message,
                    level: a.level,
                    instance: a.instance,
                    region: a.region,
                    provider,
                }
            })
            .collect();
        let given = wire
            .meta
            .and_then(|m| m.next_token)
            .filter(|t| !t.is_empty());
        // flyctl (`logs/polling.go`) takes a new token only from a page with entries,
        // and only a non-empty one; otherwise it keeps the one it had. With none yet,
        // the server's is the only cursor there is.
        let next_token = match (entries.is_empty(), &query.next_token) {
            (true, Some(previous)) => Some(previous.clone()),
            _ => given.or_else(|| query.next_token.clone()),
        };
        Ok(LogPage {
            entries,
            next_token,
        })
    }
}
