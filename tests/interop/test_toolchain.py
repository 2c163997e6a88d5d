"""The pinned third-party clients are installed and runnable (Node 22, Inspector CLI,
conformance suite, Python mcp SDK): the rest of the suite relies on exactly these."""

import importlib.metadata
import json
from pathlib import Path

from conftest import run


def test_python_sdk_is_the_pinned_version():
    assert importlib.metadata.version("mcp") == "2.3.0"


def test_node_is_22(node_bin: Path):
    r = run([str(node_bin / "node"), "--version"], timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("v22."), r.stdout


def test_pinned_node_packages(interop_dir: Path):
    lock = json.loads((interop_dir / "node" / "package-lock.json").read_text())
    packages = lock["packages"]
    assert packages["node_modules/@modelcontextprotocol/inspector"]["version"] == "2.12.0"
    assert packages["node_modules/@modelcontextprotocol/conformance"]["version"] == "0.2.0-alpha.12"
    assert packages["node_modules/node"]["version"] == "22.23.3"


def test_inspector_cli_runs(node_bin: Path):
    r = run([str(node_bin / "mcp-inspector"), "--cli", "--version"], timeout=60)
    assert r.returncode == 0, r.stderr
    assert "2.12.0" in r.stdout


def test_conformance_suite_knows_the_required_scenarios(node_bin: Path):
    r = run([str(node_bin / "conformance"), "list", "--server"], timeout=60)
    assert r.returncode == 0, r.stderr
    for scenario in [
        "server-initialize",
        "ping",
        "tools-list",
        "server-session-lifecycle",
        "dns-rebinding-protection",
        "http-header-validation",
    ]:
        assert f"- {scenario} " in r.stdout, scenario
