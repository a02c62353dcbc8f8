"""Wildcards and policy variables, as AWS defines them.

A policy names actions and resources with two wildcards: ``*`` matches any
run of characters, the empty run and ``/`` included, and ``?`` matches exactly
one character.  There is no ``**``: it is two stars, and means what one star
means, which is why the seeds' ``/public/**`` and ``*.txt`` keep their meaning
(everything under ``/public/``, every name ending in ``.txt`` at any depth).
Actions compare without regard to case (``cart:readfile`` is
``cart:ReadFile``); resources and ``StringLike`` values are case-sensitive,
because paths are.

Policy variables (``${cart:username}``) stand for values of the request's
context, substituted when a request is evaluated, never when the policy is
read.  A substituted value is always *literal*: a user called ``a*`` does not
become a wildcard (AWS user names cannot hold ``*``; ours could, and a
variable that widened a grant would be a hole).  ``${*}``, ``${?}`` and
``${$}`` write the three special characters literally, and
``${key, 'default'}`` gives a default for a missing key.  A variable whose key
is missing, or has several values, leaves the pattern unresolved, and an
unresolved pattern matches nothing, as AWS documents.  Version
``2008-10-17`` documents have no variables: there ``${...}`` is plain text.

A pattern is parsed once into tokens (:class:`Pattern`) and, without
variables, into *segments* on the spot: the runs between stars, each of fixed
length since ``?`` is one character.  Matching is then the classic glob
algorithm: the first segment anchors the start, the last the end, and the
middle ones are found leftmost in order, which is optimal because each has a
fixed length.  It runs in O(len(pattern) x len(value)) at worst.  A regular
expression would be shorter to write, but ``.*/.*/.*/.*[.]txt`` backtracks
polynomially on a deep path that does not match, and paths are chosen by the
users a policy restrains: the matcher must not be theirs to stall.
:func:`reference_match` is the plain recursive definition, kept beside the
fast path so the tests can compare the two on random strings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

__all__ = ["Pattern", "reference_match", "variable_text", "wildcard_match"]

# Token kinds: a literal run of text, the two wildcards, a variable.
_LIT, _STAR, _ONE, _VAR = "lit", "*", "?", "var"
_SPECIAL = {"*": "*", "?": "?", "$": "$"}
_NAME = re.compile(r"[A-Za-z0-9_.:/\-]+\Z")
_DEFAULT = re.compile(r"\s*([^,]+?)\s*,\s*'((?:[^']|'')*)'\s*\Z")


# A segment: its text (a "?" at each one-character wildcard) and the offsets of
# those wildcards (a literal "?" from ${?} or a variable's value is not one).
_Segment = tuple[str, tuple[int, ...]]


def _at(seg: _Segment, value: str, i: int) -> bool:
    text, ones = seg
    if not ones:
        return value.startswith(text, i)
    if i + len(text) > len(value):
        return False
    return all(text[k] == value[i + k] for k in range(len(text)) if k not in ones)


def _find(seg: _Segment, value: str, start: int, stop: int) -> int:
    """Leftmost offset in [start, stop - len] where ``seg`` matches, or -1."""
    text, ones = seg
    if not ones:
        return value.find(text, start, stop)
    for i in range(start, stop - len(text) + 1):
        if _at(seg, value, i):
            return i
    return -1


def _glob(segments: tuple[_Segment, ...], value: str) -> bool:
    """``segments`` joined by stars match the whole of ``value``."""
    first = segments[0]
    if len(segments) == 1:
        return len(first[0]) == len(value) and _at(first, value, 0)
    last = segments[-1]
    start, stop = len(first[0]), len(value) - len(last[0])
    if stop < start or not _at(first, value, 0) or not _at(last, value, stop):
        return False
    for seg in segments[1:-1]:
        i = _find(seg, value, start, stop)
        if i < 0:
            return False
        start = i + len(seg[0])
    return True


def variable_text(value: Any) -> str | None:
    """The text a context value stands for in a pattern, or None if it has
    none (missing, multivalued, or a type with no agreed text form)."""
    if value is None or isinstance(value, list | tuple | set | frozenset | bytes | dict):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, str | int | float):
        return str(value)
    return None


@dataclass(frozen=True, slots=True)
class Pattern:
    """One action, resource or ``StringLike`` pattern, parsed.

    Build with :meth:`parse`; match with :meth:`match`.
    """

    text: str
    """The pattern as written in the policy."""
    tokens: tuple[tuple[str, str, str | None], ...]
    """``(kind, text, default)``: literal text, ``*``, ``?`` or a variable
    (``text`` its key, ``default`` its default or None)."""
    ignore_case: bool = False
    """Compare without regard to case (actions)."""
    _segments: tuple[_Segment, ...] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str, *, variables: bool = True, ignore_case: bool = False) -> Pattern:
        """Parse ``text``; ``variables=False`` reads ``${...}`` as plain text.

        Raises ValueError (with what is wrong) for an unterminated or
        malformed variable.
        """
        tokens: list[tuple[str, str, str | None]] = []
        lit: list[str] = []

        def flush() -> None:
            if lit:
                tokens.append((_LIT, "".join(lit), None))
                lit.clear()

        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if c == "*" or c == "?":
                flush()
                if not (c == "*" and tokens and tokens[-1][0] == _STAR):
                    tokens.append((c, c, None))
                i += 1
            elif variables and c == "$" and text.startswith("${", i):
                end = text.find("}", i + 2)
                if end < 0:
                    raise ValueError(f"unterminated policy variable at offset {i} of {text!r}")
                inner = text[i + 2:end]
                if inner.strip() in _SPECIAL:
                    lit.append(_SPECIAL[inner.strip()])
                else:
                    flush()
                    tokens.append(_parse_variable(inner, text))
                i = end + 1
            else:
                lit.append(c)
                i += 1
        flush()
        out = cls(text, tuple(tokens), ignore_case)
        if not out.has_variables:
            object.__setattr__(out, "_segments", out.segments())
        return out

    @property
    def has_variables(self) -> bool:
        """True if the pattern names a policy variable."""
        return any(kind == _VAR for kind, _, _ in self.tokens)

    def segments(self, context: Mapping[str, Any] | None = None
                 ) -> tuple[_Segment, ...] | None:
        """The runs between stars, variables of ``context`` (casefolded keys)
        substituted as literal text; None if a variable cannot be resolved."""
        if self._segments is not None:
            return self._segments
        segments: list[_Segment] = []
        text: list[str] = []
        ones: list[int] = []
        for kind, part, default in self.tokens:
            if kind == _STAR:
                segments.append(("".join(text), tuple(ones)))
                text, ones = [], []
                continue
            if kind == _ONE:
                ones.append(sum(map(len, text)))
                part = "?"
            elif kind == _VAR:
                value = variable_text(context.get(part) if context else None)
                if value is None:
                    value = default
                if value is None:
                    return None
                part = value
            text.append(part.casefold() if self.ignore_case else part)
        segments.append(("".join(text), tuple(ones)))
        return tuple(segments)

    def match(self, value: str, context: Mapping[str, Any] | None = None) -> bool:
        """True if ``value`` matches, variables taken from ``context``
        (casefolded keys); an unresolved variable matches nothing."""
        segments = self.segments(context)
        if segments is None:
            return False
        return _glob(segments, value.casefold() if self.ignore_case else value)

    def substitute(self, context: Mapping[str, Any] | None = None) -> str | None:
        """The pattern's text with its variables replaced (for ``StringEquals``
        and friends, where wildcards are plain characters), or None if a
        variable cannot be resolved."""
        out = []
        for kind, text, default in self.tokens:
            if kind == _VAR:
                value = variable_text(context.get(text) if context else None)
                if value is None:
                    value = default
                if value is None:
                    return None
                out.append(value)
            else:
                out.append(text)
        return "".join(out)


def _parse_variable(inner: str, text: str) -> tuple[str, str, str | None]:
    name, default = inner.strip(), None
    if "," in inner:
        m = _DEFAULT.match(inner)
        if m is None:
            raise ValueError(f"malformed policy variable ${{{inner}}} in {text!r}: a default "
                             f"is written ${{key, 'default'}}")
        name, default = m.group(1), m.group(2).replace("''", "'")
    if not _NAME.match(name):
        raise ValueError(f"malformed policy variable ${{{inner}}} in {text!r}: a key is "
                         f"letters, digits and _.:/-")
    return (_VAR, name.casefold(), default)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """True if ``value`` matches ``pattern`` (``*`` and ``?`` only, no variables)."""
    return Pattern.parse(pattern, variables=False, ignore_case=ignore_case).match(value)


def reference_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """The plain definition of wildcard matching, for tests: ``*`` any run,
    ``?`` one character, anything else itself."""
    if ignore_case:
        pattern, value = pattern.casefold(), value.casefold()

    @cache
    def at(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(value)
        c = pattern[i]
        if c == "*":
            return at(i + 1, j) or (j < len(value) and at(i, j + 1))
        if j == len(value):
            return False
        return (c == "?" or c == value[j]) and at(i + 1, j + 1)

    return at(0, 0)
