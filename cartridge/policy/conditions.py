"""Condition operators: every family AWS documents, with AWS's semantics.

A statement's ``Condition`` is ``{operator: {key: value or [values]}}``.  The
whole block is a conjunction: every operator, and every key under an
operator, must hold.  The values given for one key are a disjunction: the
request's value must match one of them.  A *negated* operator
(``StringNotEquals``, ``NotIpAddress``, ``ArnNotLike``...) is the complement
of its positive form over all the values, a NOR: true when the request's value
matches none of them.  That is also why the Rust original's conditions were
wrong in the safe-looking direction: "no value matched, so false" is the
right answer for ``StringEquals`` and the wrong one for ``StringNotEquals``.

A key missing from the request makes a positive operator false and a negated
one true (AWS: "if the policy condition requires that the key is not matched
... and the right key is not present, the condition is true").  ``...IfExists``
makes any operator true when the key is missing, and ``Null`` tests presence
itself.  A key with several values in the request (``cart:groups``) is a set:
``ForAllValues:`` requires every request value to pass the per-value test (and
is true for a missing or empty set, as AWS warns), ``ForAnyValue:`` requires
one (and is false for a missing set).  Without a qualifier a set is read
leniently as "some member matches" for a positive operator and "no member
matches" for a negated one, so negation stays a complement.

Typed families read their values when the policy is parsed, so a policy with
``"NumericLessThan": {"cart:ObjectSize": "ten"}`` is refused then, not
silently false at every request.  A *request* value that cannot be read as the
operator's type (a date that is not a date) raises :class:`Uncomparable`;
the evaluator then fails closed, letting a Deny statement apply and an Allow
statement not, since AWS leaves the case undocumented and guessing "false"
would weaken a Deny written with a negated operator.

Policy variables are substituted in the values of the string and ARN
families, the only ones where AWS allows them.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from .matching import Pattern, variable_text

__all__ = ["OPERATORS", "Clause", "Uncomparable", "parse_condition"]


class Uncomparable(Exception):
    """A request value cannot be read as the type its operator compares."""


_Number = int | float
T = TypeVar("T")
_IpNet = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class _Family:
    """How one operator family reads policy values and compares a request value."""

    read: Callable[[Any, bool], Any]
    """``read(raw, variables)``: a policy value, parsed (ValueError if bad)."""
    test: Callable[[Any, Any, Mapping[str, Any]], bool]
    """``test(request_value, policy_value, context)``: one comparison."""


# ------------------------------------------------------------------ readers
def _read_str(raw: Any, variables: bool) -> Pattern:
    if not isinstance(raw, str):
        raise ValueError(f"expected a string, got {raw!r}")
    return Pattern.parse(raw, variables=variables)


def _checked(convert: Callable[[Any], T | None], expected: str) -> Callable[[Any, bool], T]:
    """A value reader: ``convert`` the raw policy value, ValueError naming what was
    ``expected`` when it cannot (variables never apply to these families)."""
    def read(raw: Any, variables: bool) -> T:
        value = convert(raw)
        if value is None:
            raise ValueError(f"expected {expected}, got {raw!r}")
        return value
    return read


def _read_binary(raw: Any, variables: bool) -> bytes:
    if not isinstance(raw, str):
        raise ValueError(f"expected a base64 string, got {raw!r}")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"expected a base64 string, got {raw!r}") from None


def _read_network(raw: Any, variables: bool) -> _IpNet:
    if not isinstance(raw, str):
        raise ValueError(f"expected an IP address or CIDR block, got {raw!r}")
    try:
        return ipaddress.ip_network(raw.strip(), strict=False)
    except ValueError:
        raise ValueError(f"expected an IP address or CIDR block, got {raw!r}") from None


def _read_arn(raw: Any, variables: bool) -> tuple[Pattern, ...]:
    if not isinstance(raw, str):
        raise ValueError(f"expected an ARN string, got {raw!r}")
    parts = raw.split(":", 5)
    if raw != "*" and (len(parts) != 6 or parts[0] != "arn"):
        raise ValueError(f"expected an ARN (arn:partition:service:region:account:resource) "
                         f"or '*', got {raw!r}")
    return tuple(Pattern.parse(p, variables=variables) for p in parts)


# ------------------------------------------------------- request coercions
def _to_number(value: Any) -> _Number | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _to_epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    number = _to_number(value)
    if number is not None:
        return float(number)
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    return None


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


_read_number = _checked(_to_number, "a number")
_read_date = _checked(_to_epoch, "an ISO 8601 date or epoch seconds")
_read_bool = _checked(_to_bool, '"true" or "false"')


def _need(value: Any, kind: str) -> Any:
    if value is None:
        raise Uncomparable(kind)
    return value


# ------------------------------------------------------------------ tests
def _text(value: Any) -> str:
    return str(_need(variable_text(value), "a string"))


def _string_equals(req: Any, pol: Pattern, ctx: Mapping[str, Any]) -> bool:
    want = pol.substitute(ctx)
    return want is not None and _text(req) == want


def _string_equals_ic(req: Any, pol: Pattern, ctx: Mapping[str, Any]) -> bool:
    want = pol.substitute(ctx)
    return want is not None and _text(req).casefold() == want.casefold()


def _string_like(req: Any, pol: Pattern, ctx: Mapping[str, Any]) -> bool:
    return pol.match(_text(req), ctx)


def _numeric(op: Callable[[_Number, _Number], bool]) -> Callable[..., bool]:
    def test(req: Any, pol: _Number, ctx: Mapping[str, Any]) -> bool:
        return op(_need(_to_number(req), "a number"), pol)
    return test


def _date(op: Callable[[float, float], bool]) -> Callable[..., bool]:
    def test(req: Any, pol: float, ctx: Mapping[str, Any]) -> bool:
        return op(_need(_to_epoch(req), "a date"), pol)
    return test


def _bool(req: Any, pol: bool, ctx: Mapping[str, Any]) -> bool:
    return bool(_need(_to_bool(req), "a boolean") == pol)


def _binary(req: Any, pol: bytes, ctx: Mapping[str, Any]) -> bool:
    if isinstance(req, bytes | bytearray | memoryview):
        return bytes(req) == pol
    try:
        return base64.b64decode(_text(req), validate=True) == pol
    except (binascii.Error, ValueError):
        raise Uncomparable("base64") from None


def _ip(req: Any, pol: _IpNet, ctx: Mapping[str, Any]) -> bool:
    if isinstance(req, ipaddress.IPv4Address | ipaddress.IPv6Address):
        address = req
    else:
        try:
            address = ipaddress.ip_address(_text(req).strip())
        except ValueError:
            raise Uncomparable("an IP address") from None
    return address.version == pol.version and address in pol


def _arn(req: Any, pol: tuple[Pattern, ...], ctx: Mapping[str, Any]) -> bool:
    text = _text(req)
    if len(pol) == 1:
        return pol[0].match(text, ctx)
    parts = text.split(":", 5)
    if len(parts) != 6:
        return False
    return all(p.match(v, ctx) for p, v in zip(pol, parts))


def _eq(a: Any, b: Any) -> bool:
    return bool(a == b)


_STRING_EQ = _Family(_read_str, _string_equals)
_STRING_EQ_IC = _Family(_read_str, _string_equals_ic)
_STRING_LIKE = _Family(_read_str, _string_like)
_ARN = _Family(_read_arn, _arn)
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": _eq,
    "LessThan": lambda a, b: bool(a < b),
    "LessThanEquals": lambda a, b: bool(a <= b),
    "GreaterThan": lambda a, b: bool(a > b),
    "GreaterThanEquals": lambda a, b: bool(a >= b),
}


@dataclass(frozen=True, slots=True)
class _Operator:
    family: _Family
    negated: bool
    variables: bool
    """Policy variables are substituted in its values."""


def _operators() -> dict[str, _Operator]:
    ops = {
        "StringEquals": _Operator(_STRING_EQ, False, True),
        "StringNotEquals": _Operator(_STRING_EQ, True, True),
        "StringEqualsIgnoreCase": _Operator(_STRING_EQ_IC, False, True),
        "StringNotEqualsIgnoreCase": _Operator(_STRING_EQ_IC, True, True),
        "StringLike": _Operator(_STRING_LIKE, False, True),
        "StringNotLike": _Operator(_STRING_LIKE, True, True),
        "Bool": _Operator(_Family(_read_bool, _bool), False, False),
        "BinaryEquals": _Operator(_Family(_read_binary, _binary), False, False),
        "IpAddress": _Operator(_Family(_read_network, _ip), False, False),
        "NotIpAddress": _Operator(_Family(_read_network, _ip), True, False),
        "ArnEquals": _Operator(_ARN, False, True),
        "ArnLike": _Operator(_ARN, False, True),
        "ArnNotEquals": _Operator(_ARN, True, True),
        "ArnNotLike": _Operator(_ARN, True, True),
    }
    for name, op in _COMPARISONS.items():
        ops[f"Numeric{name}"] = _Operator(_Family(_read_number, _numeric(op)), False, False)
        ops[f"Date{name}"] = _Operator(_Family(_read_date, _date(op)), False, False)
    ops["NumericNotEquals"] = _Operator(_Family(_read_number, _numeric(_eq)), True, False)
    ops["DateNotEquals"] = _Operator(_Family(_read_date, _date(_eq)), True, False)
    return ops


_OPS = _operators()

#: Every base operator name (``Null`` included); each but ``Null`` also takes
#: ``IfExists`` and the ``ForAllValues:``/``ForAnyValue:`` qualifiers.
OPERATORS: frozenset[str] = frozenset({*_OPS, "Null"})

_QUALIFIERS = ("ForAllValues", "ForAnyValue")
_OP_SYNTAX = re.compile(r"(?:(?P<q>[A-Za-z]+):)?(?P<base>[A-Za-z]+?)(?P<ie>IfExists)?\Z")


@dataclass(frozen=True, slots=True)
class Clause:
    """One ``operator: {key: values}`` pair of a Condition block."""

    operator: str
    """The operator as written (``ForAnyValue:StringLikeIfExists``)."""
    key: str
    """The context key as written; looked up without regard to case."""
    values: tuple[Any, ...]
    """The policy values, parsed for the operator's family."""
    base: str
    """The operator without qualifier and ``IfExists`` (``StringLike``)."""
    qualifier: str | None
    """``"ForAllValues"``, ``"ForAnyValue"`` or None."""
    if_exists: bool
    """True for the ``...IfExists`` form."""

    def holds(self, context: Mapping[str, Any]) -> bool:
        """Evaluate against ``context`` (casefolded keys, engine keys included).

        Raises :class:`Uncomparable` if a request value has the wrong type.
        """
        raw = context.get(self.key.casefold())
        if isinstance(raw, list | tuple | set | frozenset):
            found: tuple[Any, ...] = tuple(v for v in raw if v is not None)
            multi = True
        else:
            found = () if raw is None else (raw,)
            multi = False
        if self.base == "Null":
            absent = not found
            return any(absent if want else not absent for want in self.values)
        if not found:
            if self.if_exists or self.qualifier == "ForAllValues":
                return True
            if self.qualifier == "ForAnyValue":
                return False
            return _OPS[self.base].negated
        op = _OPS[self.base]

        def one(value: Any) -> bool:
            hit = any(op.family.test(value, pol, context) for pol in self.values)
            return hit != op.negated

        if self.qualifier == "ForAllValues":
            return all(one(v) for v in found)
        if self.qualifier == "ForAnyValue":
            return any(one(v) for v in found)
        if multi and op.negated:
            return all(one(v) for v in found)
        return any(one(v) for v in found)


