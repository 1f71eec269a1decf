"""The ``dragoman_pass_then`` target (bench/run.py ``--then CHECKOUT``): the pass-through of
another checkout, for a budget set against the gateway of an earlier day."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
# appended, not prepended: bench/profile.py must not shadow the standard library's
sys.path.append(str(ROOT / "bench"))

import run  # noqa: E402


def test_then_target_without_a_checkout_says_what_it_needs() -> None:
    with pytest.raises(SystemExit, match="--then CHECKOUT"):
        run._then_src(None)


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_then_target_serves_the_checkouts_src_and_records_its_commit() -> None:
    assert run._then_src(ROOT) == ROOT / "src"
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert run._commit_of(str(ROOT)) == head
    assert "dragoman_pass_then" in run.OPS_TARGETS


def test_every_operations_variant_and_then_is_a_target() -> None:
    plan = SimpleNamespace(target_cpus="1", workers=1, paces=[])
    factories = run._target_factories(plan, None, Path("."), "uvicorn")  # type: ignore[arg-type]
    assert set(run.OPS_TARGETS) <= set(factories)
    assert {f"dragoman_pass_{ops}" for ops in run.tg.OPS} < set(run.OPS_TARGETS)
