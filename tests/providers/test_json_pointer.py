"""JSON Pointer: the RFC 6901 section 5 examples, escapes, and what does not resolve."""

from __future__ import annotations

import pytest

from dragoman.providers.json_pointer import MISSING, JsonPointer, JsonPointerError

RFC_DOC = {"foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4,
           "i\\j": 5, 'k"l': 6, " ": 7, "m~n": 8}


@pytest.mark.parametrize(("pointer", "value"), [
    ("", RFC_DOC), ("/foo", ["bar", "baz"]), ("/foo/0", "bar"), ("/", 0), ("/a~1b", 1),
    ("/c%d", 2), ("/e^f", 3), ("/g|h", 4), ("/i\\j", 5), ('/k"l', 6), ("/ ", 7),
    ("/m~0n", 8),
])
def test_rfc6901_examples(pointer: str, value: object) -> None:
    assert JsonPointer(pointer).get(RFC_DOC) == value


@pytest.mark.parametrize("pointer", ["/nope", "/foo/2", "/foo/-", "/foo/01", "/foo/x",
                                     "/foo/0/deeper", "/a~1b/c"])
def test_what_does_not_resolve_is_missing(pointer: str) -> None:
    assert JsonPointer(pointer).get(RFC_DOC) is MISSING


def test_numeric_tokens_are_object_keys_on_objects() -> None:
    assert JsonPointer("/0").get({"0": "zero"}) == "zero"
    assert JsonPointer("/01").get({"01": "one"}) == "one"


def test_null_is_a_value_not_missing() -> None:
    assert JsonPointer("/a").get({"a": None}) is None


@pytest.mark.parametrize("bad", ["foo", "/a~2", "/a~"])
def test_invalid_pointers_are_refused(bad: str) -> None:
    with pytest.raises(JsonPointerError):
        JsonPointer(bad)
