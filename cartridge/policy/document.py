"""Policy documents: AWS IAM policy JSON, read strictly.

The grammar is AWS's: ``{"Version": ..., "Id": ..., "Statement": ...}`` with
one statement object or a list of them, each with ``Sid``, ``Effect``,
``Principal``/``NotPrincipal``, ``Action``/``NotAction``,
``Resource``/``NotResource`` and ``Condition``.  What we add is strictness.
Access control fails in the quiet direction: a misspelt key (``"Resources"``),
a Deny whose action is a typo, an operator AWS does not have, a duplicated
JSON key where the second silently wins - each is a policy that *looks* right
and is not.  So a document is refused whole, with a :class:`PolicyError` that
names the statement (index and Sid) and the field, unless every element is
understood; nothing is ever applied half-read.

What is refused: unknown top-level or statement keys; a missing Effect,
action or resource element, or both forms of one (``Action`` and
``NotAction``); wrong types; empty lists or objects; duplicate JSON keys and
duplicate Sids; unknown actions and condition operators; malformed variables;
resources that are neither container paths (``/...``), wildcards,
``snapshot:NAME`` nor ``arn:cart:::`` forms of those; and ``Principal`` in an
identity policy (identity policies apply to whom they are attached to, as in
AWS).  A document without ``Version`` is refused rather than read with the
old 2008 rules, under which ``${cart:username}`` would be literal text.

Everything is parsed once into frozen value objects: actions are resolved to
the set of permissions they cover, resources and condition values to
:class:`~cartridge.policy.matching.Pattern` tokens, so evaluating a request
does no parsing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import PolicyError
from .actions import CART_ACTIONS, resolve_actions
from .conditions import Clause, parse_condition
from .matching import Pattern

__all__ = ["Policy", "Principals", "Statement", "parse_policy", "VERSIONS"]

#: The policy language versions understood (policy variables need 2012-10-17).
VERSIONS = ("2012-10-17", "2008-10-17")

#: The prefix of the ARN form of a resource (``arn:cart:::/a/b`` is ``/a/b``).
ARN_PREFIX = "arn:cart:::"
_USER_ARN = "arn:cart:iam:::user/"
_TOP_KEYS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS = frozenset({"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
                             "Resource", "NotResource", "Condition"})

Kind = Literal["identity", "resource"]


@dataclass(frozen=True, slots=True)
class Principals:
    """The principals a ``Principal`` or ``NotPrincipal`` element names."""

    everyone: bool
    """``"*"`` (or ``{"AWS": "*"}``): every principal, anonymous included."""
    names: frozenset[str]
    """User names (``arn:cart:iam:::user/NAME`` is read as NAME)."""

    def includes(self, principal: str | None) -> bool:
        """True if ``principal`` (None: anonymous) is one of these."""
        return self.everyone or (principal is not None and principal in self.names)


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of a policy, parsed."""

    index: int
    """Position in the document's statement list (0 for a lone object)."""
    sid: str | None
    """The ``Sid``, if given."""
    effect: Literal["Allow", "Deny"]
    """``"Allow"`` or ``"Deny"``."""
    principal: Principals | None
    """``Principal``: the statement applies only to these (None: not given)."""
    not_principal: Principals | None
    """``NotPrincipal``: the statement applies to everyone but these."""
    action_patterns: tuple[str, ...]
    """The ``Action`` or ``NotAction`` entries as written."""
    not_action: bool
    """True if they came from ``NotAction``."""
    actions: frozenset[str]
    """The ``cart:`` permissions the statement covers (NotAction already inverted)."""
    resources: tuple[Pattern, ...]
    """The ``Resource`` or ``NotResource`` patterns (ARN prefix removed)."""
    not_resource: bool
    """True if they came from ``NotResource``."""
    conditions: tuple[Clause, ...]
    """The ``Condition`` clauses; all must hold."""


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed, validated policy document."""

    version: str
    """``"2012-10-17"`` or ``"2008-10-17"``."""
    id: str | None
    """The document's ``Id``, if given."""
    statements: tuple[Statement, ...]
    """Its statements, in document order."""
    kind: Kind
    """``"resource"`` (the container-wide policy, may name principals) or
    ``"identity"`` (attached to a user or group)."""
    name: str
    """How decisions name the policy (``"container policy"``, ``"user alice"``...)."""


