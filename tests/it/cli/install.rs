//! `install CLIENT`: every client's file location and entry shape per scope and platform,
//! other entries and comments kept, backups, dry runs, removal, strict clients refusing
//! JSONC, symlinks kept, remote installs, `--print`, and tokens refused.

use std::path::{Path, PathBuf};

use clap::Parser;
use fly_machines_mcp::cli::install::{
    Change, ConfigBase, InstallArgs, InstallError, McpClient, Plan, Platform, Scope, config_path,
    install, plan,
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
    ConfigBase::under_home(Platform::Linux, &dir.join("home"), &dir.join("project"))
}

fn run(argv: &[&str], base: &ConfigBase) -> (Plan, String) {
    let mut out = Vec::new();
    let plan = install(&args(argv), base, CMD, &mut out).expect("install succeeds");
    (plan, String::from_utf8(out).expect("utf-8 output"))
}

fn fails(argv: &[&str], base: &ConfigBase) -> InstallError {
    let mut out = Vec::new();
    let err = install(&args(argv), base, CMD, &mut out).unwrap_err();
    assert!(out.is_empty(), "nothing printed on failure");
    err
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("config written")
}

/// The file as a JSON value, whatever its format (JSON with comments, TOML, YAML).
fn value_of(path: &Path) -> Value {
    let text = read(path);
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => {
            serde_json::to_value(text.parse::<toml::Table>().expect("valid TOML")).unwrap()
        }
        Some("yaml") => serde_yaml::from_str(&text).expect("valid YAML"),
        _ => jsonc_value(&text),
    }
}

/// Strips `//` and `/* */` comments and trailing commas well enough for the test files here.
fn jsonc_value(text: &str) -> Value {
    let no_line_comments: String = text
        .lines()
        .map(|line| {
            // A `//` outside a string (an even number of quotes before it) starts a comment.
            let comment = line
                .match_indices("//")
                .map(|(i, _)| i)
                .find(|&i| line[..i].matches('"').count() % 2 == 0);
            comment.map_or(line, |i| &line[..i])
        })
        .collect::<Vec<_>>()
        .join("\n");
    let re_block = regex::Regex::new(r"(?s)/\*.*?\*/").unwrap();
    let re_trailing = regex::Regex::new(r",(\s*[}\]])").unwrap();
    let cleaned = re_block.replace_all(&no_line_comments, "");
    let cleaned = re_trailing.replace_all(&cleaned, "$1");
    serde_json::from_str(&cleaned).expect("valid JSON (with comments)")
}

