"""Which backend a ``StoreSettings`` names. Apart from ``store.py``, which the backends
import, so the interface and its implementations form no import circle."""

from __future__ import annotations

from ..core.extras import require_extra
from .settings import StoreSettings
from .store import SessionStore


def open_store(settings: StoreSettings) -> SessionStore:
    """The store ``settings`` describe; nothing is touched until ``open()`` or first use."""
    if settings.backend == "sqlite":
        from .sqlite import SqliteStore

        return SqliteStore(settings)
    if settings.backend == "postgres":
        require_extra("postgres", "the postgres session store")
        from .postgres import PostgresStore

        return PostgresStore(settings)
    from .memory import MemoryStore

    return MemoryStore(settings)