def _fail(msg: str, index: int | None = None, sid: str | None = None,
          field: str | None = None) -> PolicyError:
    where = ""
    if index is not None:
        where = f"Statement[{index}]" + (f" (Sid {sid!r})" if sid else "")
        where += f", {field}: " if field else ": "
    elif field:
        where = f"{field}: "
    return PolicyError(f"invalid policy: {where}{msg}", statement=index, sid=sid, field=field)


class _Object(dict[str, Any]):
    """A JSON object read from text, remembering keys it saw twice."""

    duplicates: tuple[str, ...] = ()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> _Object:
    out = _Object()
    twice = []
    for key, value in pairs:
        if key in out:
            twice.append(key)
        out[key] = value
    out.duplicates = tuple(twice)
    return out


def _first_duplicate(value: Any) -> str | None:
    """A key some object in ``value`` had twice in the JSON text (JSON parsers
    disagree on which copy wins, so such a document is refused)."""
    if isinstance(value, _Object) and value.duplicates:
        return value.duplicates[0]
    children = value.values() if isinstance(value, dict) else value if isinstance(
        value, list) else ()
    for child in children:
        found = _first_duplicate(child)
        if found is not None:
            return found
    return None


def _bad_constant(name: str) -> Any:
    raise _fail(f"{name} is not valid JSON")


def _load(document: Any) -> Any:
    if isinstance(document, bytes | bytearray):
        document = bytes(document).decode("utf-8")
    if isinstance(document, str):
        try:
            return json.loads(document, object_pairs_hook=_no_duplicates,
                              parse_constant=_bad_constant)
        except json.JSONDecodeError as exc:
            raise _fail(f"not valid JSON ({exc})") from None
    return document