fn backups(path: &Path) -> Vec<PathBuf> {
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

fn stdio(with_type: bool) -> Value {
    if with_type {
        json!({"type": "stdio", "command": CMD, "args": ["serve"]})
    } else {
        json!({"command": CMD, "args": ["serve"]})
    }
}

#[test]
fn every_client_and_scope_gets_its_documented_file_and_entry_shape() {
    let copilot = json!({"type": "stdio", "command": CMD, "args": ["serve"], "tools": ["*"]});
    let zed = json!({"command": CMD, "args": ["serve"], "env": {}});
    let goose = json!({"name": "fly-machines", "type": "stdio", "cmd": CMD, "args": ["serve"],
        "envs": {}, "enabled": true, "timeout": 300,
        "description": "Fly.io apps, Machines, volumes, IPs, secrets and certificates"});
    let opencode = json!({"type": "local", "command": [CMD, "serve"], "enabled": true});
    let cases: Vec<(&str, &str, &str, &str, Value)> = vec![
        (
            "claude-desktop",
            "user",
            "home/.config/Claude/claude_desktop_config.json",
            "mcpServers",
            stdio(false),
        ),
        (
            "claude-code",
            "user",
            "home/.claude.json",
            "mcpServers",
            stdio(true),
        ),
        (
            "claude-code",
            "project",
            "project/.mcp.json",
            "mcpServers",
            stdio(true),
        ),
        (
            "cursor",
            "user",
            "home/.cursor/mcp.json",
            "mcpServers",
            stdio(false),
        ),
        (
            "cursor",
            "project",
            "project/.cursor/mcp.json",
            "mcpServers",
            stdio(false),
        ),
        (
            "vscode",
            "user",
            "home/.copilot/mcp-config.json",
            "mcpServers",
            copilot.clone(),
        ),
        (
            "vscode",
            "project",
            "project/.mcp.json",
            "mcpServers",
            copilot.clone(),
        ),
        (
            "windsurf",
            "user",
            "home/.codeium/windsurf/mcp_config.json",
            "mcpServers",
            stdio(false),
        ),
        (
            "zed",
            "user",
            "home/.config/zed/settings.json",
            "context_servers",
            zed.clone(),
        ),
        (
            "zed",
            "project",
            "project/.zed/settings.json",
            "context_servers",
            zed,
        ),
        (
            "codex",
            "user",
            "home/.codex/config.toml",
            "mcp_servers",
            stdio(false),
        ),
        (
            "codex",
            "project",
            "project/.codex/config.toml",
            "mcp_servers",
            stdio(false),
        ),
        (
            "copilot",
            "user",
            "home/.copilot/mcp-config.json",
            "mcpServers",
            copilot.clone(),
        ),
        (
            "copilot",
            "project",
            "project/.mcp.json",
            "mcpServers",
            copilot,
        ),
        (
            "gemini",
            "user",
            "home/.gemini/settings.json",
            "mcpServers",
            stdio(false),
        ),
        (
            "gemini",
            "project",
            "project/.gemini/settings.json",
            "mcpServers",
            stdio(false),
        ),
        (
            "opencode",
            "user",
            "home/.config/opencode/opencode.json",
            "mcp",
            opencode.clone(),
        ),
        (
            "opencode",
            "project",
            "project/opencode.json",
            "mcp",
            opencode,
        ),
        (
            "kiro",
            "user",
            "home/.kiro/settings/mcp.json",
            "mcpServers",
            stdio(false),
        ),
        (
            "kiro",
            "project",
            "project/.kiro/settings/mcp.json",
            "mcpServers",
            stdio(false),
        ),
        (
            "cline",
            "user",
            "home/.config/Code/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json",
            "mcpServers",
            stdio(true),
        ),
        (
            "lm-studio",
            "user",
            "home/.lmstudio/mcp.json",
            "mcpServers",
            stdio(false),
        ),
        (
            "goose",
            "user",
            "home/.config/goose/config.yaml",
            "extensions",
            goose,
        ),
    ];
    for (client, scope, rel, key, entry) in cases {
        let dir = tempfile::tempdir().unwrap();
        let base = base(dir.path());
        let (plan, out) = run(&[client, "--scope", scope], &base);
        let path = dir.path().join(rel);
        assert_eq!(plan.path, path, "{client} {scope}");
        assert_eq!(plan.change, Change::Added, "{client} {scope}");
        assert_eq!(plan.entry.as_ref(), Some(&entry), "{client} {scope}");
        assert_eq!(
            value_of(&path),
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
        // A second install changes nothing, in every format.
        let (again, _) = run(&[client, "--scope", scope], &base);
        assert_eq!(again.change, Change::Unchanged, "{client} {scope}");
    }
}

#[test]
fn clients_honour_their_environment_variables_and_platform_folders() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let at = |base: &ConfigBase, client| config_path(client, Scope::User, base).unwrap().unwrap();
    let linux = base(d)
        .with_var("CLAUDE_CONFIG_DIR", "/cfg/claude")
        .with_var("CODEX_HOME", "/cfg/codex")
        .with_var("COPILOT_HOME", "/cfg/copilot")
        .with_var("XDG_CONFIG_HOME", "/xdg");
    assert_eq!(
        at(&linux, McpClient::ClaudeCode),
        Path::new("/cfg/claude/.claude.json")
    );
    assert_eq!(
        at(&linux, McpClient::Codex),
        Path::new("/cfg/codex/config.toml")
    );
    assert_eq!(
        at(&linux, McpClient::Copilot),
        Path::new("/cfg/copilot/mcp-config.json")
    );
    assert_eq!(
        at(&linux, McpClient::Vscode),
        Path::new("/cfg/copilot/mcp-config.json")
    );
    assert_eq!(
        at(&linux, McpClient::Zed),
        Path::new("/xdg/zed/settings.json")
    );
    assert_eq!(
        at(&linux, McpClient::Opencode),
        Path::new("/xdg/opencode/opencode.json")
    );
    assert_eq!(
        at(&linux, McpClient::Goose),
        Path::new("/xdg/goose/config.yaml")
    );
    let flatpak = linux
        .clone()
        .with_var("FLATPAK_XDG_CONFIG_HOME", "/flatpak/config");
    assert_eq!(
        at(&flatpak, McpClient::Zed),
        Path::new("/flatpak/config/zed/settings.json")
    );

    let home = d.join("home");
    let mac = ConfigBase::under_home(Platform::MacOs, &home, d);
    assert_eq!(
        at(&mac, McpClient::Zed),
        home.join(".config/zed/settings.json")
    );
    assert_eq!(
        at(&mac, McpClient::ClaudeDesktop),
        home.join("Library/Application Support/Claude/claude_desktop_config.json")
    );
    let windows = ConfigBase::under_home(Platform::Windows, &home, d);
    assert_eq!(
        at(&windows, McpClient::Zed),
        home.join("AppData/Roaming/Zed/settings.json")
    );
    assert_eq!(
        at(&windows, McpClient::Goose),
        home.join("AppData/Roaming/Block/goose/config/config.yaml")
    );

    // opencode: an existing opencode.jsonc (and no opencode.json) is the one edited.
    let jsonc = home.join(".config/opencode/opencode.jsonc");
    write(&jsonc, "{}\n");
    assert_eq!(at(&base(d), McpClient::Opencode), jsonc);
}

#[test]
fn claude_desktop_on_windows_prefers_the_msix_folder_and_asks_when_there_are_two() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let windows = ConfigBase::under_home(Platform::Windows, &home, dir.path());
    let at = || config_path(McpClient::ClaudeDesktop, Scope::User, &windows);
    assert_eq!(
        at().unwrap().unwrap(),
        home.join("AppData/Roaming/Claude/claude_desktop_config.json"),
        "no MSIX package: %APPDATA%"
    );
    let packages = home.join("AppData/Local/Packages");
    let msix = packages.join("Claude_pzs8sxrjxfjjc/LocalCache/Roaming/Claude");
    std::fs::create_dir_all(&msix).unwrap();
    std::fs::create_dir_all(packages.join("SomethingElse_1/LocalCache/Roaming/Claude")).unwrap();
    assert_eq!(
        at().unwrap().unwrap(),
        msix.join("claude_desktop_config.json")
    );

    std::fs::create_dir_all(packages.join("Claude_otherpublisher/LocalCache/Roaming/Claude"))
        .unwrap();
    let err = at().unwrap_err();
    assert!(
        matches!(err, InstallError::AmbiguousConfig { ref candidates, .. } if candidates.len() == 2),
        "{err}"
    );
    assert!(err.to_string().contains("--config-file"), "{err}");
}

