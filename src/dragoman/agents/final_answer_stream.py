"""The Conductor's final answer read out of its coordinator's reply WHILE it streams.

A halting coordinator writes ``{"halt": true, "final_answer": "..."}`` (that order is
what its prompt shows). Once the text so far has ``"halt": true`` followed by the start of
the ``final_answer`` string, the string's characters are the answer: ``feed`` decodes
them as they arrive (JSON escapes included, an escape cut between two deltas held back
until it is whole) and returns what is new. Anything else — a plan, the answer before
the halt flag, a reply the model fences or wraps in prose differently — streams nothing,
and the Conductor falls back to the answer of the parsed plan at the end of the turn.
"""

from __future__ import annotations

import json
import re

_OPENING = re.compile(r'"halt"\s*:\s*true\s*,\s*"final_answer"\s*:\s*"')
#: a complete run of string content: plain characters or whole escapes (a \uXXXX high
#: surrogate only with its low half, so a pair is never split)
_CONTENT = re.compile(r'(?:[^"\\]|\\["\\/bfnrt]|\\u(?![dD][89abAB])[0-9a-fA-F]{4}'
                      r'|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})*')


class FinalAnswerStream:
    """``feed(delta)`` → the answer text that delta completes (often ""); ``streamed``:
    everything returned so far; ``closed``: the answer string has ended."""

    __slots__ = ("_at", "_text", "closed", "streamed")

    #: how far back a new delta's search for the opening starts: the opening is ~30
    #: characters, so a long plan is scanned once, not once per delta (an opening with
    #: more blanks than this inside it only loses the streaming, not the answer)
    OVERLAP = 80

    def __init__(self) -> None:
        self._text = ""
        self._at = -1  # where undecoded answer content starts, -1 before the opening
        self.streamed = ""
        self.closed = False

    def feed(self, delta: str) -> str:
        if self.closed:
            return ""
        searched = len(self._text)
        self._text += delta
        if self._at < 0:
            start = max(0, searched - self.OVERLAP)
            if self._text.find('"halt"', start) < 0:  # what the opening starts with
                return ""
            m = _OPENING.search(self._text, start)
            if m is None:
                return ""
            self._at = m.end()
        run = _CONTENT.match(self._text, self._at)
        assert run is not None  # the pattern matches the empty string
        end = run.end()
        if end < len(self._text) and self._text[end] == '"':
            self.closed = True
        if end == self._at:
            return ""
        new: str = json.loads('"' + self._text[self._at:end] + '"', strict=False)
        self._at = end
        self.streamed += new
        return new
