//! What a caller asks for, turned into the parts of an [`EnvSpec`](super::EnvSpec):
//! the guest (a preset, explicit figures or Fly's default), the volume, the services
//! behind Fly's proxy and the health checks, with the defaults this project fills in.
//!
//! The MCP layer converts its arguments into these requests and nothing more; the
//! domain choices (a bare `internal_port` served on 443 and 80, the memory a CPU kind
//! starts at) are made here.

use std::collections::BTreeMap;

use super::{GuestSpec, VolumeSpec};
use crate::fly;

/// CPU kind of a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuKind {
    Shared,
    Performance,
}

impl CpuKind {
    /// The name Fly's guest config uses (`shared`, `performance`).
    pub fn as_str(self) -> &'static str {
        match self {
            CpuKind::Shared => "shared",
            CpuKind::Performance => "performance",
        }
    }

    /// The memory of one CPU of this kind when the caller names none: the least Fly
    /// accepts per CPU (256 MB shared, 2048 MB performance; see `fly/validate.rs`).
    pub fn default_memory_mb(self) -> u32 {
        match self {
            CpuKind::Shared => 256,
            CpuKind::Performance => 2048,
        }
    }
}

/// A request that cannot be met as given: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRequest {
    pub field: &'static str,
    pub message: String,
}

/// The size of the machine as the caller gives it; all unset is Fly's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestRequest {
    /// A VM size preset by name (`shared-cpu-1x`, ...).
    pub vm_size: Option<String>,
    /// CPUs, instead of a preset.
    pub cpus: Option<u32>,
    /// Memory in MB (a multiple of 256); with a preset, above the preset's.
    pub memory_mb: Option<u32>,
    /// With `cpus` (default shared).
    pub cpu_kind: Option<CpuKind>,
}

impl GuestRequest {
    /// The guest: a preset, explicit sizes (memory defaulting to the CPU kind's least),
    /// a shared CPU with the memory asked for, or Fly's default.
    pub fn into_spec(self) -> Result<GuestSpec, InvalidRequest> {
        if let Some(mb) = self.memory_mb
            && mb % 256 != 0
        {
            return Err(InvalidRequest {
                field: "memory_mb",
                message: format!("{mb} is not a multiple of 256"),
            });
        }
        Ok(match (self.vm_size, self.cpus) {
            (Some(_), Some(_)) => {
                return Err(InvalidRequest {
                    field: "cpus",
                    message: "give either vm_size or cpus, not both".to_owned(),
                });
            }
            (Some(name), None) => GuestSpec::Preset {
                name,
                memory_mb: self.memory_mb,
            },
            (None, Some(cpus)) => {
                let kind = self.cpu_kind.unwrap_or(CpuKind::Shared);
                GuestSpec::Custom {
                    cpu_kind: kind.as_str().to_owned(),
                    cpus,
                    memory_mb: self.memory_mb.unwrap_or(kind.default_memory_mb()),
                }
            }
            (None, None) => match self.memory_mb {
                Some(memory_mb) => GuestSpec::Custom {
                    cpu_kind: CpuKind::Shared.as_str().to_owned(),
                    cpus: 1,
                    memory_mb,
                },
                None => GuestSpec::Default,
            },
        })
    }
}

/// The volume as the caller gives it; unset fields take the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeRequest {
    /// Default `data`.
    pub name: Option<String>,
    /// Default 1 GB.
    pub size_gb: Option<u64>,
    /// Default `/data`.
    pub path: Option<String>,
    /// Grow by 1 GB at 80% full, up to this many GB.
    pub auto_extend_limit_gb: Option<u32>,
}

impl VolumeRequest {
    /// The volume with the defaults filled in.
    pub fn into_spec(self) -> VolumeSpec {
        VolumeSpec {
            name: self.name.unwrap_or_else(|| "data".to_owned()),
            size_gb: self.size_gb.unwrap_or(1),
            path: self.path.unwrap_or_else(|| "/data".to_owned()),
            auto_extend: self.auto_extend_limit_gb.map(|limit| (80, 1, limit)),
        }
    }
}

/// A public port of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub port: u16,
    /// e.g. `["tls", "http"]`.
    pub handlers: Vec<String>,
    pub force_https: bool,
}

/// A service behind Fly's proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRequest {
    pub internal_port: u16,
    /// Default `tcp`.
    pub protocol: Option<String>,
    pub ports: Vec<PortRequest>,
}

