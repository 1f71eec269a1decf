"""``data:`` URLs: how inline images and files travel in the OpenAI dialects."""

from __future__ import annotations

from ..core import InvalidRequest


def split_data_url(url: str) -> tuple[str, str] | None:
    """``data:<mime>;base64,<data>`` → (mime, data); None for any other URL."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url.partition(",")
    if not sep or not head.endswith(";base64"):
        raise InvalidRequest("Image data URLs must be base64 encoded (data:<mime>;base64,...).")
    return head[5:-7] or "application/octet-stream", data


def data_url(mime: str | None, data: str) -> str:
    return f"data:{mime or 'application/octet-stream'};base64,{data}"
