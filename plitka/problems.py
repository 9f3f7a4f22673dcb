"""Request problems: each names the field, what is wrong (with the value) and the fix.

Shared by every validator of the request contract so that all messages read the same way. A
hostile request can carry thousands of problems and megabyte-long values; the error stays small
(at most `MAX_LISTED_PROBLEMS` listed, `MAX_ERROR_CHARS` in all) because Cog ships it to the
caller through its worker transport, whose frames are size-limited (docs/operations.md).
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

MAX_LISTED_PROBLEMS = 20
MAX_ERROR_CHARS = 4000
MAX_LINE_CHARS = 400
MAX_SHOWN_CHARS = 60
MAX_FIELD_CHARS = 80


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: where, what, and how to fix it."""

    field: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} Fix: {self.fix}"


class RequestError(ValueError):
    """An invalid request; `problems` lists every problem found, in input order.

    The message lists the first problems only (at most `MAX_LISTED_PROBLEMS`, each line at most
    `MAX_LINE_CHARS`, the whole under `MAX_ERROR_CHARS`) and says how many more there are.
    """

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        count = len(self.problems)
        lines = [f"Invalid request ({count} problem{'s' if count != 1 else ''}):"]
        listed = 0
        for problem in self.problems[:MAX_LISTED_PROBLEMS]:
            line = _clip(utf8_safe(f"- {problem}"), MAX_LINE_CHARS)
            # Room for this line and the "and N more" line that may follow it.
            if sum(len(x) + 1 for x in lines) + len(line) + 40 > MAX_ERROR_CHARS:
                break
            lines.append(line)
            listed += 1
        if listed < count:
            rest = count - listed
            lines.append(f"- and {rest} more problem{'s' if rest != 1 else ''}.")
        super().__init__("\n".join(lines))
        self.listed = listed

    def to_dict(self) -> dict[str, Any]:
        """The listed problems as data (same cap as the message) and the total count."""
        return {
            "error": "invalid_request",
            "problem_count": len(self.problems),
            "problems": [
                {key: utf8_safe(value) for key, value in asdict(p).items()}
                for p in self.problems[: self.listed]
            ],
        }


def utf8_safe(text: str) -> str:
    """`text` with lone surrogates (JSON allows "\\ud800") written as escapes. They cannot be encoded
    as UTF-8: Cog sends them as U+FFFD, which would hide from the caller what was wrong."""
    return text.encode("utf-8", errors="backslashreplace").decode("utf-8")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def field_name(name: Any) -> str:
    """A caller-chosen key as it appears in a field path, shortened so a giant key cannot bloat errors."""
    return _clip(str(name), MAX_FIELD_CHARS)


def finite_number(value: Any) -> float | None:
    """`value` as a finite float, or None for anything else: booleans, text, NaN, infinities, and
    integers too large for a float (JSON allows `1` followed by 400 zeros; `float()` overflows)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def reject_unknown_keys(
    data: dict[str, Any], allowed: tuple[str, ...], prefix: str, problems: list[Problem]
) -> None:
    """An unknown key is an error with the closest allowed key as a suggestion."""
    for key in data:
        if key in allowed:
            continue
        where = f"{prefix}{field_name(key)}"
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


def show(value: Any, limit: int = MAX_SHOWN_CHARS) -> str:
    """The caller's value quoted back as JSON, shortened to `limit` characters.

    Built piece by piece and stopped at the limit, so a million-item list or a deeply nested value
    costs no more than a short one (`json.dumps` of the whole value would not).
    """
    parts: list[str] = []
    size = 0
    stack: list[Any] = [value]
    while stack and size <= limit:
        item = stack.pop()
        if isinstance(item, _Text):
            piece = item.text
        elif isinstance(item, dict):
            piece = "{"
            entries = list(item.items())[: limit // 4 + 1]
            stack.append(_Text("}" if len(entries) == len(item) else ", ...}"))
            for index in range(len(entries) - 1, -1, -1):
                key, entry = entries[index]
                stack.append(entry)
                stack.append(_Text(f"{_scalar(str(key))}: "))
                if index:
                    stack.append(_Text(", "))
        elif isinstance(item, list | tuple):
            piece = "["
            entries = list(item[: limit // 3 + 1])
            stack.append(_Text("]" if len(entries) == len(item) else ", ...]"))
            for index in range(len(entries) - 1, -1, -1):
                stack.append(entries[index])
                if index:
                    stack.append(_Text(", "))
        else:
            piece = _scalar(item)
        parts.append(piece)
        size += len(piece)
    text = "".join(parts)
    return text if len(text) <= limit and not stack else text[: limit - 3] + "..."


@dataclass(frozen=True)
class _Text:
    text: str


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value[: MAX_SHOWN_CHARS + 1], ensure_ascii=False)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        # str() of an integer over 4,300 digits raises in Python 3.11+; its size is what matters.
        if abs(value) < 10**50:
            return str(value)
        return f"<an integer of {math.floor(value.bit_length() * math.log10(2)) + 1} digits>"
    if isinstance(value, float):
        return json.dumps(value)
    return type(value).__name__
