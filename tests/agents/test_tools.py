"""Plain functions become tools: JSON Schema from type hints and docstrings, arguments
validated and converted, and every failure handed back as an error result."""

from __future__ import annotations

import asyncio
import enum
import threading
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec
import pytest

from dragoman.agents import FunctionTool, ToolError, ToolRegistry, tool
from dragoman.agents.docstrings import parse_docstring


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


@dataclass
class Place:
    city: str
    country: str | None = None


def forecast(place: Place, days: int = 3, unit: Unit = Unit.C,
             detail: Literal["short", "long"] = "short", tags: list[str] = []) -> dict:  # noqa: B006
    """Forecast for a place.

    Uses the national weather service when
    one exists.

    Args:
        place: Where to look.
        days (int): How many days,
            counting today.
        unit: Temperature unit.

    Returns:
        The forecast.
    """
    return {"city": place.city, "days": days, "unit": unit.value, "detail": detail,
            "tags": tags}


def test_schema_from_hints_and_google_docstring() -> None:
    t = FunctionTool(forecast)
    assert t.name == "forecast"
    assert t.description == ("Forecast for a place.\n\nUses the national weather service "
                             "when one exists.")
    p = t.parameters
    assert p["type"] == "object" and p["required"] == ["place"]
    assert p["additionalProperties"] is False
    props = p["properties"]
    assert props["days"] == {"type": "integer", "default": 3,
                             "description": "How many days, counting today."}
    assert sorted(props["detail"]["enum"]) == ["long", "short"]
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["place"]["description"] == "Where to look."
    # nested types are described once under $defs
    assert props["place"]["$ref"] == "#/$defs/Place"
    assert p["$defs"]["Place"]["required"] == ["city"]
    assert p["$defs"]["Unit"]["enum"] == ["celsius", "fahrenheit"]
    assert "title" not in p


async def test_arguments_are_validated_and_converted() -> None:
    t = FunctionTool(forecast)
    out = msgspec.json.decode(await t.run({"place": {"city": "Paris"}, "days": "5",
                                           "unit": "fahrenheit"}))
    assert out == {"city": "Paris", "days": 5, "unit": "fahrenheit", "detail": "short",
                   "tags": []}
    with pytest.raises(ToolError, match=r"invalid arguments: .*place"):
        await t.run({"days": 2})
    with pytest.raises(ToolError, match="unknown field `nope`"):
        await t.run({"place": {"city": "x"}, "nope": 1})
    with pytest.raises(ToolError, match=r"Invalid enum value 'kelvin' - at `\$.unit`"):
        await t.run({"place": {"city": "x"}, "unit": "kelvin"})


def test_numpy_and_sphinx_docstrings() -> None:
    def numpy_style(a: int, b: int) -> int:
        """Add two numbers.

        Parameters
        ----------
        a : int
            The first.
        b : int
            The second,
            wrapped.

        Returns
        -------
        int
        """
        return a + b

    def sphinx_style(x: str) -> str:
        """Shout.

        :param x: what to
            shout
        :returns: the shout
        """
        return x.upper()

    assert parse_docstring(numpy_style.__doc__) == ("Add two numbers.",
                                                    {"a": "The first.",
                                                     "b": "The second, wrapped."})
    assert parse_docstring(sphinx_style.__doc__) == ("Shout.", {"x": "what to shout"})
    assert parse_docstring("Just text.\n\nMore text.") == ("Just text.\n\nMore text.", {})


async def test_decorator_annotated_constraints_and_async() -> None:
    @tool(name="double-it", description="Doubles.")
    async def double(n: Annotated[int, msgspec.Meta(ge=1, description="A positive number")]
                     ) -> int:
        return n * 2

    assert double.name == "double-it" and double.description == "Doubles."
    assert double.parameters["properties"]["n"] == {"type": "integer", "minimum": 1,
                                                    "description": "A positive number"}
    assert await double.run({"n": 4}) == "8"
    assert await double(5) == 10  # still callable as the function
    with pytest.raises(ToolError, match=">= 1"):
        await double.run({"n": 0})


async def test_sync_functions_run_off_the_event_loop() -> None:
    seen: list[int] = []

    def where() -> str:
        seen.append(threading.get_ident())
        return "ok"

    assert await FunctionTool(where).run({}) == "ok"
    assert seen and seen[0] != threading.get_ident()


def test_bad_functions_are_refused_at_definition() -> None:
    def star(*args: int) -> None: ...

    with pytest.raises(TypeError, match="nameable"):
        FunctionTool(star)
    with pytest.raises(ValueError, match="tool name"):
        FunctionTool(lambda: None, name="has space")
    reg = ToolRegistry([forecast])
    with pytest.raises(ValueError, match="two tools are named 'forecast'"):
        reg.add(forecast)


async def test_registry_turns_every_failure_into_an_error_result() -> None:
    def boom() -> str:
        raise RuntimeError("disk on fire")

    def refuses() -> str:
        raise ToolError("not allowed here")

    async def slow() -> str:
        await asyncio.sleep(10)
        return "late"

    def quiet() -> None:
        return None

    reg = ToolRegistry([boom, refuses, slow, quiet, forecast], timeout=0.2)
    assert [s.name for s in reg.specs()] == ["boom", "refuses", "slow", "quiet", "forecast"]
    r = await reg.call("boom", "{}")
    assert r.is_error and r.text == "tool 'boom' failed: RuntimeError: disk on fire"
    r = await reg.call("refuses", "")
    assert r.is_error and r.text == "not allowed here"
    r = await reg.call("slow", "{}")
    assert r.is_error and r.text == "tool 'slow' timed out after 0.2 s"
    r = await reg.call("nope", "{}")
    assert r.is_error and r.text.startswith("unknown tool 'nope' (available: boom, forecast")
    r = await reg.call("forecast", '{"place": ')
    assert r.is_error and "not valid JSON" in r.text
    r = await reg.call("forecast", "[1, 2]")
    assert r.is_error and r.text == "the arguments must be a JSON object"
    r = await reg.call("quiet", "{}")
    assert not r.is_error and r.text == ""


async def test_long_results_are_cut_with_a_note() -> None:
    def chatty() -> str:
        return "x" * 5000

    r = await ToolRegistry([chatty], max_result_chars=1000).call("chatty", "{}")
    assert not r.is_error
    assert r.text.startswith("x" * 1000 + "\n[result truncated: 5000 characters")
