//! README.md stays true: the tool reference is the catalog's, and every flag and
//! environment variable of the command line is documented.

mod image_env;

use clap::CommandFactory;
use fly_machines_mcp::{
    cli::Cli,
    tools::{Catalog, reference},
};

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// Where the README's reference differs from the catalog, as a message to act on.
fn reference_drift(readme: &str, generated: &str) -> Option<String> {
    let Some(section) = reference::readme_section(readme) else {
        return Some("README.md has no tool reference markers".to_owned());
    };
    if section == generated {
        return None;
    }
    let first_diff = section
        .lines()
        .zip(generated.lines())
        .find(|(a, b)| a != b)
        .map(|(a, b)| format!("README: {a}\ncatalog: {b}"))
        .unwrap_or_else(|| "the sections differ in length".to_owned());
    Some(format!(
        "README.md's tool reference is out of date; regenerate it with `{}` and paste \
         it between the markers.\nfirst difference:\n{first_diff}",
        reference::REGENERATE
    ))
}

#[test]
fn readme_tool_reference_is_the_catalogs() {
    let catalog = Catalog::all().unwrap();
    let generated = reference::markdown(&catalog);
    if let Some(problem) = reference_drift(&readme(), &generated) {
        panic!("{problem}");
    }
}

#[test]
fn a_changed_description_is_caught() {
    let catalog = Catalog::all().unwrap();
    let generated = reference::markdown(&catalog);
    let tool = catalog.tools().first().unwrap();
    let first_line = tool.info.description.trim().lines().next().unwrap();
    let changed = generated.replacen(first_line, "A description somebody changed.", 1);
    assert_ne!(changed, generated);
    let readme = format!(
        "intro\n{}{}{}\nrest",
        reference::BEGIN,
        generated,
        reference::END
    );
    assert!(reference_drift(&readme, &generated).is_none());
    let drift = reference_drift(&readme, &changed).unwrap();
    assert!(drift.contains("tools --markdown"), "{drift}");
}

#[test]
fn every_reference_covers_every_tool() {
    let catalog = Catalog::all().unwrap();
    let generated = reference::markdown(&catalog);
    for tool in catalog.tools() {
        assert!(
            generated.contains(&format!("#### `{}`", tool.info.name)),
            "{} missing",
            tool.info.name
        );
    }
}

#[test]
fn readme_documents_every_flag_and_env_var() {
    let readme = readme();
    let cli = Cli::command();
    let mut missing = Vec::new();
    for name in ["serve", "call", "sim", "tools"] {
        let Some(sub) = cli.find_subcommand(name) else {
            missing.push(format!("subcommand {name}"));
            continue;
        };
        for arg in sub.get_arguments() {
            if let Some(long) = arg.get_long() {
                if long == "help" || long == "version" {
                    continue;
                }
                if !readme.contains(&format!("--{long}")) {
                    missing.push(format!("{name} --{long}"));
                }
            }
            if let Some(env) = arg.get_env().and_then(|e| e.to_str())
                && !readme.contains(env)
            {
                missing.push(format!("{name} env {env}"));
            }
        }
    }
    for var in [
        "FLY_API_TOKEN",
        "FLY_ACCESS_TOKEN",
        "FLY_API_HOSTNAME",
        "FLY_API_BASE_URL",
        "FLY_ORG",
        "RUST_LOG",
    ] {
        if !readme.contains(var) {
            missing.push(var.to_owned());
        }
    }
    assert!(
        missing.is_empty(),
        "README.md does not document: {missing:?}"
    );
}
