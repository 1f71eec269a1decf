"""Builders for the neutral types under tako's names, exported as ``dragoman.Role`` and
``dragoman.ContentPart``:

    req = ChatRequest(messages=[
        Message(role=Role.User, content=[
            ContentPart.text("Describe this image."),
            ContentPart.image(mime="image/jpeg", data_b64=jpeg_base64),
            ContentPart.image_url(url="https://example.com/photo.jpg"),
        ]),
    ])

They build the ordinary neutral objects: ``Role.User`` IS the string ``"user"`` and
``ContentPart.text(...)`` returns a ``Text`` part, so nothing downstream knows they were
used.
"""

from __future__ import annotations

from typing import Final

from .content import Image, Text


class Role:
    """The message roles as attributes (tako spells them ``Role.User``)."""

    System: Final = "system"
    Developer: Final = "developer"
    User: Final = "user"
    Assistant: Final = "assistant"
    Tool: Final = "tool"


class ContentPart:
    """Constructors of message parts."""

    @staticmethod
    def text(text: str) -> Text:
        return Text(text=text)

    @staticmethod
    def image(*, mime: str, data_b64: str) -> Image:
        """An inline image: its media type and base64 data."""
        return Image(mime=mime, data=data_b64)

    @staticmethod
    def image_url(*, url: str, detail: str | None = None) -> Image:
        """An image the upstream fetches (or dragoman fetches for vendors that take bytes
        only: Bedrock, Ollama)."""
        return Image(url=url, detail=detail)
