"""``dragoman config check FILE``: every check ``dragoman serve`` makes on a config, without
serving it — then what the file configures, in a few lines (never a key, URL password or
DSN). Exit code 0 when the file is good, 2 with one located error line when not."""

from __future__ import annotations

import argparse
from typing import Any

from .agents.orchestrator_spec import references
from .agents.spec import AgentSpec, HarnessSpec
from .cli_options import add_log_level, fail
from .config import DEFAULT_MODELS, Config, ConfigError, check_config


def add_parser(sub: Any) -> None:
    config = sub.add_parser("config", help="check a configuration file",
                            description="Check a configuration file.")
    commands = config.add_subparsers(dest="config_command", required=True)
    check = commands.add_parser(
        "check", help="validate a config file and explain it; no server is started",
        description="Validate FILE as `dragoman serve --config FILE` would (YAML, keys, "
                    "types, provider options, model references, environment variables) and "
                    "say what it configures. Exit code 0 if it is good, 2 if not.")
    check.add_argument("file", metavar="FILE", help="YAML config file")
    add_log_level(check)


def run(args: argparse.Namespace) -> int:
    try:
        cfg = check_config(args.file)
    except ConfigError as e:
        return fail(e)
    print(f"{args.file}: OK")
    print("\n".join(f"  {line}" for line in explain(cfg)))
    return 0


def explain(cfg: Config) -> list[str]:
    """What ``cfg`` serves, one fact a line."""
    s = cfg.server
    callers = ("callers need a key of `auth`" if cfg.auth is not None
               else f"callers need one of {len(s.api_keys)} key(s) of `server.api_keys`"
               if s.api_keys else "any caller is accepted (no `server.api_keys` or `auth`)")
    out = [f"listens on http://{s.host}:{s.port} with {s.workers} worker(s); {callers}",
           "models:"]
    for m in cfg.models or DEFAULT_MODELS:
        targets = ", ".join(f"{d.provider} {d.model or ''}".rstrip()
                            for d in m.deployment_configs())
        more = f"; falls back to {', '.join(m.fallbacks)}" if m.fallbacks else ""
        out.append(f"  {m.name} -> {targets}{more}")
    for a in cfg.agents:
        if isinstance(a, AgentSpec):
            tools = ", ".join(t if isinstance(t, str) else next(iter(t)) for t in a.tools)
            out.append(f"  {a.name} -> agent on {a.model}; tools: {tools or 'none'}")
        elif isinstance(a, HarnessSpec):
            out.append(f"  {a.name} -> {a.harness} harness agent on {a.model}")
        else:
            uses = ", ".join(sorted({ref for _, ref in references(a)}))
            out.append(f"  {a.name} -> {a.__struct_config__.tag} orchestrator over {uses}")
    sessions = cfg.sessions.backend + (f" at {cfg.sessions.path}" if cfg.sessions.path else "")
    out.append(f"sessions: {sessions}")
    if cfg.limits is not None:
        out.append(f"limits: counted in {cfg.limits.backend}")
    return out
