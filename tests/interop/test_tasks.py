"""MCP Tasks (SEP-2663) driven by the Python `mcp` SDK (2.3.0) over Streamable HTTP with
the 2026-07-28 protocol, against `serve --sandbox --http` with a server key.

The SDK has no tasks client of its own for this revision; it has the extension surface
(`ClientExtension`, `ResultClaim`) a client builds one on, and that is what this file
does in a few lines: the extension is declared in every request's capabilities, a
`resultType: "task"` answer is claimed, and `tasks/get` / `tasks/cancel` are sent as
requests of their own. `provision_environment` on the sandbox returns a task that goes
working → completed with the result the synchronous call gives; `tasks/cancel` mid-way
leaves nothing in the simulator's `/__sim/state` that the call created; a failing
provision completes with `isError`; the task is still answered after the client
reconnects."""

import contextlib
import json
import re
import urllib.request
from typing import Any, ClassVar, Literal

import anyio
import httpx2
import pytest
from mcp import Client, types
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.streamable_http import streamable_http_client
from mcp_types import Request, RequestParams, Result
from pydantic import ConfigDict

from conftest import SESSION_TIMEOUT_S

pytestmark = pytest.mark.anyio

TASKS = "io.modelcontextprotocol/tasks"
TERMINAL = {"completed", "failed", "cancelled"}


class TaskHandle(Result):
    """A `CreateTaskResult`: the task's fields at the top level."""

    model_config = ConfigDict(extra="allow")
    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    status_message: str | None = None
    ttl_ms: int | None = None
    poll_interval_ms: int | None = None


class TaskState(Result):
    """A `tasks/get` answer (a detailed task: `result` or `error` once terminal)."""

    model_config = ConfigDict(extra="allow")
    task_id: str
    status: str
    status_message: str | None = None
    ttl_ms: int | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    input_requests: dict[str, Any] | None = None


class Ack(Result):
    model_config = ConfigDict(extra="allow")


class TaskIdParams(RequestParams):
    task_id: str