/// What Fly's proxy serves: services in full, or one port served as HTTPS on 443 and
/// HTTP on 80 (redirected to HTTPS); neither is no service at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    pub services: Option<Vec<ServiceRequest>>,
    pub internal_port: Option<u16>,
    /// What the proxy does with an idle machine.
    pub autostop: fly::AutostopMode,
    /// Start on a request (default true).
    pub autostart: Option<bool>,
}

impl ProxyRequest {
    /// The machine's services; each lets the proxy stop every machine when idle
    /// (`min_machines_running` 0).
    pub fn into_services(self) -> Vec<fly::MachineService> {
        let autostop = self.autostop;
        let autostart = self.autostart.unwrap_or(true);
        let service = |internal_port: u16, protocol: Option<String>, ports| fly::MachineService {
            protocol: protocol.unwrap_or_else(|| "tcp".to_owned()),
            internal_port,
            ports,
            autostop: Some(autostop),
            autostart: Some(autostart),
            min_machines_running: Some(0),
            ..fly::MachineService::default()
        };
        let port = |port: u16, handlers: Vec<String>, force_https: bool| fly::MachinePort {
            port: Some(port),
            handlers,
            force_https: force_https.then_some(true),
            ..fly::MachinePort::default()
        };
        match (self.services, self.internal_port) {
            (Some(list), _) => list
                .into_iter()
                .map(|s| {
                    let ports = s
                        .ports
                        .into_iter()
                        .map(|p| port(p.port, p.handlers, p.force_https))
                        .collect();
                    service(s.internal_port, s.protocol, ports)
                })
                .collect(),
            (None, Some(internal)) => vec![service(
                internal,
                None,
                vec![
                    port(80, vec!["http".to_owned()], true),
                    port(443, vec!["tls".to_owned(), "http".to_owned()], false),
                ],
            )],
            (None, None) => Vec::new(),
        }
    }
}

/// A health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRequest {
    pub name: String,
    /// `http` or `tcp`.
    pub kind: String,
    pub port: u16,
    /// HTTP path (http checks).
    pub path: Option<String>,
    /// Go durations, e.g. `15s`.
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub grace_period: Option<String>,
}

/// The machine's checks by name.
pub fn checks(
    requests: impl IntoIterator<Item = CheckRequest>,
) -> BTreeMap<String, fly::MachineCheck> {
    requests
        .into_iter()
        .map(|c| {
            (
                c.name,
                fly::MachineCheck {
                    kind: Some(c.kind),
                    port: Some(c.port),
                    path: c.path,
                    interval: c.interval,
                    timeout: c.timeout,
                    grace_period: c.grace_period,
                    ..fly::MachineCheck::default()
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_defaults_and_conflicts() {
        let custom = |cpus, kind| GuestRequest {
            cpus: Some(cpus),
            cpu_kind: kind,
            ..GuestRequest::default()
        };
        assert_eq!(
            custom(2, Some(CpuKind::Performance)).into_spec(),
            Ok(GuestSpec::Custom {
                cpu_kind: "performance".to_owned(),
                cpus: 2,
                memory_mb: 2048
            })
        );
        assert_eq!(
            custom(1, None).into_spec(),
            Ok(GuestSpec::Custom {
                cpu_kind: "shared".to_owned(),
                cpus: 1,
                memory_mb: 256
            })
        );
        assert_eq!(GuestRequest::default().into_spec(), Ok(GuestSpec::Default));
        let both = GuestRequest {
            vm_size: Some("shared-cpu-1x".to_owned()),
            cpus: Some(1),
            ..GuestRequest::default()
        };
        assert_eq!(both.into_spec().map_err(|e| e.field), Err("cpus"));
        let odd = GuestRequest {
            memory_mb: Some(300),
            ..GuestRequest::default()
        };
        assert_eq!(odd.into_spec().map_err(|e| e.field), Err("memory_mb"));
    }

    #[test]
    fn a_bare_internal_port_is_served_on_443_and_80() {
        let services = ProxyRequest {
            services: None,
            internal_port: Some(8080),
            autostop: fly::AutostopMode::Stop,
            autostart: None,
        }
        .into_services();
        let [s] = services.as_slice() else {
            panic!("one service expected, got {services:?}");
        };
        assert_eq!((s.protocol.as_str(), s.internal_port), ("tcp", 8080));
        assert_eq!(s.autostart, Some(true));
        let ports: Vec<(Option<u16>, Option<bool>)> =
            s.ports.iter().map(|p| (p.port, p.force_https)).collect();
        assert_eq!(ports, [(Some(80), Some(true)), (Some(443), None)]);
    }
}
