//! The opt-in toolsets stay out of the default `tools/list`; `--toolsets all` (or
//! naming them) brings them in.

use fly_machines_mcp::tools::{Catalog, Policy, PolicyOptions, Selection, ToolKind, Toolset};

const OPT_IN: [&str; 6] = [
    "allocate_ip",
    "release_ip",
    "certificate_action",
    "remove_certificate",
    "exec_command",
    "deploy_mcp_server",
];

fn policy(toolsets: Option<Vec<&str>>) -> Policy {
    let opts = PolicyOptions {
        selection: Selection {
            toolsets: toolsets.map(|t| t.into_iter().map(str::to_owned).collect()),
            ..Selection::default()
        },
        ..PolicyOptions::default()
    };
    Policy::new(&Catalog::all().unwrap(), &opts).unwrap()
}

#[test]
fn opt_in_tools_are_off_by_default_and_on_with_all() {
    let default = policy(None);
    let all = policy(Some(vec!["all"]));
    for name in OPT_IN {
        assert!(!default.is_enabled(name), "{name} is on by default");
        assert!(all.is_enabled(name), "{name} is off with --toolsets all");
    }
    let network = policy(Some(vec!["network"]));
    assert!(network.is_enabled("release_ip"));
    assert!(!network.is_enabled("exec_command"));
    let exec = policy(Some(vec!["exec"]));
    assert!(exec.is_enabled("exec_command"));
}

#[test]
fn destructive_opt_in_tools_are_declared_so() {
    let catalog = Catalog::all().unwrap();
    for (name, kind, set) in [
        ("release_ip", ToolKind::Destructive, Toolset::Network),
        (
            "remove_certificate",
            ToolKind::Destructive,
            Toolset::Network,
        ),
        ("exec_command", ToolKind::Destructive, Toolset::Exec),
        ("allocate_ip", ToolKind::Write, Toolset::Network),
        ("certificate_action", ToolKind::Write, Toolset::Network),
        ("deploy_mcp_server", ToolKind::Write, Toolset::Hosting),
    ] {
        let t = catalog.get(name).unwrap();
        assert_eq!(t.kind, kind, "{name}");
        assert_eq!(t.info.toolset, set, "{name}");
        assert!(!Toolset::DEFAULT.contains(&t.info.toolset), "{name}");
    }
    // --no-destroy keeps exec out even when its toolset is named.
    let opts = PolicyOptions {
        selection: Selection {
            toolsets: Some(vec!["exec".into()]),
            ..Selection::default()
        },
        no_destroy: true,
        ..PolicyOptions::default()
    };
    let p = Policy::new(&catalog, &opts).unwrap();
    assert!(!p.is_enabled("exec_command"));
}
