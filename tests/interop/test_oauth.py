"""The server as an OAuth 2.1 resource server behind a real authorization server: the
`oidc-provider` npm package (idp.mjs) on loopback issues client-credentials JWT access
tokens with resource indicators; the Python `mcp` SDK lists and calls tools with one;
each bad token gets the right 401/403 and WWW-Authenticate; a key rotated at the
provider is picked up without restarting the server; the audit log names the subject;
no token ever reaches the server's log."""

import base64
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import anyio
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from conftest import SESSION_TIMEOUT_S, START_TIMEOUT_S, _start_http, _stop, free_port

pytestmark = pytest.mark.anyio

CLIENT_ID = "ci-bot"
CLIENT_SECRET = "interop-client-secret-0123456789"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


class Idp:
    def __init__(self, node_dir: Path, workdir: Path):
        self.node_dir = node_dir
        self.workdir = workdir
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.kid = None
        # The script runs from the folder where oidc-provider is installed.
        src = Path(__file__).with_name("idp.mjs")
        (node_dir / "idp.mjs").write_text(src.read_text())

    def start(self, kid: str) -> None:
        self.kid = kid
        self.key_file = self.workdir / f"{kid}.jwk"
        log = (self.workdir / f"idp-{kid}.log").open("w")
        self.proc = subprocess.Popen(
            [str(self.node_dir / "node_modules" / ".bin" / "node"), "idp.mjs", str(self.port), kid, str(self.key_file)],
            cwd=self.node_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert self.proc.poll() is None, (self.workdir / f"idp-{kid}.log").read_text()
            try:
                with urllib.request.urlopen(f"{self.issuer}/.well-known/openid-configuration", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, "the IdP did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None

    def private_jwk(self) -> dict:
        return json.loads(self.key_file.read_text())

    def token(self, resource: str, scope: str) -> str:
        data = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope, "resource": resource}).encode()
        req = urllib.request.Request(f"{self.issuer}/token", data=data, method="POST")
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        req.add_header("Authorization", f"Basic {basic}")
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())["access_token"]



@pytest.fixture(scope="module")
def idp(interop_dir, tmp_path_factory):
    p = Idp(interop_dir / "node", tmp_path_factory.mktemp("idp"))
    p.start("key-one")
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="module")
def oauth_server(binary, server_command, tmp_path_factory, idp):
    workdir = tmp_path_factory.mktemp("oauth")
    audit = workdir / "audit.jsonl"
    proc, log_file, server = _start_http(
        binary,
        server_command,
        workdir,
        None,
        extra_args=["--oauth-issuer", idp.issuer, "--audit-log", str(audit), "--toolsets", "all"],
    )
    server.audit = audit
    try:
        yield server
    finally:
        _stop(proc)
        log_file.close()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def post(url: str, token: str | None, body=INIT):
    headers = dict(HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx2.AsyncClient(timeout=10) as http:
        return await http.post(url, json=body, headers=headers)


async def test_a_client_credentials_token_lists_and_calls_tools(oauth_server, idp, needs_sandbox):
    token = idp.token(oauth_server.url, "fly:read fly:write")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == oauth_server.url
    with anyio.fail_after(SESSION_TIMEOUT_S):
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            async with Client(streamable_http_client(oauth_server.url, http_client=http), mode="legacy") as client:
                tools = (await client.list_tools()).tools
                names = {t.name for t in tools}
                assert "list_apps" in names and "provision_environment" in names
                assert not any(t.annotations.destructive_hint for t in tools), "no fly:destroy scope"
                r = await client.call_tool("platform_info", {"include": "regions"})
                assert not r.is_error
                r = await client.call_tool(
                    "provision_environment",
                    {"app": "oauth-interop", "region": "iad", "image": "nginx:latest", "dry_run": True},
                )
                assert not r.is_error, r.content
    line = json.loads(oauth_server.audit.read_text().splitlines()[-1])
    assert line["tool"] == "provision_environment"
    assert line["subject"] == claims["sub"]
    assert line["client_id"] == CLIENT_ID
    assert token not in oauth_server.audit.read_text()
    assert token not in oauth_server.log.read_text()


async def test_bad_tokens_get_401_or_403_with_www_authenticate(oauth_server, idp):
    meta_url = oauth_server.url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    with urllib.request.urlopen(meta_url, timeout=5) as r:
        meta = json.loads(r.read())
    assert meta["resource"] == oauth_server.url
    assert meta["authorization_servers"] == [idp.issuer]

    r = await post(oauth_server.url, None)
    assert r.status_code == 401
    assert f'resource_metadata="{meta_url}"' in r.headers["www-authenticate"]

    good = idp.token(oauth_server.url, "fly:read")
    header, payload, sig = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})

    wrong_aud = idp.token("http://127.0.0.1:1/mcp", "fly:read")
    expired = jwt.encode(
        {**claims, "iat": int(time.time()) - 900, "exp": int(time.time()) - 600},
        jwt.PyJWK(idp.private_jwk()).key,
        algorithm="RS256",
        headers={"kid": idp.kid},
    )
    tampered = ".".join([header, b64(json.dumps({**claims, "scope": "fly:read fly:write fly:destroy"}).encode()), sig])
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unknown_kid = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "not-at-the-provider"})
    alg_none = ".".join([b64(b'{"alg":"none","typ":"JWT"}'), payload, ""])
    cases = [
        ("wrong audience", wrong_aud, "aud"),
        ("expired", expired, "expired"),
        ("tampered signature", tampered, "signature"),
        ("unknown kid", unknown_kid, "unknown signing key"),
        ("alg none", alg_none, "algorithm"),
    ]
    for name, token, why in cases:
        r = await post(oauth_server.url, token)
        assert r.status_code == 401, name
        h = r.headers["www-authenticate"]
        assert 'error="invalid_token"' in h and why in h and "resource_metadata=" in h, f"{name}: {h}"
        assert token not in r.text and token not in h

    no_fly_scope = idp.token(oauth_server.url, "other")
    r = await post(oauth_server.url, no_fly_scope)
    assert r.status_code == 403
    h = r.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in h and 'scope="fly:read"' in h, h

    write_call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "machine_action", "arguments": {"app": "cdn-demo", "action": "stop", "machine_ids": ["x"]}},
    }
    r = await post(oauth_server.url, good, write_call)
    assert r.status_code == 403
    assert 'scope="fly:write"' in r.headers["www-authenticate"]
    log = oauth_server.log.read_text()
    for _, token, _ in cases:
        assert token not in log


async def test_a_key_rotated_at_the_provider_is_picked_up_without_a_restart(oauth_server, idp):
    old = idp.token(oauth_server.url, "fly:read")
    assert (await post(oauth_server.url, old)).status_code == 200
    idp.stop()
    idp.start("key-two")
    new = idp.token(oauth_server.url, "fly:read")
    assert jwt.get_unverified_header(new)["kid"] == "key-two"
    # The server fetches the JWKS again for the unknown kid (at most every 2 s).
    deadline = time.monotonic() + 20
    while (await post(oauth_server.url, new)).status_code != 200:
        assert time.monotonic() < deadline, "the rotated key was never accepted"
        await anyio.sleep(0.1)
    # The old key is gone from the provider's JWKS, and so from the server's.
    assert (await post(oauth_server.url, old)).status_code == 401
