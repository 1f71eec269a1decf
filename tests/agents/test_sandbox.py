"""Per-thread workspaces and the bubblewrap sandbox, through a real ``dragoman serve``.

The agent runs on the echo model, whose ``::tool`` directive makes it call ``bash`` (or a
file tool) with the given arguments and then answer with the tool's result, so every
assertion reads what the sandboxed command really did. Each escape attempt is paired with
a control that shows the same probe succeeds where it is allowed (the workspace, an agent
with ``network: true``), so a test cannot pass because the probe itself is broken.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from dragoman.agents.egress import CHAIN
from dragoman.agents.sandbox import SandboxError, probe
from tests.conftest import API_KEY
from tests.gateway_proc import run_gateway

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

OTHER_KEY = "sk-sandbox-other-tenant"
SECRET = "server-secret-7f3a"
ENV_MARKER = "DRAGOMAN_SANDBOX_TEST_MARKER"
MAX_BYTES = 2_000_000
#: A public address (TEST-NET-3, documentation only): no rule of ours may refuse it.
PUBLIC = "203.0.113.1"


def _agent(name: str, root: Path, **extra: Any) -> dict[str, Any]:
    return {"name": name, "model": "dragoman/echo", "max_steps": 3, "workspace": str(root),
            "tools": ["read_file", "write_file", {"bash": {"timeout": 8}}],
            "limits": {"cpu_seconds": 3, "memory_mb": 512, "processes": 64},
            "quota": {"max_bytes": MAX_BYTES, "max_files": 40, "max_workspaces": 12},
            **extra}


@pytest.fixture(scope="module")
def loopback_service() -> Iterator[int]:
    """A plain HTTP server on loopback: what a sandboxed command must not reach."""
    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"reached-the-host")

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """(gateway URL, workspace root, the secret file outside it)."""
    tmp = tmp_path_factory.mktemp("sandbox")
    root = tmp / "roots"
    root.mkdir()
    secret = tmp / "server-secret.txt"
    secret.write_text(SECRET)
    config = {
        "server": {"api_keys": [API_KEY, OTHER_KEY]},
        "models": [{"name": "dragoman/echo", "provider": "echo"}],
        "agents": [_agent("box", root), _agent("netbox", root, network=True),
                   # only a client that leaves stops its commands (no timeout for a while)
                   {**_agent("longbox", root), "tools": [{"bash": {"timeout": 300}}]}],
    }
    with run_gateway(config, tmp, env={ENV_MARKER: SECRET}) as base:
        yield base, root, secret


def ask(base: str, tool: str, args: dict[str, Any], *, thread: str | None = "t1",
        key: str = API_KEY, model: str = "box") -> str:
    """One turn that makes the agent call ``tool``; returns the agent's answer (which
    quotes the tool's result or error)."""
    headers = {"x-dragoman-thread-key": thread} if thread else {}
    with openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=60,
                       default_headers=headers) as client:
        r = client.chat.completions.create(model=model, messages=[
            {"role": "user", "content": f"::tool {tool} {json.dumps(args)}"}])
    return r.choices[0].message.content or ""


def bash(base: str, command: str, **kw: Any) -> str:
    return ask(base, "bash", {"command": command}, **kw)


def healthy(base: str) -> None:
    assert httpx.get(base + "/healthz", timeout=5).status_code == 200
    assert "result: still-here" in bash(base, "echo still-here", thread="health")


def test_a_thread_keeps_its_workspace_and_no_one_else_sees_it(
        box: tuple[str, Path, Path]) -> None:
    base, root, _ = box
    assert "result: (no output)" in bash(base, "echo mine > a.txt", thread="keep")
    assert "result: mine" in bash(base, "cat a.txt", thread="keep")  # the next turn
    assert "result: mine" in ask(base, "read_file", {"path": "a.txt"}, thread="keep")
    # another thread of the tenant, the same thread key of another tenant, no thread key
    for kw in ({"thread": "other"}, {"thread": "keep", "key": OTHER_KEY}, {"thread": None}):
        text = bash(base, "cat a.txt", **kw)
        assert "No such file or directory" in text and "mine" not in text
    # the directories are hashes: no thread key or tenant spells a path
    [mine] = [p for p in root.glob("*/*") if (p / "files" / "a.txt").exists()]
    assert (mine / "files" / "a.txt").read_text() == "mine\n"
    assert all(len(p.name) == 40 for p in root.glob("*/*"))
    # a request without a thread key leaves nothing behind
    assert not any(p.name.startswith("req-") for p in root.glob("*/*"))