#[test]
fn clients_without_a_project_file_refuse_project_scope() {
    let dir = tempfile::tempdir().unwrap();
    for client in [
        McpClient::ClaudeDesktop,
        McpClient::Windsurf,
        McpClient::Cline,
        McpClient::LmStudio,
        McpClient::Goose,
    ] {
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
    let original = "{\n  \"mcpServers\": {\n    \"github\": {\n      \"command\": \"docker\",\n      \"args\": [\"run\", \"-i\"]\n    }\n  },\n  \"zzz\": 1,\n  \"aaa\": true\n}\n";
    write(&path, original);

    let (plan, out) = run(&["cursor", "--read-only", "--allow-app", "dev-*"], &base);
    assert_eq!(plan.change, Change::Added);
    let text = read(&path);
    assert!(text.starts_with("{\n  \"mcpServers\": {\n    \"github\": {\n      \"command\": \"docker\",\n      \"args\": [\"run\", \"-i\"]\n    },"), "{text}");
    assert!(text.find("\"zzz\"").unwrap() < text.find("\"aaa\"").unwrap());
    assert_eq!(
        value_of(&path),
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
    assert_eq!(read(&backups[0]), original);
    assert!(
        out.contains(&backups[0].display().to_string()),
        "names the backup: {out}"
    );

    // --remove restores the file as it was.
    let (removed, _) = run(&["cursor", "--remove"], &base);
    assert_eq!(removed.change, Change::Removed);
    assert_eq!(
        value_of(&path),
        serde_json::from_str::<Value>(original).unwrap()
    );
}

#[test]
fn strict_json_clients_refuse_comments_and_trailing_commas_and_change_nothing() {
    let commented = "{\n  // my servers\n  \"mcpServers\": {}\n}\n";
    let trailing = "{\n  \"mcpServers\": {\"x\": {\"command\": \"y\"},},\n}\n";
    let cases = [
        (
            "claude-desktop",
            "home/.config/Claude/claude_desktop_config.json",
        ),
        ("claude-code", "home/.claude.json"),
        ("cursor", "home/.cursor/mcp.json"),
        ("windsurf", "home/.codeium/windsurf/mcp_config.json"),
        ("kiro", "home/.kiro/settings/mcp.json"),
        ("lm-studio", "home/.lmstudio/mcp.json"),
        (
            "cline",
            "home/.config/Code/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json",
        ),
    ];
    for (client, rel) in cases {
        for original in [commented, trailing] {
            let dir = tempfile::tempdir().unwrap();
            let base = base(dir.path());
            let path = dir.path().join(rel);
            write(&path, original);
            let err = fails(&[client], &base);
            assert!(
                matches!(err, InstallError::WrongDialect { .. }),
                "{client}: {err}"
            );
            let message = err.to_string();
            assert!(
                message.contains("strict JSON") && message.contains("cannot read this file either"),
                "{message}"
            );
            assert!(message.contains("nothing was changed"), "{message}");
            assert_eq!(read(&path), original, "{client}: untouched");
            assert!(backups(&path).is_empty());
        }
    }
    // Gemini CLI strips comments but refuses trailing commas.
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let path = dir.path().join("home/.gemini/settings.json");
    write(&path, trailing);
    let err = fails(&["gemini"], &base);
    assert!(matches!(err, InstallError::WrongDialect { .. }), "{err}");
    assert!(err.to_string().contains("without trailing commas"), "{err}");
    write(&path, commented);
    run(&["gemini"], &base);
    let text = read(&path);
    assert!(text.contains("// my servers"), "{text}");
    assert_eq!(value_of(&path)["mcpServers"]["fly-machines"], stdio(false));
}

#[test]
fn jsonc_clients_keep_comments_and_trailing_commas() {
    let original = "// settings\n{\n  \"theme\": \"One Dark\", // my theme\n  /* block */\n  \"vim_mode\": true,\n}\n";
    let cases = [
        ("zed", "home/.config/zed/settings.json", "context_servers"),
        ("vscode", "home/.copilot/mcp-config.json", "mcpServers"),
        ("copilot", "home/.copilot/mcp-config.json", "mcpServers"),
        ("opencode", "home/.config/opencode/opencode.json", "mcp"),
    ];
    for (client, rel, key) in cases {
        let dir = tempfile::tempdir().unwrap();
        let base = base(dir.path());
        let path = dir.path().join(rel);
        write(&path, original);
        run(&[client, "--toolsets", "observe,provision"], &base);
        let text = read(&path);
        for kept in [
            "// settings",
            "// my theme",
            "/* block */",
            "\"vim_mode\": true",
        ] {
            assert!(text.contains(kept), "{client}: {kept:?} kept in {text}");
        }
        let value = value_of(&path);
        assert_eq!(value["theme"], "One Dark");
        assert!(value[key]["fly-machines"].is_object(), "{client}: {text}");
        run(&[client, "--remove"], &base);
        let value = value_of(&path);
        assert!(
            value[key].as_object().is_none_or(|m| m.is_empty()),
            "{client}: removed"
        );
        assert!(read(&path).contains("// my theme"));
    }
}

#[test]
fn zed_entries_lose_the_source_key_its_settings_migration_removes() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let path = dir.path().join("home/.config/zed/settings.json");
    write(
        &path,
        &format!(
            "{{\"context_servers\": {{\"fly-machines\": {{\"source\": \"custom\", \"command\": \"{CMD}\", \"args\": [\"serve\"], \"env\": {{}}}}}}}}\n"
        ),
    );
    let (plan, _) = run(&["zed"], &base);
    assert_eq!(
        plan.change,
        Change::Updated,
        "an entry with `source` is rewritten"
    );
    assert_eq!(
        value_of(&path)["context_servers"]["fly-machines"],
        json!({"command": CMD, "args": ["serve"], "env": {}})
    );
}

#[test]
fn codex_toml_keeps_comments_and_order_and_remove_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path()).with_var("CODEX_HOME", dir.path().join("codex").to_str().unwrap());
    let path = dir.path().join("codex/config.toml");
    let original = "# my codex settings\nmodel = \"gpt-5\" # the model\n\n[mcp_servers.github]\ncommand = \"docker\" # keep me\nargs = [\"run\"]\n\n[projects.\"/src\"]\ntrust_level = \"trusted\"\n";
    write(&path, original);
    let (plan, _) = run(&["codex", "--org", "acme", "--no-destroy"], &base);
    assert_eq!(plan.change, Change::Added);
    let text = read(&path);
    assert!(
        text.starts_with("# my codex settings\nmodel = \"gpt-5\" # the model\n"),
        "{text}"
    );
    assert!(text.contains("command = \"docker\" # keep me"), "{text}");
    assert!(text.contains("[mcp_servers.fly-machines]\n"), "{text}");
    assert!(
        text.contains("[mcp_servers.fly-machines.env]\nFLY_ORG = \"acme\"\n"),
        "{text}"
    );
    let value = value_of(&path);
    assert_eq!(
        value["mcp_servers"]["fly-machines"],
        json!({"command": CMD, "args": ["serve", "--no-destroy"], "env": {"FLY_ORG": "acme"}})
    );
    assert_eq!(value["projects"]["/src"]["trust_level"], "trusted");
    assert_eq!(backups(&path).len(), 1);
    let (removed, _) = run(&["codex", "--remove"], &base);
    assert_eq!(removed.change, Change::Removed);
    assert_eq!(
        read(&path),
        original,
        "--remove restores the file byte for byte"
    );
}

