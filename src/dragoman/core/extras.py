"""Optional installs ("extras"): what a feature needs beyond the base install, and the one
error that says how to get it.

The base install is the gateway (dialects, providers speaking HTTP with API keys, static
tokens, SQLite sessions). Features with heavy or native dependencies sit behind extras —
``pip install 'dragoman[jwt]'`` and so on — and the code that needs one calls
``require_extra`` before importing it, so a missing package fails where the feature is
configured (at start-up), with the command to run, not deep inside a request.
"""

from __future__ import annotations

import importlib.util

#: extra → the top-level modules it installs (what ``require_extra`` looks for)
EXTRAS: dict[str, tuple[str, ...]] = {
    "jwt": ("joserfc", "cryptography"),
    "oidc": ("joserfc", "cryptography"),
    "vault": (),
    "redis": ("redis",),
    "postgres": ("asyncpg",),
    "bedrock": ("botocore",),
    "vertex": ("google.auth",),
}


class MissingExtra(ImportError):
    """A feature was asked for whose optional dependencies are not installed."""

    def __init__(self, feature: str, extra: str, missing: str) -> None:
        self.feature = feature
        self.extra = extra
        self.missing = missing
        self.command = f"pip install 'dragoman[{extra}]'"
        super().__init__(f"{feature} needs the optional '{extra}' dependencies "
                         f"({missing} is not installed): {self.command}")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or blocked in sys.modules
        return False


def require_extra(extra: str, feature: str) -> None:
    """Raise ``MissingExtra`` unless every module of ``extra`` can be imported."""
    for module in EXTRAS[extra]:
        if not _installed(module):
            raise MissingExtra(feature, extra, module)
