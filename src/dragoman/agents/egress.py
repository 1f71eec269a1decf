"""Sandboxes with network access still cannot reach private and metadata addresses.

A sandbox with ``network: true`` shares the host's network, so without more a command could
reach the server's own loopback services, the LAN, or a cloud metadata endpoint
(169.254.169.254) and its credentials. Every sandboxed command of a root server runs as a
workspace uid in ``[UID_BASE, UID_BASE + UID_SPAN)`` (``sandbox.sandbox_uid``), so one
owner-matching firewall rule covers them all and nothing else:

    OUTPUT  -m owner --uid-owner 200000-699999 -j DRAGOMAN-SANDBOX
    DRAGOMAN-SANDBOX:
        RETURN   the gateway's own address and port (a harness calls it back)
        RETURN   the resolvers of /etc/resolv.conf, port 53 (names still resolve)
        REJECT   0/8 10/8 100.64/10 127/8 169.254/16 172.16/12 192.168/16
                 (IPv6: ::/128 ::1 fc00::/7 fe80::/10); TCP with a reset

A connection there is refused at once ("Connection refused"); the public internet is
untouched. ``iptables``/``ip6tables`` (either backend, nft or legacy) install the rules
before the first sandbox with network access starts; several servers on one host share the
chain, each adding its own gateway exception, and the last one to stop removes it (a registry of
live server processes under ``/run``). Not root, or no ``iptables``: a warning at start-up
and no such protection — run the server in a network namespace or behind a firewall that
blocks those ranges, or keep ``network`` off (the default: no network at all).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import ipaddress
import logging
import os
import shlex
import shutil
import socket
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path

from .sandbox import UID_BASE, UID_SPAN, SandboxPolicy

log = logging.getLogger("dragoman.agents.sandbox")

CHAIN = "DRAGOMAN-SANDBOX"
REGISTRY = Path("/run/dragoman-egress")
PRIVATE_V4 = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
              "172.16.0.0/12", "192.168.0.0/16")
PRIVATE_V6 = ("::/128", "::1/128", "fc00::/7", "fe80::/10")
_TOOLS = {4: "iptables", 6: "ip6tables"}
_JUMP = ["OUTPUT", "-m", "owner", "--uid-owner", f"{UID_BASE}-{UID_BASE + UID_SPAN - 1}",
         "-j", CHAIN]


def _private(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return None
    nets = PRIVATE_V4 if addr.version == 4 else PRIVATE_V6
    return addr if any(addr in ipaddress.ip_network(n) for n in nets) else None


def resolvers(path: str = "/etc/resolv.conf") -> list[str]:
    """The private name servers a sandbox must still reach for DNS."""
    out = []
    with contextlib.suppress(OSError), open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver" and _private(parts[1]):
                out.append(parts[1])
    return out


class EgressGuard:
    """The rules as this process sees them: ``acquire`` before a sandbox with network access
    starts (the first call installs them, later ones add their exceptions), ``close``
    when the process ends (its exceptions go, and the chain with them when no other server
    is left)."""

    def __init__(self) -> None:
        self._allowed: list[tuple[str, int]] = []
        self._mutex = threading.Lock()
        self.installed = False
        self.reason: str | None = None
        """Why the rules are not installed (None: they are, or nobody asked yet)."""

    def acquire(self, allow: Sequence[tuple[str, int]] = ()) -> str | None:
        """Install the rules, letting ``allow`` (host, port) through; returns why they
        could not be installed, or None."""
        with self._mutex:
            new = [a for a in allow if _private(a[0]) and a not in self._allowed]
            if (self.installed and not new) or self.reason is not None:
                return self.reason
            try:
                self._install(new)
                self._allowed += new
                self.installed = True
            except _Unavailable as e:
                self.reason = str(e)
            return self.reason

    def close(self) -> None:
        with self._mutex:
            if not self.installed:
                return
            self.installed = False
            with contextlib.suppress(_Unavailable), _locked():
                for host, port in self._allowed:
                    _run(_version(host), "-D", *_exception(host, port, os.getpid()))
                self._allowed = []
                _unregister(os.getpid())

    @property
    def allowed(self) -> list[tuple[str, int]]:
        return list(self._allowed)

    def _install(self, allow: Sequence[tuple[str, int]]) -> None:
        reason = _infeasible()
        if reason is not None:
            raise _Unavailable(reason)
        with _locked():
            _forget_dead()
            for version, nets in ((4, PRIVATE_V4), (6, PRIVATE_V6)):
                if _run(version, "-n", "-L", CHAIN, check=False) != 0:
                    _run(version, "-N", CHAIN)
                    for net in nets:  # TCP: a reset, refused at once; the rest: ICMP
                        _run(version, "-A", CHAIN, "-d", net, "-p", "tcp", "-j", "REJECT",
                             "--reject-with", "tcp-reset")
                        _run(version, "-A", CHAIN, "-d", net, "-j", "REJECT")
                if _run(version, "-C", *_JUMP, check=False) != 0:
                    _run(version, "-I", *_JUMP[:1], "1", *_JUMP[1:])
            for ns in resolvers():
                for proto in ("udp", "tcp"):
                    rule = [CHAIN, "-d", ns, "-p", proto, "--dport", "53", "-j", "RETURN"]
                    if _run(_version(ns), "-C", *rule, check=False) != 0:
                        _run(_version(ns), "-I", CHAIN, "1", *rule[1:])
            for host, port in allow:
                rule = _exception(host, port, os.getpid())
                _run(_version(host), "-I", CHAIN, "1", *rule[1:])
            REGISTRY.mkdir(mode=0o700, exist_ok=True)
            (REGISTRY / str(os.getpid())).touch()


class _Unavailable(RuntimeError):
    pass


def _infeasible() -> str | None:
    """Why the rules cannot be installed here, or None."""
    if os.geteuid() != 0:
        return "the server does not run as root"
    missing = [t for t in _TOOLS.values() if shutil.which(t) is None]
    if missing:
        return (f"{' and '.join(missing)} not installed (Debian/Ubuntu: apt-get install "
                "iptables)")
    return None


def _version(host: str) -> int:
    return ipaddress.ip_address(host).version


def _exception(host: str, port: int, pid: int) -> list[str]:
    return [CHAIN, "-d", host, "-p", "tcp", "--dport", str(port), "-m", "comment",
            "--comment", f"dragoman:{pid}", "-j", "RETURN"]


def _run(version: int, *args: str, check: bool = True) -> int:
    try:
        done = subprocess.run([_TOOLS[version], "-w", "10", *args], capture_output=True,
                              text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise _Unavailable(f"{_TOOLS[version]} failed: {e}") from None
    if check and done.returncode != 0:
        raise _Unavailable(f"{_TOOLS[version]} {' '.join(args)}: "
                           f"{done.stderr.strip()[:300]}")
    return done.returncode


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One server at a time changes the rules (start-ups and shutdowns may overlap)."""
    REGISTRY.parent.mkdir(parents=True, exist_ok=True)
    with open(str(REGISTRY) + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_dead() -> None:
    """Drop the exceptions and registry entries of servers that died without cleaning up."""
    for entry in REGISTRY.glob("*") if REGISTRY.is_dir() else ():
        if entry.name.isdigit() and not _alive(int(entry.name)):
            entry.unlink(missing_ok=True)
    for version in _TOOLS:
        listing = subprocess.run([_TOOLS[version], "-w", "10", "-S", CHAIN],
                                 capture_output=True, text=True, timeout=30, check=False)
        for line in listing.stdout.splitlines():
            rule = shlex.split(line)
            marker = next((w[9:] for w in rule if w.startswith("dragoman:")), "")
            if marker.isdigit() and not _alive(int(marker)):
                _run(version, "-D", *rule[1:], check=False)


def _unregister(pid: int) -> None:
    """Forget this server; the last one removes the chain."""
    (REGISTRY / str(pid)).unlink(missing_ok=True)
    if any(e.name.isdigit() and _alive(int(e.name)) for e in REGISTRY.glob("*")):
        return
    for version in _TOOLS:
        while _run(version, "-D", *_JUMP, check=False) == 0:
            pass
        _run(version, "-F", CHAIN, check=False)
        _run(version, "-X", CHAIN, check=False)


#: This process's rules: installed by the first agent with network access, removed when
#: the process exits.
GUARD = EgressGuard()
SELF_URL_ENV = "DRAGOMAN_SELF_URL"


def gateway_addresses(url: str | None) -> list[tuple[str, int]]:
    """The (address, port) pairs of a gateway URL (a name is resolved)."""
    if not url:
        return []
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname or "", port, type=socket.SOCK_STREAM)
    except (ValueError, OSError):
        return []
    return sorted({(str(info[4][0]), port) for info in infos})