def test_the_sandbox_sees_no_server_files_env_or_processes(
        box: tuple[str, Path, Path]) -> None:
    base, root, secret = box
    # control: the host can read it
    assert secret.read_text() == SECRET
    text = bash(base, f"cat {secret}")
    assert "No such file or directory" in text and SECRET not in text
    for path in ("/etc/shadow", "/etc/passwd", str(root), "/work", "/root"):
        assert "No such file" in bash(base, f"ls {path}"), path
    # the server's environment and processes: not in the sandbox's /proc
    text = bash(base, "cat /proc/*/environ | tr '\\0' '\\n'; ls /proc | grep -c '^[0-9]'; env")
    assert SECRET not in text and ENV_MARKER not in text
    assert "HOME=/workspace" in text
    procs = bash(base, "ls /proc | grep '^[0-9]' | wc -l")
    assert int(procs.rsplit("result: ", 1)[1].split()[0]) < 8  # only the sandbox's own
    ident = bash(base, "id -u")  # not root: the workspace's own uid
    assert "result: " in ident and int(ident.rsplit("result: ", 1)[1].split()[0]) >= 200_000


def test_writes_outside_the_workspace_fail(box: tuple[str, Path, Path]) -> None:
    base, root, _ = box
    for target in ("/usr/evil", "/evil", "/etc/evil", "../evil", "/workspace/../evil"):
        text = bash(base, f"echo x > {target}")
        assert "exit code" in text and ("Read-only" in text or "Permission denied" in text
                                        or "No such file" in text), (target, text)
    assert not list(root.glob("*/*/evil")) and not (root / "evil").exists()
    text = ask(base, "write_file", {"path": "../evil", "content": "x"})
    assert "outside the workspace" in text
    assert "result: /tmp/x" in bash(base, "echo x > /tmp/x && ls /tmp/x")  # a private /tmp


def test_another_threads_files_stay_out_of_reach(box: tuple[str, Path, Path]) -> None:
    base, root, _ = box
    bash(base, "echo victim-data > v.txt", thread="victim", key=OTHER_KEY)
    victim = next(p for p in root.glob("*/*/files/v.txt"))
    # path tricks and symlinks in the sandbox: the other workspace is not mounted at all
    assert "victim-data" not in bash(base, f"cat {victim}; cat ../*/files/v.txt; "
                                           "ls -R / 2>/dev/null | grep -c v.txt")
    # a symlink to it, followed by the server-side file tools: refused
    assert "exit code" not in bash(base, f"ln -sf {victim} link.txt")
    text = ask(base, "read_file", {"path": "link.txt"})
    assert "leads outside the workspace through a symbolic link" in text
    assert "victim-data" not in text
    rel = os.path.relpath(victim, root / "x" / "y" / "files")
    assert "outside the workspace" in ask(base, "read_file", {"path": rel})
    # /proc of the host is not there (its own PID namespace)
    assert "victim-data" not in bash(base, "cat /proc/*/root/*/v.txt /proc/*/cwd/v.txt")


def _connect(host: str, port: int) -> str:
    return f"timeout 2 bash -c 'exec 3<>/dev/tcp/{host}/{port} && echo connected'"


def test_no_network_unless_the_agent_allows_it(box: tuple[str, Path, Path],
                                               loopback_service: int) -> None:
    base, _, _ = box
    # the sandbox's own network namespace: its loopback is not the host's, and there is
    # no route out
    text = bash(base, _connect("127.0.0.1", loopback_service) + "; " + _connect(PUBLIC, 80))
    assert "connected" not in text and "Network is unreachable" in text
    # control: with `network: true` a public address is not unreachable from the sandbox
    # (unless the host has no route either)
    if _host_connect(PUBLIC) != "Network is unreachable":
        assert "Network is unreachable" not in bash(base, _connect(PUBLIC, 80),
                                                    model="netbox")


