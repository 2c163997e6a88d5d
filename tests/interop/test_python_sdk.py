"""The Python `mcp` SDK (2.3.0) drives the real binary against the sandbox, over stdio
and over Streamable HTTP with a server key, in both protocol eras: the initialize era
(`legacy`, up to 2025-11-25) and the stateless 2026-07-28 revision."""

import re
import contextlib
from typing import Any

import anyio
import httpx2
import jsonschema
import pytest
from mcp import Client, StdioServerParameters
from mcp import types
from mcp.client.streamable_http import streamable_http_client

from conftest import SESSION_TIMEOUT_S

pytestmark = pytest.mark.anyio

MODES = ["legacy", "2026-07-28"]
TRANSPORTS = ["stdio", "http"]

# Machines of the sandbox's demo scenario (src/sim/scenarios/demo.json): a stopped one,
# destroyable without force, and a started one of the CDN app.
STOPPED_APP, STOPPED_MACHINE = "notes-app", "7811e0dc2e5e98"
STARTED_APP, STARTED_MACHINE = "cdn-demo", "4d89d3e6b01e28"


@contextlib.asynccontextmanager
async def connect(transport: str, mode: str, binary, command, http_server=None, **kwargs):
    """An SDK client session over `transport` in protocol `mode`, bounded in time."""
    with anyio.fail_after(SESSION_TIMEOUT_S):
        if transport == "stdio":
            params = StdioServerParameters(command=str(binary), args=command.args, env=command.full_env())
            async with Client(params, mode=mode, **kwargs) as client:
                yield client
        else:
            async with httpx2.AsyncClient(headers=http_server.headers(), timeout=30) as http:
                server = streamable_http_client(http_server.url, http_client=http)
                async with Client(server, mode=mode, **kwargs) as client:
                    yield client


@pytest.fixture
def server_for(request, binary, server_command):
    """Connects over the transport named by the test's parameters."""

    def make(transport: str, mode: str, **kwargs):
        http = request.getfixturevalue("http_server") if transport == "http" else None
        return connect(transport, mode, binary, server_command, http, **kwargs)

    return make


def kind(tool: types.Tool) -> str:
    a = tool.annotations
    assert a is not None, f"{tool.name} has no annotations"
    if a.read_only_hint:
        assert not a.destructive_hint, f"{tool.name}: read-only and destructive"
        return "read"
    return "destructive" if a.destructive_hint else "write"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_tools_are_annotated_with_output_schemas(server_for, transport, mode):
    async with server_for(transport, mode) as client:
        tools = (await client.list_tools()).tools
    names = {t.name for t in tools}
    assert "platform_info" in names
    assert "destroy_machines" in names
    for tool in tools:
        assert tool.title, f"{tool.name} has no title"
        kind(tool)
        assert tool.annotations.open_world_hint is not None, tool.name
        assert tool.output_schema and tool.output_schema.get("type") == "object", tool.name
        assert tool.input_schema.get("type") == "object", tool.name
        assert tool.description, tool.name
    by_name = {t.name: t for t in tools}
    assert kind(by_name["platform_info"]) == "read"
    assert kind(by_name["destroy_machines"]) == "destructive"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_platform_info_returns_structured_content_matching_its_schema(
    server_for, needs_sandbox, transport, mode
):
    async with server_for(transport, mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        result = await client.call_tool("platform_info", {})
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict) and result.structured_content
    jsonschema.validate(result.structured_content, tools["platform_info"].output_schema)
    text = "".join(c.text for c in result.content if isinstance(c, types.TextContent))
    assert "iad" in text, "the text rendering lists regions"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_bad_input_is_a_tool_error_and_the_server_survives(server_for, transport, mode):
    async with server_for(transport, mode) as client:
        result = await client.call_tool("destroy_machines", {"app": STOPPED_APP, "machine_ids": "nope"})
        assert result.is_error
        text = "".join(c.text for c in result.content if isinstance(c, types.TextContent))
        assert "machine_ids" in text, text
        # Still serving.
        assert "platform_info" in {t.name for t in (await client.list_tools()).tools}


def _text(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


@pytest.mark.parametrize("mode", MODES)
async def test_destructive_call_without_elicitation_needs_the_confirm_argument(server_for, needs_sandbox, mode):
    """A client that cannot elicit gets the plan as an error result with a token bound to
    it, and repeats the call with `confirm` = that token; the app name does not confirm
    (stdio: a fresh sandbox per session)."""
    args: dict[str, Any] = {"app": STOPPED_APP, "machine_ids": [STOPPED_MACHINE]}
    async with server_for("stdio", mode) as client:
        plan = await client.call_tool("destroy_machines", args)
        assert plan.is_error, "destroys nothing without confirmation"
        plan_text = _text(plan)
        assert STOPPED_MACHINE in plan_text and "confirm" in plan_text, plan_text

        token = re.search(r'"confirm": "(cfm-[0-9]+-[0-9a-f]+)"', plan_text)
        assert token, plan_text

        for wrong_value in ["some-other-app", STOPPED_APP]:
            wrong = await client.call_tool("destroy_machines", {**args, "confirm": wrong_value})
            assert wrong.is_error and STOPPED_MACHINE in _text(wrong), _text(wrong)

        done = await client.call_tool("destroy_machines", {**args, "confirm": token.group(1)})
        assert not done.is_error, _text(done)
        assert STOPPED_MACHINE in str(done.structured_content)


@pytest.mark.parametrize("mode", MODES)
async def test_destructive_call_is_confirmed_by_elicitation(server_for, needs_sandbox, mode):
    """A client that can elicit is asked (initialize era: an elicitation request; 2026-07-28:
    an input-required result the SDK answers and retries), and the plan names the machine."""
    asked: list[str] = []

    async def accept(context, params):
        asked.append(params.message)
        # The form asks the user to type the app name: answer every string field with it.
        fields = (params.requested_schema or {}).get("properties", {})
        content = {name: STARTED_APP for name, field in fields.items() if field.get("type") == "string"}
        assert content, f"the form has a field for the app name: {params.requested_schema}"
        return types.ElicitResult(action="accept", content=content)

    args = {"app": STARTED_APP, "machine_ids": [STARTED_MACHINE], "force": True}
    async with server_for("stdio", mode, elicitation_callback=accept) as client:
        done = await client.call_tool("destroy_machines", args)
    assert asked, "the user was asked"
    assert STARTED_MACHINE in asked[0] or "cdn-demo-syd" in asked[0], asked[0]
    assert not done.is_error, _text(done)


@pytest.mark.parametrize("mode", MODES)
async def test_declined_elicitation_destroys_nothing(server_for, needs_sandbox, mode):
    async def decline(context, params):
        return types.ElicitResult(action="decline")

    args = {"app": STARTED_APP, "machine_ids": [STARTED_MACHINE], "force": True}
    async with server_for("stdio", mode, elicitation_callback=decline) as client:
        result = await client.call_tool("destroy_machines", args)
    assert result.is_error, "declined: nothing destroyed"
    assert "nothing was destroyed" in _text(result), _text(result)


async def test_http_without_the_server_key_is_refused(http_server):
    async with httpx2.AsyncClient(timeout=10) as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        r = await http.post(http_server.url, json=body, headers=headers)
        assert r.status_code == 401
        r = await http.post(
            http_server.url, json=body, headers={**headers, "Authorization": "Bearer wrong-key"}
        )
        assert r.status_code == 401