def _strings(value: Any, what: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError(f"{what} list is empty")
    for item in items:
        if not isinstance(item, str) or not item:
            raise ValueError(f"each {what} must be a non-empty string, got {item!r}")
    return tuple(items)


def _principals(value: Any) -> Principals:
    if value == "*":
        return Principals(True, frozenset())
    if not isinstance(value, dict) or set(value) != {"AWS"}:
        raise ValueError('must be "*" or {"AWS": name or [names]} (user names, or '
                         '"arn:cart:iam:::user/NAME")')
    names = _strings(value["AWS"], "principal")
    if "*" in names:
        return Principals(True, frozenset())
    out = set()
    for name in names:
        if name.startswith(_USER_ARN):
            name = name[len(_USER_ARN):]
        elif name.startswith("arn:"):
            raise ValueError(f"{name!r} is not a user: write the user name, or "
                             f"'{_USER_ARN}NAME'")
        if not name or "*" in name or "?" in name:
            raise ValueError(f"{name!r}: principals take no wildcards (only \"*\" alone)")
        out.add(name)
    return Principals(False, frozenset(out))


def _resource(text: str, variables: bool) -> Pattern:
    body = text[len(ARN_PREFIX):] if text.startswith(ARN_PREFIX) else text
    if not body.startswith(("/", "*", "?", "snapshot:", "${")):
        raise ValueError(f"{text!r} is not a container resource: write a path starting with "
                         f"'/', a wildcard, 'snapshot:NAME', or '{ARN_PREFIX}' followed by "
                         f"one of those")
    return Pattern.parse(body, variables=variables)


def _statement(raw: Any, index: int, kind: Kind, variables: bool) -> Statement:
    if not isinstance(raw, dict):
        raise _fail(f"a statement must be an object, got {type(raw).__name__}", index)
    sid = raw.get("Sid")
    if sid is not None and (not isinstance(sid, str) or not sid):
        raise _fail(f"Sid must be a non-empty string, got {sid!r}", index, None, "Sid")
    twice = _first_duplicate(raw)
    if twice is not None:
        raise _fail(f"the key {twice!r} appears twice in one object: write it once", index,
                    sid, twice)
    for key in raw:
        if key not in _STATEMENT_KEYS:
            raise _fail(f"unknown element {key!r} (statement elements are "
                        f"{', '.join(sorted(_STATEMENT_KEYS))})", index, sid, key)

    def pair(a: str, b: str, required: bool) -> tuple[Any, bool]:
        if a in raw and b in raw:
            raise _fail(f"give {a} or {b}, not both", index, sid, b)
        if required and a not in raw and b not in raw:
            raise _fail(f"missing (give {a} or {b})", index, sid, a)
        return (raw[b], True) if b in raw else (raw.get(a), False)

    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise _fail(f'must be "Allow" or "Deny", got {effect!r}', index, sid, "Effect")
    principal, not_principal = None, None
    if "Principal" in raw or "NotPrincipal" in raw:
        value, negated = pair("Principal", "NotPrincipal", False)
        field = "NotPrincipal" if negated else "Principal"
        if kind == "identity":
            raise _fail("an identity policy applies to the user or group it is attached to "
                        "and cannot name principals", index, sid, field)
        try:
            parsed = _principals(value)
        except ValueError as exc:
            raise _fail(str(exc), index, sid, field) from None
        principal, not_principal = (None, parsed) if negated else (parsed, None)
    value, not_action = pair("Action", "NotAction", True)
    field = "NotAction" if not_action else "Action"
    try:
        patterns = _strings(value, "action")
        covered = frozenset().union(*(resolve_actions(p) for p in patterns))
    except ValueError as exc:
        raise _fail(str(exc), index, sid, field) from None
    actions = frozenset(CART_ACTIONS) - covered if not_action else covered
    value, not_resource = pair("Resource", "NotResource", True)
    field = "NotResource" if not_resource else "Resource"
    try:
        resources = tuple(_resource(r, variables) for r in _strings(value, "resource"))
    except ValueError as exc:
        raise _fail(str(exc), index, sid, field) from None
    conditions: tuple[Clause, ...] = ()
    if "Condition" in raw:
        try:
            conditions = parse_condition(raw["Condition"], variables=variables)
        except ValueError as exc:
            raise _fail(str(exc), index, sid, "Condition") from None
    return Statement(index, sid, effect, principal, not_principal, patterns, not_action,
                     actions, resources, not_resource, conditions)


def parse_policy(document: Mapping[str, Any] | str | bytes, *, kind: Kind = "resource",
                 name: str | None = None) -> Policy:
    """Read and validate a policy document (a dict, or JSON text).

    Parameters
    ----------
    document
        The policy, as a dict or as JSON.
    kind
        ``"resource"`` for the container-wide policy (statements may name
        principals; one without ``Principal`` applies to everyone, anonymous
        included), ``"identity"`` for a policy attached to a user or group.
    name
        How decisions name this policy; defaults to ``"container policy"`` or
        ``"identity policy"``.

    Raises
    ------
    PolicyError
        Naming the statement (index and Sid) and the field, for anything not
        understood.
    """
    if kind not in ("identity", "resource"):
        raise ValueError(f"kind must be 'identity' or 'resource', got {kind!r}")
    doc = _load(document)
    if not isinstance(doc, dict):
        raise _fail(f"a policy must be a JSON object, got {type(doc).__name__}")
    if isinstance(doc, _Object) and doc.duplicates:
        raise _fail("appears twice: write it once", field=doc.duplicates[0])
    for key in doc:
        if key not in _TOP_KEYS:
            raise _fail(f"unknown element {key!r} (a policy has Version, Id and Statement)",
                        field=key)
    version = doc.get("Version")
    if version not in VERSIONS:
        raise _fail(f"must be one of {', '.join(map(repr, VERSIONS))}, got {version!r}",
                    field="Version")
    pid = doc.get("Id")
    if pid is not None and (not isinstance(pid, str) or not pid):
        raise _fail(f"must be a non-empty string, got {pid!r}", field="Id")
    if "Statement" not in doc:
        raise _fail("missing", field="Statement")
    raw = doc["Statement"]
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise _fail("the statement list is empty", field="Statement")
    variables = version == "2012-10-17"
    statements = tuple(_statement(s, i, kind, variables) for i, s in enumerate(items))
    seen: set[str] = set()
    for st in statements:
        if st.sid is not None:
            if st.sid in seen:
                raise _fail("a Sid must be unique within a policy", st.index, st.sid, "Sid")
            seen.add(st.sid)
    label = name or ("container policy" if kind == "resource" else "identity policy")
    return Policy(version, pid, statements, kind, label)