def _rejected() -> dict[str, int]:
    """Packets our firewall chain rejected so far, per destination network."""
    listing = subprocess.run(["iptables", "-L", CHAIN, "-v", "-x", "-n"], capture_output=True,
                             text=True, check=False).stdout  # (none yet: no chain)
    out: dict[str, int] = {}
    for line in listing.splitlines():
        cols = line.split()
        if len(cols) > 8 and cols[2] == "REJECT":
            out[cols[8]] = out.get(cols[8], 0) + int(cols[0])
    return out


def _host_connect(host: str) -> str:
    """How a connection from the test itself (outside any rule) ends."""
    try:
        socket.create_connection((host, 80), timeout=2).close()
        return "connected"
    except TimeoutError:
        return "timeout"
    except OSError as e:
        return e.strerror or "error"


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("iptables") is None,
                    reason="the network rule needs root and iptables")
def test_network_true_still_refuses_private_and_metadata_addresses(
        box: tuple[str, Path, Path], loopback_service: int) -> None:
    base, _, _ = box
    # control: the host itself reaches the loopback service
    with socket.create_connection(("127.0.0.1", loopback_service), timeout=5):
        pass
    before = _rejected()
    text = bash(base, _connect("127.0.0.1", loopback_service) + "; "
                + _connect("169.254.169.254", 80), model="netbox")
    assert f"127.0.0.1/{loopback_service}: Connection refused" in text, text
    assert "169.254.169.254/80: Connection refused" in text and "connected" not in text
    after = _rejected()
    assert after["127.0.0.0/8"] > before.get("127.0.0.0/8", 0)
    assert after["169.254.0.0/16"] > before.get("169.254.0.0/16", 0)
    # a public address is not ours to refuse: no rule rejects it, and the sandbox's
    # connection ends as the host's own does (connected, timed out, unreachable: the
    # test runs offline too)
    host_side = _host_connect(PUBLIC)
    text = bash(base, _connect(PUBLIC, 80), model="netbox")
    assert _rejected() == after
    assert "Connection refused" not in text
    if host_side == "connected":
        assert "result: connected" in text
    elif host_side == "timeout":
        assert "exit code 124" in text


def test_fork_bombs_cpu_and_memory_hogs_are_stopped(box: tuple[str, Path, Path]) -> None:
    base, _, _ = box
    start = time.monotonic()
    text = bash(base, ":(){ :|:& };:; sleep 30", thread="bomb")
    assert "error" in text.lower()
    assert time.monotonic() - start < 30
    uid = bash(base, "id -u", thread="bomb").rsplit("result: ", 1)[1].split()[0]
    deadline = time.monotonic() + 20
    while subprocess.run(["pgrep", "-u", uid], capture_output=True).stdout:  # all gone
        assert time.monotonic() < deadline
        time.sleep(0.2)
    healthy(base)
    text = bash(base, "while :; do :; done", thread="cpu")
    # SIGXCPU after 3 s of CPU (SIGKILL at the hard limit a second later, or the tool's
    # own timeout on a machine too loaded to give the loop its 3 s)
    assert "exit code 152" in text or "exit code 137" in text or "timed out" in text
    text = bash(base, "python3 -c 'x = bytearray(1 << 30)'", thread="mem")
    assert "MemoryError" in text
    healthy(base)


def test_disk_filling_hits_the_quota(box: tuple[str, Path, Path]) -> None:
    base, _, _ = box
    # one huge file: stopped at the byte quota by the file-size limit
    text = bash(base, "head -c 50000000 /dev/zero > big", thread="disk")
    assert "File size limit exceeded" in text and "workspace quota exceeded" in text
    assert "result: (no output)" in bash(base, "rm big", thread="disk")
    # many files: the quota error names the count
    text = bash(base, "for i in $(seq 60); do echo $i > f$i; done", thread="disk")
    assert "workspace quota exceeded: " in text and "files of 40 allowed" in text
    bash(base, "rm f*", thread="disk")
    # write_file checks before writing
    text = ask(base, "write_file", {"path": "w.txt", "content": "x" * (MAX_BYTES + 10)},
               thread="disk")
    assert "workspace quota exceeded" in text
    healthy(base)


