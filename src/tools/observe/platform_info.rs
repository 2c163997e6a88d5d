//! `platform_info`: Fly regions and VM sizes with prices.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::tools::render::{Row, rows, table_row};
use crate::tools::{ToolContext, ToolError, ToolInfo, ToolOutput, Toolset};
use crate::workflows::observe as wf;

pub(super) const PLATFORM_INFO: ToolInfo = ToolInfo {
    name: "platform_info",
    title: "Fly regions and VM sizes",
    toolset: Toolset::Observe,
    idempotent: true,
    description: "Fly regions (code, name, paid-only, deprecated) and VM sizes (CPU, memory, monthly and \
per-second price): to pick a region or a size, or to estimate cost.",
    narrow_hint: "set `include` to `regions` or `vm_sizes`",
};

/// Which part of the platform facts to return.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlatformPart {
    #[default]
    All,
    Regions,
    VmSizes,
}

/// Arguments of `platform_info`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformInfoArgs {
    /// What to list: `all` (default), `regions` or `vm_sizes`.
    #[serde(default)]
    pub include: PlatformPart,
    /// Also list deprecated regions.
    #[serde(default)]
    pub include_deprecated: bool,
}

/// A region.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RegionOut {
    /// Region code, e.g. `ams`.
    pub code: String,
    pub name: String,
    /// Only available on paid plans.
    pub paid_only: bool,
    /// Deprecated: avoid for new machines.
    pub deprecated: bool,
}

/// A VM size preset.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VmSizeOut {
    /// Preset name for `guest` / `vm_size`, e.g. `shared-cpu-1x`.
    pub name: String,
    pub cpu_cores: f64,
    /// Default memory in MB.
    pub memory_mb: i64,
    /// Largest memory in MB.
    pub max_memory_mb: i64,
    /// USD per month if running all month.
    pub price_month: f64,
    /// USD per second of running.
    pub price_second: f64,
}

/// Result of `platform_info`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlatformInfo {
    pub regions: Vec<RegionOut>,
    pub vm_sizes: Vec<VmSizeOut>,
}

impl Row for RegionOut {
    const HEADER: &'static [&'static str] = &["CODE", "NAME", "FLAGS"];

    fn cells(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if self.paid_only {
            flags.push("paid-only");
        }
        if self.deprecated {
            flags.push("deprecated");
        }
        vec![self.code.clone(), self.name.clone(), flags.join(",")]
    }
}

table_row!(VmSizeOut, |s| {
    "SIZE": s.name.clone(),
    "CPUS": format!("{}", s.cpu_cores),
    "MEM_MB": s.memory_mb.to_string(),
    "MAX_MB": s.max_memory_mb.to_string(),
    "PER_MONTH": format!("${:.2}", s.price_month),
    "PER_SECOND": format!("${:.8}", s.price_second),
});

impl ToolOutput for PlatformInfo {
    fn render_text(&self) -> String {
        let mut out = String::new();
        if !self.regions.is_empty() {
            out.push_str(&format!("{} regions\n", self.regions.len()));
            out.push_str(&rows(&self.regions));
        }
        if !self.vm_sizes.is_empty() {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!("{} VM sizes\n", self.vm_sizes.len()));
            out.push_str(&rows(&self.vm_sizes));
        }
        out
    }
}

pub(super) async fn platform_info(
    ctx: ToolContext,
    args: PlatformInfoArgs,
) -> Result<PlatformInfo, ToolError> {
    let (regions, sizes) = match args.include {
        PlatformPart::All => (true, true),
        PlatformPart::Regions => (true, false),
        PlatformPart::VmSizes => (false, true),
    };
    let facts = wf::platform_facts(ctx.client(), regions, sizes).await?;
    Ok(PlatformInfo {
        regions: facts
            .regions
            .into_iter()
            .filter(|r| args.include_deprecated || !r.deprecated)
            .map(|r| RegionOut {
                code: r.code,
                name: r.name,
                paid_only: r.paid_only,
                deprecated: r.deprecated,
            })
            .collect(),
        vm_sizes: facts
            .vm_sizes
            .into_iter()
            .map(|s| VmSizeOut {
                name: s.name,
                cpu_cores: s.cpu_cores,
                memory_mb: s.memory_mb,
                max_memory_mb: s.max_memory_mb,
                price_month: s.price_month,
                price_second: s.price_second,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_the_model_reads() {
        let info = PlatformInfo {
            regions: vec![
                RegionOut {
                    code: "iad".into(),
                    name: "Ashburn, Virginia (US)".into(),
                    paid_only: false,
                    deprecated: false,
                },
                RegionOut {
                    code: "bom".into(),
                    name: "Mumbai, India".into(),
                    paid_only: true,
                    deprecated: true,
                },
            ],
            vm_sizes: vec![VmSizeOut {
                name: "shared-cpu-1x".into(),
                cpu_cores: 1.0,
                memory_mb: 256,
                max_memory_mb: 2048,
                price_month: 1.94,
                price_second: 0.00000075,
            }],
        };
        insta::assert_snapshot!(info.render_text());
    }
}
