"""``dragoman sessions purge --older-than 7d [--config FILE]``, and the session-store check
``dragoman serve`` runs before starting workers (connect, migrate the schema once)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from .agents.workspaces import purge_workspaces
from .cli_options import add_log_level, fail
from .config import Config, ConfigError, load_config
from .core import DragomanError
from .sessions import SessionStore, open_store, parse_duration
from .sessions.store import StoreError


def add_parser(sub: Any) -> None:
    sessions = sub.add_parser("sessions", help="manage stored responses and threads")
    commands = sessions.add_subparsers(dest="sessions_command", required=True)
    purge = commands.add_parser(
        "purge", help="delete stored responses, threads and agent turns older than a "
                      "duration")
    purge.add_argument("--older-than", required=True, metavar="DURATION",
                       help="e.g. 7d, 12h, 30m, 45s (seconds if no unit)")
    purge.add_argument("--config", "-c", help="YAML config file (its `sessions:` section)")
    add_log_level(purge)


def _store(cfg: Config) -> SessionStore:
    return open_store(cfg.sessions.settings())


def prepare(cfg: Config, workers: int) -> str | None:
    """Open the configured store once (creating or migrating its schema) so a bad path or
    an unreachable server stops ``dragoman serve`` before any worker starts. Returns an
    error message, or None."""
    store = _store(cfg)
    if store.settings.backend == "memory" and workers > 1:
        print("dragoman: warning: `sessions.backend: memory` is per worker process; stored "
              "responses and threads are not shared between the workers", file=sys.stderr)
    if cfg.limits is not None and cfg.limits.backend == "memory" and workers > 1:
        print(f"dragoman: warning: `limits.backend: memory` counts per worker process; with "
              f"{workers} workers each limit allows up to {workers} times its value (use "
              "`backend: redis` to share them)", file=sys.stderr)

    async def check() -> None:
        try:
            await store.open()
        finally:
            await store.aclose()

    try:
        asyncio.run(check())
    except StoreError as e:
        return f"session store: {e}"
    return None


def run(args: argparse.Namespace) -> int:
    try:
        older_than = parse_duration(args.older_than)
    except ValueError as e:
        return fail(f"--older-than: {e}")
    try:
        cfg = load_config(args.config)
        store = _store(cfg)
    except (ConfigError, StoreError) as e:
        return fail(e)

    async def purge() -> str:
        try:
            await store.open()
            stats = await store.purge(older_than)
        finally:
            await store.aclose()
        # Agent workspaces live with their threads (docs/workspaces.md).
        roots: set[str] = {ws for a in cfg.agents if (ws := getattr(a, "workspace", None))}
        workspaces = sum([await asyncio.to_thread(purge_workspaces, r, older_than)
                          for r in sorted(roots)])
        return (f"purged {stats.responses} stored responses, {stats.branches} branches, "
                f"{stats.threads} threads, {stats.agent_turns} agent turns and "
                f"{workspaces} agent workspaces older than {args.older_than}")

    try:
        print(asyncio.run(purge()))
    except (StoreError, DragomanError) as e:
        print(f"dragoman: session store: {e}", file=sys.stderr)
        return 1
    return 0
