//! The `observe` toolset: read-only tools that show what is there — `list_apps`,
//! `app_status`, `machine_info`, `app_logs`, `diagnose`, `platform_info`.
//!
//! Each result is compact aligned text plus structured content, ids always shown,
//! and bounded on its own (rows and bytes) so that both renderings stay under the
//! output cap, saying what was left out and how to narrow. The analysis lives in
//! `crate::workflows`; these files only shape arguments and results, one file per tool.

use std::collections::BTreeMap;

use super::catalog::{DeclarationError, ToolDef};

mod app_logs;
mod app_status;
mod diagnose;
mod list_apps;
mod machine_info;
mod platform_info;

pub use app_logs::*;
pub use app_status::*;
pub use diagnose::*;
pub use list_apps::*;
pub use machine_info::*;
pub use platform_info::*;

/// The tools of this toolset.
pub fn tools() -> Result<Vec<ToolDef>, DeclarationError> {
    Ok(vec![
        ToolDef::read(LIST_APPS, list_apps)?,
        ToolDef::read(APP_STATUS, app_status)?,
        ToolDef::read(MACHINE_INFO, machine_info)?,
        ToolDef::read(APP_LOGS, app_logs)?,
        ToolDef::read(DIAGNOSE, diagnose)?,
        ToolDef::read(PLATFORM_INFO, platform_info)?,
    ])
}

// Shared limits and helpers.

/// Bytes of rows (text and structured alike) one result spends at most, leaving
/// room for headers under the default 16 KiB output cap.
const ROW_BUDGET: usize = 11 * 1024;

/// The parts of a status that could not be read, one line each: `part: error`.
fn unavailable(gaps: Vec<crate::workflows::status::Gap>) -> Vec<String> {
    gaps.into_iter()
        .map(|g| {
            format!(
                "{}: {}",
                g.part,
                crate::workflows::observe::clip(&g.error, 200)
            )
        })
        .collect()
}

/// `items` joined by `sep`, or `none` when there are none.
fn listed(items: &[String], sep: &str) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(sep)
    }
}

fn counts_text(counts: &BTreeMap<String, usize>) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
