"""The real coding-agent clients read what `install` writes.

For each pinned client (tests/interop/clients/package.json): our `install CLIENT` into a
temporary HOME, then the client's own `mcp list` / `mcp get` shows our server connected
(Claude Code, Gemini CLI, opencode start it and do the MCP handshake) or enabled (Codex
and Copilot CLI only read the entry). Claude Code also connects over Streamable HTTP with
a server key, through a remote install that writes only a reference to the variable
holding the key. No model is ever called; the clients' update checks and telemetry are
switched off, and anything else they try beyond loopback fails on this machine."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import SERVER_KEY, run

# Deadline for one client CLI invocation (Copilot unpacks itself on first run).
CLIENT_TIMEOUT_S = 180
# The variable a remote install reads the server key from (the default of --key-env).
KEY_ENV = "FLY_MCP_SERVER_KEY"
NAME = "fly-machines"

# Off switches the clients document for update checks, telemetry and other traffic.
QUIET_ENV = {
    "NO_COLOR": "1",
    "CI": "true",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "GEMINI_TELEMETRY_ENABLED": "false",
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_SHARE": "1",
    "COPILOT_DISABLE_TELEMETRY": "1",
}


@pytest.fixture(scope="session")
def clients_bin() -> Path:
    value = os.environ.get("FLY_MCP_INTEROP_CLIENTS")
    if not value:
        pytest.exit("FLY_MCP_INTEROP_CLIENTS is not set: run the suite through scripts/interop", returncode=2)
    return Path(value)


class Home:
    """A temporary HOME (and project folder) that both `install` and the client use."""

    def __init__(self, root: Path, binary: Path, clients_bin: Path, node_bin: Path):
        self.home = root / "home"
        self.project = root / "project"
        self.home.mkdir()
        self.project.mkdir()
        self.binary = binary
        self.clients_bin = clients_bin
        self.env = {
            "PATH": os.pathsep.join([str(node_bin), "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "CODEX_HOME": str(self.home / ".codex"),
            "COPILOT_HOME": str(self.home / ".copilot"),
            **QUIET_ENV,
        }

    def install(self, *args: str) -> subprocess.CompletedProcess:
        r = run([str(self.binary), "install", *args], env=self.env, cwd=self.project, timeout=60)
        assert r.returncode == 0, f"install {args}: {r.stderr}"
        return r

    def client(self, program: str, *args: str, extra_env: dict[str, str] | None = None) -> str:
        r = run(
            [str(self.clients_bin / program), *args],
            env={**self.env, **(extra_env or {})},
            cwd=self.project,
            timeout=CLIENT_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
        out = r.stdout + r.stderr
        assert r.returncode == 0, f"{program} {args} exited {r.returncode}: {out}"
        return out


@pytest.fixture
def home(tmp_path, binary, clients_bin, node_bin) -> Home:
    return Home(tmp_path, binary, clients_bin, node_bin)


def line_with(out: str, needle: str) -> str:
    lines = [line for line in out.splitlines() if needle in line]
    assert lines, f"no line with {needle!r} in:\n{out}"
    return lines[0]


def test_the_pinned_clients_are_installed(clients_bin: Path, interop_dir: Path):
    lock = json.loads((interop_dir / "clients" / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/@anthropic-ai/claude-code"]["version"] == "2.1.328"
    assert lock["node_modules/@google/gemini-cli"]["version"] == "0.61.0"
    assert lock["node_modules/@openai/codex"]["version"] == "0.169.0"
    assert lock["node_modules/opencode-ai"]["version"] == "1.18.33"
    assert lock["node_modules/@github/copilot"]["version"] == "1.0.102"
    for program in ["claude", "gemini", "codex", "opencode", "copilot"]:
        assert (clients_bin / program).exists(), program


def test_claude_code_connects_to_what_install_wrote(home: Home, needs_sandbox):
    # Another entry and a setting already there survive the install.
    (home.home / ".claude.json").write_text(json.dumps({"numStartups": 2, "mcpServers": {}}))
    home.install("claude-code", "--sandbox")
    out = home.client("claude", "mcp", "list")
    assert "Connected" in line_with(out, f"{NAME}:"), out
    assert json.loads((home.home / ".claude.json").read_text())["numStartups"] == 2


def test_claude_code_connects_over_streamable_http_with_a_key_reference(home: Home, http_server):
    home.install("claude-code", "--url", http_server.url)
    written = (home.home / ".claude.json").read_text()
    assert SERVER_KEY not in written, "only a reference to the variable is written"
    assert "${" + KEY_ENV + "}" in written
    out = home.client("claude", "mcp", "list", extra_env={KEY_ENV: SERVER_KEY})
    line = line_with(out, f"{NAME}:")
    assert http_server.url in line and "Connected" in line, out
    # The key really is what lets it in: a wrong one is refused by our server.
    out = home.client("claude", "mcp", "list", extra_env={KEY_ENV: "not-the-key"})
    assert "Connected" not in line_with(out, f"{NAME}:"), out


def test_gemini_cli_connects_to_what_install_wrote(home: Home, needs_sandbox):
    gemini = home.home / ".gemini"
    gemini.mkdir()
    # Gemini starts user servers only in trusted folders; its settings keep a comment.
    (gemini / "trustedFolders.json").write_text(json.dumps({str(home.project): "TRUST_FOLDER"}))
    (gemini / "settings.json").write_text(
        '{\n  // no usage statistics from tests\n  "privacy": {"usageStatisticsEnabled": false}\n}\n'
    )
    home.install("gemini", "--sandbox")
    assert "// no usage statistics" in (gemini / "settings.json").read_text()
    out = home.client("gemini", "mcp", "list")
    assert "Connected" in line_with(out, f"{NAME}:"), out


def test_opencode_connects_to_what_install_wrote(home: Home, needs_sandbox):
    home.install("opencode", "--sandbox")
    out = home.client("opencode", "mcp", "list")
    assert "connected" in line_with(out, NAME), out


def test_codex_lists_what_install_wrote_as_enabled(home: Home, needs_sandbox):
    codex = home.home / ".codex"
    codex.mkdir()
    (codex / "config.toml").write_text('# my settings\nmodel_reasoning_effort = "low"\n')
    home.install("codex", "--sandbox")
    assert (codex / "config.toml").read_text().startswith("# my settings\n")
    out = home.client("codex", "mcp", "get", NAME)
    assert "enabled: true" in out and "transport: stdio" in out, out
    assert "args: serve --sandbox" in out, out
    assert "enabled" in line_with(home.client("codex", "mcp", "list"), NAME)


def test_codex_reads_the_remote_entry_with_its_key_variable(home: Home):
    home.install("codex", "--url", "http://127.0.0.1:9/mcp", "--name", "remote")
    out = home.client("codex", "mcp", "get", "remote")
    assert "transport: streamable_http" in out and f"bearer_token_env_var: {KEY_ENV}" in out, out


@pytest.mark.parametrize("client", ["copilot", "vscode"])
def test_copilot_cli_lists_what_install_wrote_as_enabled(home: Home, client: str, needs_sandbox):
    # `vscode` writes the portable Copilot file, which the Copilot CLI reads too.
    home.install(client, "--sandbox")
    out = home.client("copilot", "mcp", "get", NAME)
    assert "Status: Enabled" in out and "Source: User" in out, out
    assert "serve --sandbox" in out, out
