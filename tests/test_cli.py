"""The ``dragoman`` command line, run as the real console script: every option is checked
with one error line and exit code 2 (never a traceback, never a port wrapped modulo
65536), ``--help`` explains each option and its default, ``--version`` exists."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

from tests.cli_proc import dragoman
from tests.gateway_proc import free_port


def test_version() -> None:
    r = dragoman("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"dragoman {version('dragoman')}"


@pytest.mark.parametrize(("args", "says"), [
    (["serve", "--port", "70000"], "argument --port: 70000 is not a port (1-65535)"),
    (["serve", "--port", "0"], "argument --port: 0 is not a port (1-65535)"),
    (["serve", "--port", "http"], "argument --port: 'http' is not a whole number"),
    (["serve", "--workers", "0"], "argument --workers: 0 must be at least 1"),
    (["serve", "--host", "http://0.0.0.0"],
     "argument --host: 'http://0.0.0.0' is not a host name or address"),
    (["serve", "--log-level", "verbose"], "argument --log-level: invalid choice: 'verbose'"),
    (["serve", "--server", "gunicorn"], "argument --server: invalid choice: 'gunicorn'"),
    (["serve", "--colour"], "unrecognized arguments: --colour"),
    (["sessions", "purge", "--older-than", "7d", "--log-level", "loud"],
     "argument --log-level: invalid choice: 'loud'"),
    (["config", "check"], "the following arguments are required: FILE"),
    (["deploy"], "argument command: invalid choice: 'deploy'"),
])
def test_a_bad_option_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    r = dragoman(*args)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert says in lines[0] and lines[0].startswith("dragoman")
    assert "--help" in lines[0]  # where to look next


def test_the_log_level_is_case_insensitive(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("models: [{name: m, provider: echo}]\n")
    r = dragoman("config", "check", str(good), "--log-level", "DEBUG")
    assert r.returncode == 0, r.stderr


def test_serve_help_explains_every_option_and_its_default() -> None:
    r = dragoman("serve", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())  # argparse wraps lines
    for option, default in [("--config", "offline echo model"), ("--host", "127.0.0.1"),
                            ("--port", "8080"), ("--workers", "else 1"),
                            ("--server", "default:"), ("--log-level", "warning")]:
        assert option in text
        start = text.index(option)
        assert default in text[start:], option
    assert "1-65535" in text


def test_a_port_out_of_range_in_the_config_stops_serve(tmp_path: Path) -> None:
    cfg = tmp_path / "dragoman.yaml"
    cfg.write_text("server:\n  host: 127.0.0.1\n  port: 99999\n")
    r = dragoman("serve", "--config", str(cfg))
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        f"dragoman: {cfg}:3: invalid configuration: Expected `int` <= 65535 - at "
        "`$.server.port`"]
    assert "serving" not in r.stderr


def test_port_and_workers_are_checked_in_the_config_too(tmp_path: Path) -> None:
    cfg = tmp_path / "dragoman.yaml"
    cfg.write_text(f"server: {{port: {free_port()}, workers: 0}}\n")
    r = dragoman("config", "check", str(cfg))
    assert r.returncode == 2
    assert "Expected `int` >= 1 - at `$.server.workers`" in r.stderr


def test_a_config_file_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    for args in (["serve", "--config", str(missing)], ["config", "check", str(missing)]):
        r = dragoman(*args)
        assert r.returncode == 2
        assert r.stderr.splitlines() == [
            f"dragoman: cannot read config file {missing}: No such file or directory"]