#[test]
fn goose_yaml_keeps_comments_and_remove_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let path = dir.path().join("home/.config/goose/config.yaml");
    let original = "# goose config\nGOOSE_PROVIDER: openai # provider\nextensions:\n  developer:\n    bundled: true\n    enabled: true # on\n    name: developer\n    type: builtin\n# the mode\nGOOSE_MODE: auto\n";
    write(&path, original);
    let (plan, out) = run(&["goose", "--read-only", "--env", "RUST_LOG=info"], &base);
    assert_eq!(plan.change, Change::Added, "{out}");
    let text = read(&path);
    for kept in [
        "# goose config",
        "# provider",
        "enabled: true # on",
        "# the mode",
        "GOOSE_MODE: auto",
    ] {
        assert!(text.contains(kept), "{kept:?} kept in {text}");
    }
    let value = value_of(&path);
    assert_eq!(value["extensions"]["developer"]["type"], "builtin");
    assert_eq!(value["extensions"]["fly-machines"]["cmd"], CMD);
    assert_eq!(
        value["extensions"]["fly-machines"]["args"],
        json!(["serve", "--read-only"])
    );
    assert_eq!(
        value["extensions"]["fly-machines"]["envs"],
        json!({"RUST_LOG": "info"})
    );
    assert_eq!(
        run(&["goose", "--read-only", "--env", "RUST_LOG=info"], &base)
            .0
            .change,
        Change::Unchanged
    );
    let (removed, _) = run(&["goose", "--remove"], &base);
    assert_eq!(removed.change, Change::Removed);
    assert_eq!(
        read(&path),
        original,
        "--remove restores the file byte for byte"
    );
}

