"""``dragoman serve [--config FILE] [--host H] [--port P] [--workers N]``;
``dragoman sessions purge --older-than 7d [--config FILE]``; ``dragoman config check FILE``;
``dragoman usage [...]``; ``dragoman --version``."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile

from . import __version__, cli_config, cli_sessions, cli_usage
from .cli_options import Parser, add_log_level, host, port, positive_int
from .config import ConfigError, check_config

CONFIG_ENV = "DRAGOMAN_CONFIG"


def _metrics_dir(workers: int) -> str | None:
    """With several workers, a fresh ``PROMETHEUS_MULTIPROC_DIR`` they all write their
    metrics to (so one scrape sees every worker); None when not ours to remove."""
    if workers <= 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    path = tempfile.mkdtemp(prefix="dragoman-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def _serve(args: argparse.Namespace) -> int:
    try:
        cfg = check_config(args.config)  # provider keys too, before any worker starts
    except ConfigError as e:
        print(f"dragoman: {e}", file=sys.stderr)
        return 2
    host = args.host or cfg.server.host
    port = args.port if args.port is not None else cfg.server.port
    workers = args.workers or cfg.server.workers
    problem = cli_sessions.prepare(cfg, workers)
    if problem is not None:
        print(f"dragoman: {problem}", file=sys.stderr)
        return 2
    # Harness agents call the gateway back at this URL (docs/harness-agents.md).
    own_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    os.environ.setdefault("DRAGOMAN_SELF_URL", f"http://{own_host}:{port}")
    if args.config:
        # Worker processes build the gateway themselves from the same file.
        os.environ[CONFIG_ENV] = os.path.abspath(args.config)
    else:
        os.environ.pop(CONFIG_ENV, None)
    names = ", ".join(m.name for m in cfg.models) or "dragoman/echo, echo (offline test model)"
    if cfg.agents:
        names += " and agents " + ", ".join(a.name for a in cfg.agents)
    from .server.runner import run

    metrics_dir = _metrics_dir(workers)
    try:
        run(host=host, port=port, workers=workers, server=args.server,
            limits=cfg.server.http_limits(),
            on_listening=lambda: print(f"dragoman: serving {names} on http://{host}:{port}",
                                       file=sys.stderr, flush=True))
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="dragoman", description="LLM gateway and agent runtime")
    parser.add_argument("--version", action="version", version=f"dragoman {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway", description="Run the gateway.")
    serve.add_argument("--config", "-c", metavar="FILE",
                       help="YAML config file; check it first with `dragoman config check FILE` "
                            "(default: none, the offline echo model is served)")
    serve.add_argument("--host", type=host,
                       help="address to listen on (default: server.host of the config, "
                            "else 127.0.0.1)")
    serve.add_argument("--port", type=port, help="TCP port to listen on, 1-65535 (default: "
                                                 "server.port of the config, else 8080)")
    serve.add_argument("--workers", type=positive_int, metavar="N",
                       help="worker processes (default: server.workers of the config, else 1)")
    serve.add_argument("--server", choices=["granian", "uvicorn"], default=None,
                       help="ASGI server (default: the faster one measured in bench/)")
    add_log_level(serve)
    cli_sessions.add_parser(sub)
    cli_config.add_parser(sub)
    cli_usage.add_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        return _serve(args)
    if args.command == "sessions":
        return cli_sessions.run(args)
    if args.command == "config":
        return cli_config.run(args)
    if args.command == "usage":
        return cli_usage.run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
