"""Shared fixtures for the interop suite: where the binary and the installed clients
are, and helpers that run them with deadlines. scripts/interop sets the environment."""

import os
import subprocess
from pathlib import Path

import pytest

# Deadline for one CLI client invocation (Inspector, conformance run).
CLI_TIMEOUT_S = 180


def _env_path(name: str) -> Path:
    value = os.environ.get(name)
    if not value:
        pytest.exit(f"{name} is not set: run the suite through scripts/interop", returncode=2)
    return Path(value)


@pytest.fixture(scope="session")
def binary() -> Path:
    """The real fly-machines-mcp binary built by scripts/interop."""
    path = _env_path("FLY_MCP_INTEROP_BIN")
    assert path.is_file(), f"binary not built: {path}"
    return path


@pytest.fixture(scope="session")
def interop_dir() -> Path:
    """target/interop: the installed Node toolchain and venv."""
    return _env_path("FLY_MCP_INTEROP_DIR")


@pytest.fixture(scope="session")
def node_bin(interop_dir: Path) -> Path:
    """node_modules/.bin of the pinned Node 22 + Inspector + conformance install."""
    return interop_dir / "node" / "node_modules" / ".bin"


def run(cmd: list[str], timeout: float = CLI_TIMEOUT_S, **kwargs) -> subprocess.CompletedProcess:
    """Run a command to completion with a deadline, capturing text output."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