#[cfg(unix)]
#[test]
fn a_symlinked_config_is_edited_at_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let target = dir.path().join("dotfiles/claude.json");
    write(&target, "{\"numStartups\": 1}\n");
    let link = dir.path().join("home/.claude.json");
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("../dotfiles/claude.json", &link).unwrap();

    let (_, out) = run(&["claude-code"], &base);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "still a link"
    );
    assert!(out.contains("written to"), "{out}");
    let value = value_of(&target);
    assert_eq!(value["numStartups"], 1);
    assert_eq!(value["mcpServers"]["fly-machines"], stdio(true));
    assert_eq!(
        backups(&target).len(),
        1,
        "the backup sits next to the target"
    );
    run(&["claude-code", "--remove"], &base);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        value_of(&target),
        json!({"numStartups": 1, "mcpServers": {}})
    );
}

#[test]
fn remote_installs_reference_the_key_variable_where_the_client_can() {
    let url = "https://fly-mcp.example.com/mcp";
    let cases: [(&str, Value); 7] = [
        (
            "claude-code",
            json!({"type": "http", "url": url, "headers": {"Authorization": "Bearer ${FLY_MCP_SERVER_KEY}"}}),
        ),
        (
            "cursor",
            json!({"url": url, "headers": {"Authorization": "Bearer ${env:FLY_MCP_SERVER_KEY}"}}),
        ),
        (
            "windsurf",
            json!({"serverUrl": url, "headers": {"Authorization": "Bearer ${env:FLY_MCP_SERVER_KEY}"}}),
        ),
        (
            "kiro",
            json!({"url": url, "headers": {"Authorization": "Bearer ${FLY_MCP_SERVER_KEY}"}}),
        ),
        (
            "gemini",
            json!({"httpUrl": url, "headers": {"Authorization": "Bearer ${FLY_MCP_SERVER_KEY}"}}),
        ),
        (
            "opencode",
            json!({"type": "remote", "url": url, "headers": {"Authorization": "Bearer {env:FLY_MCP_SERVER_KEY}"}, "enabled": true}),
        ),
        (
            "codex",
            json!({"url": url, "bearer_token_env_var": "FLY_MCP_SERVER_KEY"}),
        ),
    ];
    for (client, entry) in cases {
        let dir = tempfile::tempdir().unwrap();
        let base = base(dir.path()).with_var("FLY_MCP_SERVER_KEY", "secret-server-key-123");
        let (plan, out) = run(&[client, "--url", url], &base);
        assert_eq!(plan.entry.as_ref(), Some(&entry), "{client}");
        assert!(
            !plan.after.contains("secret-server-key-123"),
            "{client}: no key in the file"
        );
        assert!(
            out.contains("$FLY_MCP_SERVER_KEY"),
            "{client}: says where the key comes from: {out}"
        );
        assert!(!out.contains("auth login"), "{out}");
    }
    // --key-env names another variable; --no-key writes no header.
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let (plan, _) = run(
        &[
            "claude-code",
            "--url",
            url,
            "--key-env",
            "MY_KEY",
            "--dry-run",
        ],
        &base,
    );
    assert_eq!(
        plan.entry.unwrap()["headers"]["Authorization"],
        "Bearer ${MY_KEY}"
    );
    let (plan, _) = run(&["codex", "--url", url, "--no-key", "--dry-run"], &base);
    assert_eq!(plan.entry.unwrap(), json!({"url": url}));
}