class GetTask(Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    name_param: ClassVar[str | None] = "taskId"


class CancelTask(Request[TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    name_param: ClassVar[str | None] = "taskId"


async def get_task(session, task_id: str) -> TaskState:
    return await session.send_request(GetTask(params=TaskIdParams(task_id=task_id)), TaskState)


async def settle(session, task_id: str, seen: list[str] | None = None) -> TaskState:
    """Polls until the task is terminal (at most 60 s), noting every status seen."""
    with anyio.fail_after(60):
        while True:
            state = await get_task(session, task_id)
            if seen is not None and (not seen or seen[-1] != state.status):
                seen.append(state.status)
            if state.status in TERMINAL:
                return state
            await anyio.sleep(0.05)


class Tasks(ClientExtension):
    """The tasks extension, client side: declared, and a task answer is resolved by
    polling it to its end."""

    identifier = TASKS

    def claims(self):
        return [ResultClaim(result_type="task", model=TaskHandle, resolve=self._resolve)]

    async def _resolve(self, handle: TaskHandle, ctx: ClaimContext) -> types.CallToolResult:
        state = await settle(ctx.session, handle.task_id)
        assert state.status == "completed", state
        return types.CallToolResult.model_validate(state.result)


@contextlib.asynccontextmanager
async def connect(http_server, extensions=()):
    with anyio.fail_after(SESSION_TIMEOUT_S):
        async with httpx2.AsyncClient(headers=http_server.headers(), timeout=30) as http:
            server = streamable_http_client(http_server.url, http_client=http)
            async with Client(server, mode="2026-07-28", extensions=list(extensions)) as client:
                yield client


def sim_state(http_server) -> dict:
    """The sandbox simulator's whole state (its address is in the server's log)."""
    found = re.search(r"simulated Fly platform \(demo scenario\) at (http://127\.0\.0\.1:\d+/)", http_server.log.read_text())
    assert found, http_server.log.read_text()
    with urllib.request.urlopen(found.group(1) + "__sim/state", timeout=10) as r:
        return json.load(r)


def app_names(http_server) -> set[str]:
    return {a["name"] for a in sim_state(http_server)["apps"]}


def provision(app: str, region: str = "iad") -> dict:
    return {"app": app, "image": "nginx:1", "region": region}


def text_of(result: dict) -> str:
    return "".join(c.get("text", "") for c in result.get("content", []))


async def test_provision_is_a_task_that_completes_with_the_synchronous_result(http_server, needs_sandbox):
    async with connect(http_server, [Tasks()]) as client:
        handle = await client.session.call_tool("provision_environment", provision("py-task-a"), allow_claimed=True)
        assert isinstance(handle, TaskHandle), handle
        assert handle.status == "working" and handle.ttl_ms and handle.ttl_ms > 0
        seen: list[str] = []
        state = await settle(client.session, handle.task_id, seen)
    assert seen[0] == "working" and seen[-1] == "completed", seen
    assert state.result is not None and not state.result.get("isError"), state
    structured = state.result["structuredContent"]
    assert structured["app"] == "py-task-a"

    # Without the extension the same call is synchronous; its result has the same shape.
    async with connect(http_server) as plain:
        sync = await plain.call_tool("provision_environment", provision("py-task-b"))
    assert not sync.is_error, sync.content
    assert set(sync.structured_content) == set(structured)
    assert ("machine" in text_of(state.result)) and any("machine" in c.text for c in sync.content)

    # With the extension's resolver, the SDK's plain call_tool returns the task's result.
    async with connect(http_server, [Tasks()]) as client:
        resolved = await client.call_tool("provision_environment", provision("py-task-c"))
    assert isinstance(resolved, types.CallToolResult) and not resolved.is_error
    assert resolved.structured_content["app"] == "py-task-c"
    assert {"py-task-a", "py-task-b", "py-task-c"} <= app_names(http_server)


async def test_cancel_mid_way_leaves_nothing_the_call_created(http_server, needs_sandbox):
    async with connect(http_server, [Tasks()]) as client:
        handle = await client.session.call_tool("provision_environment", provision("py-task-cx"), allow_claimed=True)
        with anyio.fail_after(30):
            while True:
                state = await get_task(client.session, handle.task_id)
                assert state.status == "working", state
                if "waiting for machine" in (state.status_message or ""):
                    break
                await anyio.sleep(0.05)
        assert "py-task-cx" in app_names(http_server), "the call had created its app"
        ack = await client.session.send_request(CancelTask(params=TaskIdParams(task_id=handle.task_id)), Ack)
        assert ack.model_dump(by_alias=True, exclude_none=True) == {"resultType": "complete"}
        state = await settle(client.session, handle.task_id)
    assert state.status == "cancelled", state
    assert state.result is None
    assert state.status_message.startswith("cancelled: ") and "rolled back" in state.status_message
    assert "py-task-cx" not in json.dumps(sim_state(http_server)), "nothing the call created is left"


async def test_a_failing_provision_completes_with_is_error(http_server, needs_sandbox):
    async with connect(http_server, [Tasks()]) as client:
        handle = await client.session.call_tool("provision_environment", provision("py-task-bad", region="zzz"), allow_claimed=True)
        state = await settle(client.session, handle.task_id)
    assert state.status == "completed", state
    assert state.result["isError"] is True, state.result
    assert "py-task-bad" not in app_names(http_server)


async def test_the_task_is_still_answered_after_the_client_reconnects(http_server, needs_sandbox):
    async with connect(http_server, [Tasks()]) as client:
        handle = await client.session.call_tool("provision_environment", provision("py-task-rc"), allow_claimed=True)
    # That client, its connections and its HTTP client are gone; a new one asks.
    async with connect(http_server, [Tasks()]) as again:
        state = await settle(again.session, handle.task_id)
    assert state.status == "completed", state
    assert state.result["structuredContent"]["app"] == "py-task-rc"
