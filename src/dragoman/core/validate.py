"""What every parsed request must satisfy whatever dialect it came in: inline data that is
base64, tool parameters that are a JSON Schema. Checked once, on the neutral request
(``validate_request``), so no dialect can forget a check another one makes; the server
renders the ``InvalidRequest`` in the client's own envelope.

A request carries its client's tools again on every turn: a schema is checked once per
distinct text (``_schema_problem`` is cached on its canonical JSON), so a client's
twentieth request with the same tools costs an encode and a dictionary lookup per tool.
"""

from __future__ import annotations

import binascii
import functools
from typing import Any

import msgspec

from .content import File, Image, Part, ResultContent, Text, ToolResult
from .errors import InvalidRequest
from .request import ChatRequest, Tool

_encode = msgspec.json.Encoder(order="deterministic").encode
_decode = msgspec.json.Decoder().decode


def validate_request(req: ChatRequest) -> None:
    """Raise ``InvalidRequest`` for the first inline image or file whose data is not
    base64, or the first function tool whose ``parameters`` is not a JSON Schema."""
    for m in req.messages:
        for p in m.content:
            # text, the common case, costs an identity test: an isinstance test against
            # the three Struct types costs ~3k instructions (callgrind)
            if type(p) is not Text and isinstance(p, _CHECKED):
                _check_part(p)
    for t in req.tools or ():
        if t.parameters is not None:
            _check_tool(t)


_CHECKED = (Image, File, ToolResult)


def _check_part(p: Part | ResultContent) -> None:
    if isinstance(p, (Image, File)):
        if p.data is not None and not _is_base64(p.data):
            what = "image" if isinstance(p, Image) else "file"
            raise InvalidRequest(
                f"Invalid {what} data: expected base64-encoded bytes "
                f"(data:{p.mime or '<mime>'};base64,…), got characters or a length that "
                "base64 does not have.", code=f"invalid_{what}")
    elif isinstance(p, ToolResult):
        for q in p.content:
            _check_part(q)


def _is_base64(data: str) -> bool:
    """Standard alphabet, padding optional (some clients drop it), nothing else."""
    try:
        binascii.a2b_base64(data + "=" * (-len(data) % 4), strict_mode=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _check_tool(t: Tool) -> None:
    problem = _schema_problem(_encode(t.parameters))
    if problem is not None:
        raise InvalidRequest(f"Invalid schema for function '{t.name[:100]}': {problem}",
                             code="invalid_function_parameters")


@functools.lru_cache(maxsize=1024)
def _schema_problem(schema_json: bytes) -> str | None:
    """Why this schema is not a JSON Schema (checked against the metaschema of its
    ``$schema``, draft 2020-12 by default, as Anthropic documents), or None."""
    # (imported on first use: most processes, and most requests, never need it)
    from jsonschema import Draft202012Validator, SchemaError, validators

    schema: Any = _decode(schema_json)
    if not isinstance(schema, dict):
        return "the parameters must be a JSON Schema object."
    if schema.get("type", "object") != "object":
        return (f"schema must be a JSON Schema of 'type: \"object\"', got "
                f"'type: {_encode(schema['type']).decode()[:50]}'.")
    cls = validators.validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as e:
        where = "/".join(str(k) for k in e.absolute_path) or "(root)"
        return f"{e.message[:200]} at '{where}'."
    return None