#[test]
fn literal_only_clients_stop_unless_allowed_and_never_print_the_key() {
    let url = "http://127.0.0.1:8080/mcp";
    let key = "secret-server-key-123";
    for client in ["zed", "vscode", "copilot", "cline", "lm-studio", "goose"] {
        let dir = tempfile::tempdir().unwrap();
        let base = base(dir.path()).with_var("FLY_MCP_SERVER_KEY", key);
        let err = fails(&[client, "--url", url], &base);
        assert!(
            matches!(err, InstallError::LiteralKeyRefused { .. }),
            "{client}: {err}"
        );
        assert!(err.to_string().contains("--allow-literal-key"), "{err}");
        assert!(!err.to_string().contains(key));

        let (plan, out) = run(
            &[client, "--url", url, "--allow-literal-key", "--dry-run"],
            &base,
        );
        assert!(
            plan.after.contains(&format!("Bearer {key}")),
            "{client}: the key goes in the file"
        );
        assert!(!out.contains(key), "{client}: never printed: {out}");
        assert!(out.contains("<server key>"), "{out}");
        let (_, out) = run(&[client, "--url", url, "--allow-literal-key"], &base);
        assert!(!out.contains(key), "{out}");
        assert!(out.contains("plain text"), "{out}");
        assert!(read(&plan.path).contains(key));
    }
    let dir = tempfile::tempdir().unwrap();
    let err = fails(
        &["zed", "--url", url, "--allow-literal-key"],
        &base(dir.path()),
    );
    assert!(matches!(err, InstallError::KeyVarUnset { .. }), "{err}");
    let with_token = base(dir.path()).with_var("FLY_MCP_SERVER_KEY", "fm2_lJPECAAAAAAAAcanary");
    let err = fails(&["zed", "--url", url, "--allow-literal-key"], &with_token);
    assert!(matches!(err, InstallError::TokenRefused { .. }), "{err}");
    assert!(!err.to_string().contains("canary"));
}