async def close_guard() -> None:
    """At shutdown (an agent with network access closes): this server's rules go. (Not
    left to ``atexit`` alone: uvicorn ends the process by re-raising SIGTERM.)"""
    if GUARD.installed:
        await asyncio.to_thread(GUARD.close)


#: The gateway addresses sandboxes may still reach (private ones only), gathered as agents
#: are built; installed with the rules.
_WANTED: set[tuple[str, int]] = set()


def guard_private_ranges(agent: str, gateway_url: str | None = None) -> None:
    """Called when an agent whose sandbox has network access is built: note this
    gateway's address (its own URL and a harness's ``gateway_url``) as an exception, and
    warn at once when the rules cannot be installed here. (They are installed by the
    first sandbox that has the network, ``guard_network``: building a gateway to check a
    configuration changes no firewall.)"""
    _WANTED.update(a for a in gateway_addresses(os.environ.get(SELF_URL_ENV))
                   + gateway_addresses(gateway_url) if _private(a[0]))
    reason = _infeasible()
    if reason is not None:
        log.warning("agent %r has network access, and its sandbox can reach private and "
                    "metadata addresses (loopback, LAN, 169.254.169.254): they cannot be "
                    "refused here (%s); see docs/sandbox.md, \"Network\"", agent, reason)


async def guard_network(policy: SandboxPolicy | None) -> None:
    """Before a sandbox with the network starts: the rules are in place (installed on the
    first such start; nothing when they cannot be, which start-up warned about)."""
    if policy is None or not policy.network or policy.sandbox.kind != "bwrap":
        return
    if GUARD.reason is not None or (GUARD.installed and set(GUARD.allowed) >= _WANTED):
        return
    first = not GUARD.installed
    await asyncio.to_thread(GUARD.acquire, sorted(_WANTED))
    if first and GUARD.installed:
        atexit.register(GUARD.close)
