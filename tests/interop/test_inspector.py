"""The MCP Inspector CLI (2.12.0) drives the real binary: `tools/list` (plain and with the
`--strict` schema-portability lint) and a `tools/call`, over stdio and over HTTP with a
server key."""

import json
from pathlib import Path

from conftest import run


def inspector(node_bin: Path, *args: str) -> list[str]:
    return [str(node_bin / "mcp-inspector"), "--cli", *args]


def server_env(command) -> list[str]:
    """`-e KEY=VALUE` for the server's own environment (the Inspector passes the child a
    minimal environment)."""
    return [arg for key, value in command.env.items() for arg in ("-e", f"{key}={value}")]


def parse_json(stdout: str):
    """The JSON the Inspector prints (`{"result": …}` around the MCP result)."""
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError as e:
        raise AssertionError(f"not JSON ({e}): {stdout[:2000]}") from e
    return data.get("result", data) if isinstance(data, dict) else data


def test_tools_list_over_stdio(node_bin, binary, server_command):
    r = run(inspector(node_bin, "-q", *server_env(server_command), str(binary), *server_command.args, "--method", "tools/list", "--format", "json"))
    assert r.returncode == 0, r.stderr + r.stdout
    tools = parse_json(r.stdout)["tools"]
    names = {t["name"] for t in tools}
    assert {"platform_info", "destroy_machines"} <= names, names
    for tool in tools:
        assert tool.get("annotations"), tool["name"]
        assert tool.get("outputSchema"), tool["name"]


def test_tools_list_is_strict_clean(node_bin, binary, server_command):
    r = run(
        inspector(
            node_bin, "--strict", *server_env(server_command), str(binary), *server_command.args,
            "--method", "tools/list",
        )
    )
    # Exit 6 means error-severity portability problems; warnings are printed for review.
    assert r.returncode == 0, f"--strict found schema portability errors:\n{r.stderr}\n{r.stdout}"
    print(r.stderr)


def test_tools_call_over_stdio(node_bin, binary, server_command, needs_sandbox):
    r = run(
        inspector(
            node_bin, "-q", *server_env(server_command), str(binary), *server_command.args,
            "--method", "tools/call", "--tool-name", "platform_info", "--format", "json",
        )
    )
    assert r.returncode == 0, r.stderr + r.stdout
    result = parse_json(r.stdout)
    assert not result.get("isError"), result
    assert result.get("structuredContent"), result


def test_tools_list_over_http_with_a_server_key(node_bin, http_server):
    auth = f"Authorization: Bearer {http_server.key}"
    r = run(inspector(node_bin, "-q", http_server.url, "--header", auth, "--method", "tools/list", "--format", "json"))
    assert r.returncode == 0, r.stderr + r.stdout
    assert "platform_info" in {t["name"] for t in parse_json(r.stdout)["tools"]}


def test_tools_call_over_http_with_a_server_key(node_bin, http_server, needs_sandbox):
    auth = f"Authorization: Bearer {http_server.key}"
    r = run(
        inspector(
            node_bin, "-q", http_server.url, "--header", auth,
            "--method", "tools/call", "--tool-name", "platform_info", "--format", "json",
        )
    )
    assert r.returncode == 0, r.stderr + r.stdout
    assert not parse_json(r.stdout).get("isError")