#[test]
fn remote_installs_refuse_what_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let url = "https://fly-mcp.example.com/mcp";
    let err = fails(&["claude-desktop", "--url", url], &base);
    assert!(
        matches!(err, InstallError::RemoteNotSupported { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("Connectors"), "{err}");
    let err = fails(&["claude-code", "--url", url, "--read-only"], &base);
    assert!(
        matches!(err, InstallError::ServeOptionWithUrl { .. }),
        "{err}"
    );
    let err = fails(&["claude-code", "--url", "ftp://x/mcp"], &base);
    assert!(matches!(err, InstallError::InvalidUrl { .. }), "{err}");
    let err = fails(
        &["claude-code", "--url", url, "--key-env", "NOT A VAR"],
        &base,
    );
    assert!(matches!(err, InstallError::InvalidKeyVar { .. }), "{err}");
    assert!(!dir.path().join("home").exists(), "nothing written");
}

#[test]
fn print_shows_the_snippet_and_where_it_goes_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let (_, out) = run(&["codex", "--print", "--sandbox"], &base);
    assert!(
        out.contains(&format!(
            "Add this to {}",
            dir.path().join("home/.codex/config.toml").display()
        )),
        "{out}"
    );
    assert!(out.contains("[mcp_servers.fly-machines]\ncommand = \"/opt/bin/fly-machines-mcp\"\nargs = [\"serve\", \"--sandbox\"]"), "{out}");
    let (_, out) = run(&["goose", "--print"], &base);
    assert!(
        out.contains("extensions:\n  fly-machines:\n    name: \"fly-machines\""),
        "{out}"
    );
    let (plan, out) = run(&["other", "--print"], &base);
    assert!(
        out.contains("your client's MCP configuration file"),
        "{out}"
    );
    assert_eq!(plan.entry.unwrap(), stdio(false));
    assert!(!dir.path().join("home").exists(), "nothing written");
    let err = fails(&["other"], &base);
    assert!(matches!(err, InstallError::NeedsConfigFile { .. }), "{err}");
    let file = dir.path().join("elsewhere/mcp.json");
    run(&["other", "--config-file", file.to_str().unwrap()], &base);
    assert_eq!(value_of(&file)["mcpServers"]["fly-machines"], stdio(false));
}