def parse_condition(block: Any, *, variables: bool) -> tuple[Clause, ...]:
    """Read a ``Condition`` element into clauses.

    Raises ValueError naming the operator and key at fault; the caller adds
    the statement.
    """
    if not isinstance(block, dict) or not block:
        raise ValueError("must be a non-empty object {operator: {key: value(s)}}")
    clauses = []
    for operator, pairs in block.items():
        base, qualifier, if_exists = _split_operator(operator)
        if not isinstance(pairs, dict) or not pairs:
            raise ValueError(f"{operator}: must be a non-empty object {{key: value(s)}}")
        for key, raw in pairs.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"{operator}: condition keys must be non-empty strings")
            items = raw if isinstance(raw, list) else [raw]
            if not items:
                raise ValueError(f"{operator}: {key}: the list of values is empty")
            try:
                if base == "Null":
                    values: tuple[Any, ...] = tuple(_read_bool(v, False) for v in items)
                else:
                    op = _OPS[base]
                    values = tuple(op.family.read(v, variables and op.variables) for v in items)
            except ValueError as exc:
                raise ValueError(f"{operator}: {key}: {exc}") from None
            clauses.append(Clause(operator, key, values, base, qualifier, if_exists))
    return tuple(clauses)


def _split_operator(operator: Any) -> tuple[str, str | None, bool]:
    m = _OP_SYNTAX.match(operator) if isinstance(operator, str) else None
    if m is None:
        raise ValueError(f"unknown condition operator {operator!r}")
    base, qualifier, if_exists = m.group("base"), m.group("q"), bool(m.group("ie"))
    if base not in OPERATORS:
        near = [o for o in OPERATORS if o.casefold() == base.casefold()]
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ValueError(f"unknown condition operator {operator!r}{hint}")
    if qualifier is not None and qualifier not in _QUALIFIERS:
        raise ValueError(f"unknown condition set qualifier {qualifier!r} in {operator!r}: "
                         f"use ForAllValues: or ForAnyValue:")
    if base == "Null" and (if_exists or qualifier):
        raise ValueError(f"{operator!r}: Null takes neither IfExists nor a set qualifier")
    return base, qualifier, if_exists
