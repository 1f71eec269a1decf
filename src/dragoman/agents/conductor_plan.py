"""A Conductor's plan: the JSON object its coordinator writes each turn, read without I/O.

```json
{"thought": "split the job",
 "dispatch": [{"worker": "code", "task": "write merge sort"},
              {"worker": "math", "task": "prove O(n log n) for #1", "sees": [1]}],
 "halt": false,
 "final_answer": null}
```

Every field is optional; unknown fields are ignored. ``sees`` lists the numbers of earlier
results (every dispatched task gets the next number, 1, 2, … over the whole run) that the
worker reads, or ``"all"``. Reading is tolerant: prose around the object, a Markdown code
fence (```` ```json ````), numbers written ``"#3"``. What cannot be read raises
``PlanError`` with a sentence the coordinator is shown on its corrective retry.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import msgspec

Sees = tuple[int, ...] | Literal["all"]


class PlanError(ValueError):
    """The coordinator's reply is not a usable plan; the message says why."""


# (``gc=False``: they hold only strings, numbers and each other, so they can be in no
# reference cycle; not tracking them makes a decoded plan ~12 % cheaper to build)
class Dispatch(msgspec.Struct, frozen=True, gc=False):
    worker: str
    task: str
    sees: Sees = ()


class Plan(msgspec.Struct, frozen=True, gc=False):
    thought: str = ""
    dispatch: tuple[Dispatch, ...] = ()
    halt: bool = False
    final_answer: str | None = None


#: a plan written as the prompt shows, decoded straight into the structs (a Decoder made
#: once: ``msgspec.json.decode(..., type=Plan)`` looks the type up on every call)
_PLAN = msgspec.json.Decoder(Plan)

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.DOTALL)


def _json_text(text: str) -> str:
    """The part of a reply that should be the JSON object."""
    fenced = _FENCE.search(text) if "```" in text else None
    if fenced is not None:
        text = fenced.group(1)
    text = text.strip()
    if not text.startswith("{"):
        start, end = text.find("{"), text.rfind("}")
        if start != -1 and end > start:
            return text[start:end + 1]
    return text


def _ref(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise PlanError(f"{where}: {value!r} is not a result number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("#").isdigit():
        return int(value.strip().lstrip("#"))
    raise PlanError(f"{where}: {value!r} is not a result number")


def _sees(value: Any, where: str) -> Sees:
    if value is None:
        return ()
    if value == "all":
        return "all"
    if isinstance(value, (int, str)):
        value = [value]
    if not isinstance(value, list):
        raise PlanError(f"{where}.sees must be a list of result numbers or \"all\"")
    return tuple(_ref(v, f"{where}.sees") for v in value)


def _dispatch(entry: Any, i: int) -> Dispatch:
    where = f"dispatch[{i}]"
    if not isinstance(entry, dict):
        raise PlanError(f"{where} must be an object with \"worker\" and \"task\"")
    worker, task = entry.get("worker"), entry.get("task")
    if not isinstance(worker, str) or not worker.strip():
        raise PlanError(f"{where}.worker must be the name of a worker")
    if not isinstance(task, str) or not task.strip():
        raise PlanError(f"{where}.task must be a non-empty text")
    return Dispatch(worker=worker.strip(), task=task, sees=_sees(entry.get("sees"), where))


def _strict(body: str) -> Plan | None:
    """The plan when ``body`` is written exactly as the prompt shows (msgspec decodes it
    straight into the structs, ~5x cheaper than ``json.loads`` and the checks below);
    None for anything that needs the tolerant reading (which then decides, so both
    readings agree)."""
    try:
        plan = _PLAN.decode(body)
    except ValueError:  # msgspec's errors, a lone surrogate
        return None
    for d in plan.dispatch:
        if not d.worker or d.worker != d.worker.strip() or not d.task.strip():
            return None
    return plan


def parse_plan(text: str) -> Plan:
    """The plan in a coordinator's reply; ``PlanError`` when there is none."""
    # (a reply that starts as the object, as the prompt asks: no search for it first)
    body = text if text[:1] == "{" and "```" not in text else _json_text(text)
    plan = _strict(body)
    if plan is not None:
        return plan
    try:
        data = json.loads(body)
    except json.JSONDecodeError as e:
        raise PlanError(f"the reply is not valid JSON ({e.msg} at line {e.lineno} "
                        f"column {e.colno})") from None
    if not isinstance(data, dict):
        raise PlanError("the reply must be one JSON object, not "
                        f"{type(data).__name__}")
    raw = data.get("dispatch") or []
    if not isinstance(raw, list):
        raise PlanError("dispatch must be a list")
    final = data.get("final_answer")
    if final is not None and not isinstance(final, str):
        final = json.dumps(final)
    thought = data.get("thought")
    return Plan(thought=thought if isinstance(thought, str) else "",
                dispatch=tuple(_dispatch(e, i) for i, e in enumerate(raw)),
                halt=data.get("halt") is True, final_answer=final)


def short(text: str, limit: int = 60) -> str:
    """A task label for the results message: at most ``limit`` characters (cut on
    characters, not bytes — tako cuts UTF-8 bytes)."""
    return text if len(text) <= limit else text[:limit - 3] + "..."
