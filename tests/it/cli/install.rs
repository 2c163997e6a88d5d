//! `install CLIENT`: every client's file location and entry shape, other entries and
//! comments kept, backups, dry runs, removal, and tokens refused.

use std::path::Path;

use clap::Parser;
use fly_machines_mcp::cli::install::{
    Change, ConfigBase, InstallArgs, InstallError, McpClient, Scope, config_path, install, plan,
};
use serde_json::{Value, json};

const CMD: &str = "/opt/bin/fly-machines-mcp";

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: InstallArgs,
}

fn args(argv: &[&str]) -> InstallArgs {
    Cli::try_parse_from(std::iter::once("install").chain(argv.iter().copied()))
        .expect("arguments parse")
        .args
}

fn base(dir: &Path) -> ConfigBase {
    ConfigBase {
        home: dir.join("home"),
        config_dir: dir.join("home/.config"),
        project_dir: dir.join("project"),
    }
}

fn run(argv: &[&str], base: &ConfigBase) -> (fly_machines_mcp::cli::install::Plan, String) {
    let mut out = Vec::new();
    let plan = install(&args(argv), base, CMD, &mut out).expect("install succeeds");
    (plan, String::from_utf8(out).expect("utf-8 output"))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("config written");
    serde_json::from_str(&text).expect("valid JSON")
}

fn backups(path: &Path) -> Vec<std::path::PathBuf> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{name}.bak-"))
        })
        .collect()
}

#[test]
fn every_client_gets_its_documented_file_and_entry_shape() {
    let cases: [(&str, &str, &str, &str, Value); 10] = [
        (
            "claude-desktop",
            "user",
            "home/.config/Claude/claude_desktop_config.json",
            "mcpServers",
            json!({"command": CMD, "args": ["serve"]}),
        ),
        (
            "claude-code",
            "user",
            "home/.claude.json",
            "mcpServers",
            json!({"type": "stdio", "command": CMD, "args": ["serve"]}),
        ),
        (
            "claude-code",
            "project",
            "project/.mcp.json",
            "mcpServers",
            json!({"type": "stdio", "command": CMD, "args": ["serve"]}),
        ),
        (
            "cursor",
            "user",
            "home/.cursor/mcp.json",
            "mcpServers",
            json!({"command": CMD, "args": ["serve"]}),
        ),
        (
            "cursor",
            "project",
            "project/.cursor/mcp.json",
            "mcpServers",
            json!({"command": CMD, "args": ["serve"]}),
        ),
        (
            "vscode",
            "user",
            "home/.config/Code/User/mcp.json",
            "servers",
            json!({"type": "stdio", "command": CMD, "args": ["serve"]}),
        ),
        (
            "vscode",
            "project",
            "project/.vscode/mcp.json",
            "servers",
            json!({"type": "stdio", "command": CMD, "args": ["serve"]}),
        ),
        (
            "windsurf",
            "user",
            "home/.codeium/windsurf/mcp_config.json",
            "mcpServers",
            json!({"command": CMD, "args": ["serve"]}),
        ),
        (
            "zed",
            "user",
            "home/.config/zed/settings.json",
            "context_servers",
            json!({"source": "custom", "command": CMD, "args": ["serve"], "env": {}}),
        ),
        (
            "zed",
            "project",
            "project/.zed/settings.json",
            "context_servers",
            json!({"source": "custom", "command": CMD, "args": ["serve"], "env": {}}),
        ),
    ];
    for (client, scope, rel, key, entry) in cases {
        let dir = tempfile::tempdir().unwrap();
        let base = base(dir.path());
        let (plan, out) = run(&[client, "--scope", scope], &base);
        let path = dir.path().join(rel);
        assert_eq!(plan.path, path, "{client} {scope}");
        assert_eq!(plan.change, Change::Added, "{client} {scope}");
        assert_eq!(
            read_json(&path),
            json!({ key: { "fly-machines": entry } }),
            "{client} {scope}"
        );
        assert!(out.contains("Added fly-machines"), "{out}");
        assert!(
            out.contains("auth login"),
            "says how the token is found: {out}"
        );
        assert!(
            backups(&path).is_empty(),
            "no backup of a file that did not exist"
        );
    }
}

#[test]
fn clients_without_a_project_file_refuse_project_scope() {
    let dir = tempfile::tempdir().unwrap();
    for client in [McpClient::ClaudeDesktop, McpClient::Windsurf] {
        let err = config_path(client, Scope::Project, &base(dir.path())).unwrap_err();
        assert!(matches!(err, InstallError::ScopeNotSupported { .. }));
        assert!(err.to_string().contains("--scope user"), "{err}");
    }
}

