"""Identifiers in the shapes clients expect (``chatcmpl-…``, ``resp_…``, ``msg_…``,
``call_…``, ``toolu_…``): a prefix and 24 random hex digits."""

from __future__ import annotations

import os


def new_id(prefix: str) -> str:
    return prefix + os.urandom(12).hex()
