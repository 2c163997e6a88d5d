//! The logs API Fly's CLI polls: `GET /api/v1/apps/{app}/logs?next_token=&instance=&region=`,
//! a JSON:API document whose `meta.next_token` is a Unix timestamp in nanoseconds.
//! With no token: the latest 100 lines of the last 24 h; with one: what came after it.
//! Timestamps show milliseconds; the token carries the nanoseconds (see
//! `LogLine::unique_ns`); an empty page answers an empty token.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use serde_json::{Value, json};

use super::Shared;
use super::app_call::AppCall;
use super::clock::rfc3339_millis;
use super::http::{ApiError, ApiResult, ok_json};
use super::model::LogLine;

const PAGE: usize = 100;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/api/v1/apps/{app_name}/logs", get(logs))
}

fn entry(app: &str, l: &LogLine) -> Value {
    json!({"id": l.id, "type": "logs", "attributes": {
        "timestamp": rfc3339_millis(l.ts_ns / 1_000_000), "message": l.message, "level": l.level,
        "instance": l.instance, "region": l.region,
        "meta": {"instance": l.instance, "region": l.region, "event": {"provider": "app"},
                 "http": null, "error": null, "url": null, "app": app}}})
}

async fn logs(call: AppCall<String>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let app = call.app();
    let token = match q.get("next_token").map(String::as_str) {
        None | Some("") => None,
        Some(t) => Some(t.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid next_token {t:?}: Unix nanoseconds expected"
            ))
        })?),
    };
    let instance = q.get("instance").cloned().unwrap_or_default();
    let region = q.get("region").cloned().unwrap_or_default();
    call.read(|_, a, now| {
        let now_ns = now.saturating_mul(1_000_000);
        let mut lines: Vec<&LogLine> = a
            .logs
            .iter()
            .filter(|l| l.ts_ns <= now_ns.saturating_add(999_999))
            .filter(|l| instance.is_empty() || l.instance == instance)
            .filter(|l| region.is_empty() || l.region == region)
            .collect();
        lines.sort_by_key(|l| l.ts_ns);
        let page: Vec<&LogLine> = match token {
            Some(t) => lines
                .into_iter()
                .filter(|l| l.ts_ns > t)
                .take(PAGE)
                .collect(),
            None => {
                let since = now_ns.saturating_sub(86_400 * 1_000_000_000);
                let recent: Vec<&LogLine> =
                    lines.into_iter().filter(|l| l.ts_ns >= since).collect();
                let skip = recent.len().saturating_sub(PAGE);
                recent.into_iter().skip(skip).collect()
            }
        };
        // The token of a page is the last entry's nanosecond time, which no timestamp
        // shows (they are rounded to the millisecond). An empty page gives no token:
        // flyctl keeps the one it had (`logs/polling.go` only takes a token from a page
        // with entries, and only a non-empty one), so a client must too.
        let next = page.last().map(|l| l.ts_ns.to_string()).unwrap_or_default();
        ok_json(
            200,
            json!({"data": page.iter().map(|l| entry(app, l)).collect::<Vec<_>>(),
            "meta": {"next_token": next}}),
        )
    })
}