#[test]
fn other_entries_and_keys_are_kept_and_a_backup_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let path = dir.path().join("home/.cursor/mcp.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let original = "{\n  \"mcpServers\": {\n    \"github\": {\n      \"command\": \"docker\",\n      \"args\": [\"run\", \"-i\"]\n    }\n  },\n  \"zzz\": 1,\n  \"aaa\": true\n}\n";
    std::fs::write(&path, original).unwrap();

    let (plan, out) = run(&["cursor", "--read-only", "--allow-app", "dev-*"], &base);
    assert_eq!(plan.change, Change::Added);
    let text = std::fs::read_to_string(&path).unwrap();
    // Untouched parts keep their exact text and order.
    assert!(text.starts_with("{\n  \"mcpServers\": {\n    \"github\": {\n      \"command\": \"docker\",\n      \"args\": [\"run\", \"-i\"]\n    },"), "{text}");
    assert!(text.find("\"zzz\"").unwrap() < text.find("\"aaa\"").unwrap());
    assert_eq!(
        read_json(&path),
        json!({
            "mcpServers": {
                "github": {"command": "docker", "args": ["run", "-i"]},
                "fly-machines": {"command": CMD, "args": ["serve", "--read-only", "--allow-app", "dev-*"]}
            },
            "zzz": 1,
            "aaa": true
        })
    );
    let backups = backups(&path);
    assert_eq!(backups.len(), 1, "one backup");
    assert_eq!(std::fs::read_to_string(&backups[0]).unwrap(), original);
    assert!(
        out.contains(&backups[0].display().to_string()),
        "names the backup: {out}"
    );
}

#[test]
fn zed_comments_and_trailing_commas_survive() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let path = dir.path().join("home/.config/zed/settings.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let original = "// Zed settings\n//\n// For information on how to configure Zed, see the Zed docs.\n{\n  \"theme\": \"One Dark\", // my theme\n  /* block */\n  \"vim_mode\": true,\n}\n";
    std::fs::write(&path, original).unwrap();

    run(&["zed", "--toolsets", "observe,provision"], &base);
    let text = std::fs::read_to_string(&path).unwrap();
    for kept in [
        "// Zed settings",
        "// my theme",
        "/* block */",
        "\"vim_mode\": true",
    ] {
        assert!(text.contains(kept), "{kept:?} kept in {text}");
    }
    let value: Value = jsonc_value(&text);
    assert_eq!(
        value["context_servers"]["fly-machines"],
        json!({"source": "custom", "command": CMD, "args": ["serve", "--toolsets", "observe,provision"], "env": {}})
    );
    assert_eq!(value["theme"], "One Dark");
}

/// Strips `//` and `/* */` comments and trailing commas well enough for the test files above.
fn jsonc_value(text: &str) -> Value {
    let no_line_comments: String = text
        .lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let re_block = regex::Regex::new(r"(?s)/\*.*?\*/").unwrap();
    let re_trailing = regex::Regex::new(r",(\s*[}\]])").unwrap();
    let cleaned = re_block.replace_all(&no_line_comments, "");
    let cleaned = re_trailing.replace_all(&cleaned, "$1");
    serde_json::from_str(&cleaned).expect("valid JSONC")
}

#[test]
fn reinstalling_is_idempotent_and_changes_update_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let path = dir.path().join("home/.claude.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "{\"numStartups\": 3, \"mcpServers\": {}}\n").unwrap();

    let (first, _) = run(&["claude-code"], &base);
    assert_eq!(first.change, Change::Added);
    let after_first = std::fs::read_to_string(&path).unwrap();

    let (again, out) = run(&["claude-code"], &base);
    assert_eq!(again.change, Change::Unchanged);
    assert!(out.contains("already up to date"), "{out}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), after_first);
    assert_eq!(backups(&path).len(), 1, "no backup when nothing changes");

    let (update, _) = run(&["claude-code", "--no-destroy", "--org", "acme"], &base);
    assert_eq!(update.change, Change::Updated);
    let value = read_json(&path);
    assert_eq!(value["numStartups"], 3);
    assert_eq!(
        value["mcpServers"]["fly-machines"],
        json!({"type": "stdio", "command": CMD, "args": ["serve", "--no-destroy"], "env": {"FLY_ORG": "acme"}})
    );
    assert_eq!(
        value["mcpServers"].as_object().unwrap().len(),
        1,
        "replaced, not duplicated"
    );
    assert_eq!(backups(&path).len(), 2, "each write keeps its own backup");
}

#[test]
fn dry_run_prints_a_diff_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let path = dir.path().join("project/.vscode/mcp.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let original = "{\n  \"servers\": {}\n}\n";
    std::fs::write(&path, original).unwrap();

    let (plan, out) = run(
        &["vscode", "--scope", "project", "--sandbox", "--dry-run"],
        &base,
    );
    assert_eq!(plan.change, Change::Added);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        original,
        "file untouched"
    );
    assert!(backups(&path).is_empty(), "no backup on a dry run");
    assert!(out.contains(&format!("--- {}", path.display())), "{out}");
    assert!(out.contains("+    \"fly-machines\": {"), "{out}");
    assert!(out.contains("\"--sandbox\""), "{out}");
    assert!(out.contains("dry run"), "{out}");
}

#[test]
fn remove_deletes_only_our_entry() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let path = dir.path().join("home/.codeium/windsurf/mcp_config.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "{\"mcpServers\": {\"other\": {\"command\": \"x\"}}}").unwrap();
    run(&["windsurf"], &base);
    let (removed, out) = run(&["windsurf", "--remove"], &base);
    assert_eq!(removed.change, Change::Removed, "{out}");
    assert_eq!(
        read_json(&path),
        json!({"mcpServers": {"other": {"command": "x"}}})
    );
    let (absent, out) = run(&["windsurf", "--remove"], &base);
    assert_eq!(absent.change, Change::Absent);
    assert!(out.contains("nothing to remove"), "{out}");
}

#[test]
fn tokens_are_refused_wherever_they_are_offered() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let canary = "fm2_lJPECAAAAAAAAcanarycanary";
    let attempts: [&[&str]; 5] = [
        &["cursor", "--access-token", canary],
        &["cursor", "--", "--access-token", canary],
        &["cursor", "--", &format!("--access-token={canary}")],
        &["cursor", "--env", &format!("FLY_API_TOKEN={canary}")],
        &["cursor", "--env", &format!("SOMETHING=FlyV1 {canary}")],
    ];
    for argv in attempts {
        let mut out = Vec::new();
        let err = install(&args(argv), &base, CMD, &mut out).unwrap_err();
        assert!(
            matches!(err, InstallError::TokenRefused { .. }),
            "{argv:?}: {err}"
        );
        let message = err.to_string();
        assert!(message.contains("auth login"), "{message}");
        assert!(
            !message.contains(canary),
            "the token is never echoed: {message}"
        );
        assert!(out.is_empty());
    }
    assert!(!dir.path().join("home/.cursor").exists(), "nothing written");
}

#[test]
fn malformed_files_are_left_alone_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let path = dir.path().join("home/.cursor/mcp.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();

    std::fs::write(&path, "{\"mcpServers\": {").unwrap();
    let err = plan(&args(&["cursor"]), &base, CMD).unwrap_err();
    assert!(matches!(err, InstallError::Parse { .. }), "{err}");
    assert!(err.to_string().contains("nothing was changed"), "{err}");

    std::fs::write(&path, "{\"mcpServers\": []}").unwrap();
    let err = plan(&args(&["cursor"]), &base, CMD).unwrap_err();
    assert!(
        matches!(err, InstallError::NotAnObject { ref key, .. } if key == "mcpServers"),
        "{err}"
    );

    std::fs::write(&path, "[1, 2]").unwrap();
    let err = plan(&args(&["cursor"]), &base, CMD).unwrap_err();
    assert!(matches!(err, InstallError::NotAnObject { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "[1, 2]");
}

#[test]
fn serve_options_and_extra_arguments_become_the_entry_args() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let (plan, _) = run(
        &[
            "claude-desktop",
            "--name",
            "fly-dev",
            "--toolsets",
            "all",
            "--exclude-tools",
            "exec_command",
            "--confirm",
            "argument",
            "--allow-org",
            "personal",
            "--allow-app",
            "dev-*",
            "--allow-app",
            "ci-*",
            "--owned-only",
            "--audit-log",
            "/var/log/fly-mcp.jsonl",
            "--env",
            "RUST_LOG=info",
            "--",
            "--max-output",
            "8192",
        ],
        &base,
    );
    assert_eq!(
        plan.entry.unwrap(),
        json!({
            "command": CMD,
            "args": ["serve", "--toolsets", "all", "--exclude-tools", "exec_command", "--owned-only",
                     "--confirm", "argument", "--allow-org", "personal", "--allow-app", "dev-*",
                     "--allow-app", "ci-*", "--audit-log", "/var/log/fly-mcp.jsonl", "--max-output", "8192"],
            "env": {"RUST_LOG": "info"}
        })
    );
    let value = read_json(&plan.path);
    assert!(value["mcpServers"]["fly-dev"].is_object());
}

#[cfg(unix)]
#[test]
fn file_permissions_are_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let path = dir.path().join("home/.claude.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "{}").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    run(&["claude-code"], &base);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    for backup in backups(&path) {
        assert_eq!(
            std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
