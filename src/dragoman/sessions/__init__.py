"""Conversation state: stored Responses (in memory now; durable backends later)."""

from .memory import MemoryResponseStore, StoredResponse

__all__ = ["MemoryResponseStore", "StoredResponse"]
