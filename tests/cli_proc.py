"""Run the installed ``dragoman`` command (the console script a user runs) as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: the console script installed next to this interpreter (``pip install -e .``)
DRAGOMAN = str(Path(sys.executable).parent / "dragoman")


def dragoman(*args: str, env: dict[str, str] | None = None, unset: tuple[str, ...] = (),
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``dragoman ARGS…`` to completion; ``env`` is added to this process's environment,
    the variables named in ``unset`` are removed from it."""
    environment = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run([DRAGOMAN, *args], capture_output=True, text=True, timeout=timeout,
                          env={**environment, **(env or {})})