#[test]
fn claude_code_warns_that_a_running_client_rewrites_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("claude"), "").unwrap();
    let (_, out) = run(&["claude-code"], &base(dir.path()));
    assert!(out.contains("quit it first"), "{out}");
    assert!(
        !out.contains("claude mcp add-json"),
        "no claude on PATH: {out}"
    );
    run(&["claude-code", "--remove"], &base(dir.path()));
    let with_claude = base(dir.path()).with_var("PATH", bin.to_str().unwrap());
    let (_, out) = run(&["claude-code"], &with_claude);
    assert!(
        out.contains("claude mcp add-json --scope user fly-machines '{"),
        "{out}"
    );
}

#[test]
fn reinstalling_is_idempotent_and_changes_update_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let path = dir.path().join("home/.claude.json");
    write(&path, "{\"numStartups\": 3, \"mcpServers\": {}}\n");

    let (first, _) = run(&["claude-code"], &base);
    assert_eq!(first.change, Change::Added);
    let after_first = read(&path);

    let (again, out) = run(&["claude-code"], &base);
    assert_eq!(again.change, Change::Unchanged);
    assert!(out.contains("already up to date"), "{out}");
    assert_eq!(read(&path), after_first);
    assert_eq!(backups(&path).len(), 1, "no backup when nothing changes");

    let (update, _) = run(&["claude-code", "--no-destroy", "--org", "acme"], &base);
    assert_eq!(update.change, Change::Updated);
    let value = value_of(&path);
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
    let path = dir.path().join("project/.mcp.json");
    let original = "{\n  \"mcpServers\": {}\n}\n";
    write(&path, original);

    let (plan, out) = run(
        &["vscode", "--scope", "project", "--sandbox", "--dry-run"],
        &base,
    );
    assert_eq!(plan.change, Change::Added);
    assert_eq!(read(&path), original, "file untouched");
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
    write(&path, "{\"mcpServers\": {\"other\": {\"command\": \"x\"}}}");
    run(&["windsurf"], &base);
    let (removed, out) = run(&["windsurf", "--remove"], &base);
    assert_eq!(removed.change, Change::Removed, "{out}");
    assert_eq!(
        value_of(&path),
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
        let err = fails(argv, &base);
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
    }
    assert!(!dir.path().join("home/.cursor").exists(), "nothing written");
}

#[test]
fn malformed_files_are_left_alone_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let path = dir.path().join("home/.cursor/mcp.json");

    write(&path, "{\"mcpServers\": {");
    let err = plan(&args(&["cursor"]), &base, CMD).unwrap_err();
    assert!(matches!(err, InstallError::Parse { .. }), "{err}");
    assert!(err.to_string().contains("nothing was changed"), "{err}");

    write(&path, "{\"mcpServers\": []}");
    let err = plan(&args(&["cursor"]), &base, CMD).unwrap_err();
    assert!(
        matches!(err, InstallError::NotAnObject { ref key, .. } if key == "mcpServers"),
        "{err}"
    );

    write(&path, "[1, 2]");
    let err = plan(&args(&["cursor"]), &base, CMD).unwrap_err();
    assert!(matches!(err, InstallError::NotAnObject { .. }), "{err}");
    assert_eq!(read(&path), "[1, 2]");

    let toml = dir.path().join("home/.codex/config.toml");
    write(&toml, "mcp_servers = 3\n");
    let err = plan(&args(&["codex"]), &base, CMD).unwrap_err();
    assert!(matches!(err, InstallError::NotAnObject { .. }), "{err}");
    write(&toml, "[mcp_servers\n");
    let err = plan(&args(&["codex"]), &base, CMD).unwrap_err();
    assert!(matches!(err, InstallError::Parse { .. }), "{err}");

    let yaml = dir.path().join("home/.config/goose/config.yaml");
    write(&yaml, "extensions: 3\n");
    let err = plan(&args(&["goose"]), &base, CMD).unwrap_err();
    assert!(matches!(err, InstallError::NotAnObject { .. }), "{err}");
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
    assert!(value_of(&plan.path)["mcpServers"]["fly-dev"].is_object());
}

#[cfg(unix)]
#[test]
fn file_permissions_are_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let path = dir.path().join("home/.claude.json");
    write(&path, "{}");
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
