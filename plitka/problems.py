"""Request problems: each names the field, what is wrong (with the value) and the fix.

Shared by every validator of the request contract so that all messages read the same way.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: where, what, and how to fix it."""

    field: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} Fix: {self.fix}"


class RequestError(ValueError):
    """An invalid request; `problems` lists every problem found, in input order."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        count = len(self.problems)
        lines = [f"Invalid request ({count} problem{'s' if count != 1 else ''}):"]
        lines += [f"- {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))

    def to_dict(self) -> dict[str, Any]:
        return {"error": "invalid_request", "problems": [asdict(p) for p in self.problems]}


def reject_unknown_keys(
    data: dict[str, Any], allowed: tuple[str, ...], prefix: str, problems: list[Problem]
) -> None:
    """An unknown key is an error with the closest allowed key as a suggestion."""
    for key in data:
        if key in allowed:
            continue
        where = f"{prefix}{key}"
        close = difflib.get_close_matches(str(key).lower(), allowed, n=1, cutoff=0.6)
        if close:
            fix = f'did you mean "{close[0]}"?'
        else:
            fix = "remove it; allowed keys: " + ", ".join(allowed) + "."
        problems.append(Problem(where, "is not a known key.", fix))


def parse_choice(
    value: Any, where: str, choices: tuple[str, ...], default: str, problems: list[Problem]
) -> str:
    """A case-insensitive choice; None means "not given" and yields the default."""
    if value is None:
        return default
    if isinstance(value, str) and value.strip().lower() in choices:
        return value.strip().lower()
    problems.append(
        Problem(
            where,
            f"{show(value)} is not one of {', '.join(choices)}.",
            f'use one of them, e.g. "{default}".',
        )
    )
    return default


def type_name(value: Any) -> str:
    """How a JSON value is named in messages ("a list", "a string", ...)."""
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def show(value: Any) -> str:
    """The caller's value quoted back as JSON, shortened to 60 characters."""
    text = json.dumps(value, ensure_ascii=False) if jsonable(value) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
