"""A private Redis server for the tests.

``running_redis()`` starts ``redis-server`` on a free loopback port with persistence off
and a password (so the tests also cover authenticated URLs), waits for PING, yields the
URL, and stops the server. Not on CI and without the binary, callers skip; on CI
(``CI=true``) a missing server is an error (``scripts/test`` installs it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.gateway_proc import free_port, stop_process

PASSWORD = "dragoman-redis-test-pw"


class RedisMissing(RuntimeError):
    pass


def _pong(port: int) -> bool:
    """AUTH + PING over a plain socket (RESP inline commands): no client library, so this
    module never imports ``redis`` from inside a file of the same name."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(f"AUTH {PASSWORD}\r\nPING\r\n".encode())
            reply = b""
            while b"PONG" not in reply and len(reply) < 1024:
                chunk = sock.recv(1024)
                if not chunk:
                    break
                reply += chunk
            return reply.startswith(b"+OK\r\n+PONG")
    except OSError:
        return False


def _wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float = 10.0) -> bool:
    """True once the server answers PING; False if it exited (port taken) first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if _pong(port):
            return True
        time.sleep(0.02)
    raise RuntimeError(f"redis-server did not answer PING within {timeout} s")


@contextmanager
def running_redis() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisMissing("redis-server is not installed (scripts/test installs it when run as "
                           "root; else apt-get install redis-server)")
    base = tempfile.mkdtemp(prefix="dragoman-redis-")
    log_path = os.path.join(base, "redis.log")
    proc: subprocess.Popen[bytes] | None = None
    try:
        # free_port() can race another process for the port: the server then exits at
        # once, and a new port is tried.
        for _ in range(5):
            port = free_port()
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(
                    [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                     "--appendonly", "no", "--dir", base, "--requirepass", PASSWORD],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            if _wait_ready(proc, port):
                break
            stop_process(proc, grace=5)
        else:
            with open(log_path, errors="replace") as f:
                tail = f.read()[-2000:]
            raise RuntimeError(f"redis-server would not start:\n{tail}")
        yield f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    finally:
        if proc is not None:
            stop_process(proc, grace=5)
        shutil.rmtree(base, ignore_errors=True)