def test_too_many_workspaces_for_a_tenant(box: tuple[str, Path, Path]) -> None:
    base, _, _ = box
    key = "sk-sandbox-other-tenant"
    texts = [bash(base, "echo ok", thread=f"many-{i}", key=key) for i in range(13)]
    assert "result: ok" in texts[0]
    assert any("workspace quota exceeded: this tenant already has 12 workspaces" in t
               for t in texts)


def test_workspaces_survive_restarts_and_expire_with_the_thread(tmp_path: Path) -> None:
    root = tmp_path / "roots"
    root.mkdir()
    config: dict[str, Any] = {
        "models": [{"name": "dragoman/echo", "provider": "echo"}],
        "agents": [_agent("box", root)],
        "sessions": {"backend": "sqlite", "path": str(tmp_path / "s.db"), "ttl": 0}}  # keep
    with run_gateway(config, tmp_path) as base:
        bash(base, "echo kept > k.txt", thread="durable")
    with run_gateway(config, tmp_path) as base:
        assert "result: kept" in bash(base, "cat k.txt", thread="durable")
    config["sessions"]["ttl"] = "3s"
    with run_gateway(config, tmp_path) as base:
        time.sleep(3.5)
        bash(base, "true", thread="another")  # a request sweeps expired workspaces
        assert "No such file" in bash(base, "cat k.txt", thread="durable")
    cfg_file = next(tmp_path.glob("dragoman-*.yaml"))
    assert len(list(root.glob("*/*"))) == 2
    done = subprocess.run([sys.executable, "-m", "dragoman.cli", "sessions", "purge",
                           "--older-than", "0s", "--config", str(cfg_file)],
                          capture_output=True, text=True, timeout=60, check=True)
    assert "2 agent workspaces" in done.stdout
    assert not list(root.glob("*/*"))


def test_sandbox_none_is_warned_and_a_missing_bwrap_is_named(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match=r"bubblewrap \('no-such-bwrap'\) is not installed"):
        probe("no-such-bwrap")
    root = tmp_path / "roots"
    root.mkdir()
    config = {"models": [{"name": "dragoman/echo", "provider": "echo"}],
              "agents": [_agent("box", root, sandbox="none")]}
    with run_gateway(config, tmp_path) as base:
        assert "result: /" in bash(base, "pwd")  # the real directory, not /workspace
    log = next(tmp_path.glob("dragoman-*.log")).read_text()
    assert "WITHOUT a sandbox" in log


def test_a_client_that_leaves_kills_the_sandboxed_command(
        box: tuple[str, Path, Path]) -> None:
    base, root, _ = box
    body = {"model": "longbox", "stream": True, "messages": [{"role": "user", "content": (
        '::tool bash {"command": "echo up > started; sleep 120 & sleep 120; echo never"}')}]}
    headers = {"authorization": f"Bearer {API_KEY}", "x-dragoman-thread-key": "leaver"}
    deadline = time.monotonic() + 60
    with httpx.stream("POST", base + "/v1/chat/completions", json=body, headers=headers,
                      timeout=60) as r:
        lines = r.iter_lines()
        for line in lines:
            if "dragoman.tool_call_start" in line:
                break
        while not list(root.glob("*/*/files/started")):  # the command is running…
            if time.monotonic() > deadline:
                pytest.fail("the command did not start: " + "\n".join(lines))
            time.sleep(0.1)
        [started] = root.glob("*/*/files/started")
        uid = started.stat().st_uid  # the workspace's own uid runs only this command
        if not subprocess.run(["pgrep", "-u", str(uid)], capture_output=True).stdout:
            pytest.fail("the command is not running: " + "\n".join(lines))
    # … and the client has left: everything it started is killed
    deadline = time.monotonic() + 20
    while (ps := subprocess.run(["pgrep", "-u", str(uid)], capture_output=True, text=True)
           ).stdout.strip():
        assert time.monotonic() < deadline, f"still running: {ps.stdout}"
        time.sleep(0.2)
    healthy(base)
