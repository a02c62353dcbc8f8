"""Deciding one request: AWS's evaluation logic, for one container.

AWS documents the logic for requests within one account, and this is it:

1. Everything is denied by default.
2. An applicable ``Deny`` statement in any policy - identity or resource -
   decides: denied.  No Allow anywhere can override it.
3. Otherwise an applicable ``Allow`` statement in an identity policy of the
   principal, or in the container-wide (resource-based) policy, allows.
4. Otherwise the default deny stands: "no statement allowed".

A statement *applies* when its principal element admits the requester (only
the container-wide policy has one; a statement there without ``Principal``
applies to every principal, anonymous included, as the seeds' examples
assume), its action element covers the permission, its resource element
matches the resource, and every condition holds.  Order never matters, and
there is no "first match": the tests check that shuffling statements changes
nothing, that adding a Deny never grants and adding an Allow never takes
away.

Resources are container paths, normalized by the caller *before* this sees
them (``..``, doubled slashes, Unicode forms are the caller's to resolve:
matching works on the exact string), ``/`` for the container and
``snapshot:NAME`` for a snapshot.  The ``arn:cart:::`` form of each is
accepted in requests as in policies; the plain form is the canonical one
because it is what users type and what the handle dispatches.

The engine supplies the context keys ``cart:username`` (absent for the
anonymous principal, so a ``${cart:username}`` resource matches nothing for
it), ``cart:groups``, ``cart:CurrentTime`` (ISO 8601, UTC) and
``cart:EpochTime``; callers add their own (``cart:ObjectSize``,
``cart:SourceIp``...) but may not supply the engine's, or a caller could
claim to be someone else through ``context=``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..errors import PolicyError
from .actions import canonical_action
from .conditions import Uncomparable
from .document import ARN_PREFIX, Policy, Statement

__all__ = ["Decision", "MatchedStatement", "Request", "ENGINE_KEYS", "evaluate"]

#: Context keys only the engine sets (casefolded).
ENGINE_KEYS = frozenset({"cart:username", "cart:groups", "cart:currenttime", "cart:epochtime"})


@dataclass(frozen=True, slots=True)
class Request:
    """One permission asked for on one resource."""

    action: str
    """A ``cart:`` permission (any case)."""
    resource: str
    """A normalized container path, ``/`` for the container, ``snapshot:NAME``,
    or the ``arn:cart:::`` form of one of those."""
    principal: str | None = None
    """The user asking; None for the anonymous principal."""
    groups: tuple[str, ...] = ()
    """The user's groups (the value of ``cart:groups``)."""
    context: Mapping[str, Any] = field(default_factory=dict)
    """Further context keys (case-insensitive names) for conditions and variables."""
    time: datetime | None = None
    """The request's time (``cart:CurrentTime``); None: now."""


@dataclass(frozen=True, slots=True)
class MatchedStatement:
    """A statement that applied to a request."""

    policy: str
    """The policy's name (``"container policy"``, ``"user alice"``...)."""
    index: int
    """The statement's index in that policy."""
    sid: str | None
    """Its Sid, if it has one."""
    effect: str
    """``"Allow"`` or ``"Deny"``."""

    def __str__(self) -> str:
        which = f"statement {self.sid!r}" if self.sid else f"statement #{self.index}"
        return f"{self.policy} {which}"


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of :func:`evaluate`."""

    allowed: bool
    """True if the request is allowed."""
    statements: tuple[MatchedStatement, ...]
    """The statements that decided: the Deny statements that applied if
    denied by one, else the Allow statements that applied (empty under the
    default deny)."""
    reason: str
    """Which statement denied or allowed, or ``"no statement allowed"``."""


def _context(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in request.context.items():
        if not isinstance(key, str):
            raise PolicyError(f"context keys must be strings, got {key!r}")
        folded = key.casefold()
        if folded in ENGINE_KEYS:
            raise PolicyError(f"the context key {key!r} is set by the policy engine and cannot "
                              f"be passed in context=")
        if folded in out:
            raise PolicyError(f"the context key {key!r} is given twice (keys ignore case)")
        out[folded] = value
    when = request.time or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    if request.principal is not None:
        out["cart:username"] = request.principal
    out["cart:groups"] = list(request.groups)
    out["cart:currenttime"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    out["cart:epochtime"] = int(when.timestamp())
    return out


def _applies(st: Statement, policy: Policy, action: str, resource: str, principal: str | None,
             context: Mapping[str, Any]) -> bool:
    if policy.kind == "resource":
        if st.principal is not None and not st.principal.includes(principal):
            return False
        if st.not_principal is not None and st.not_principal.includes(principal):
            return False
    if action not in st.actions:
        return False
    hit = any(p.match(resource, context) for p in st.resources)
    if hit == st.not_resource:
        return False
    try:
        return all(clause.holds(context) for clause in st.conditions)
    except Uncomparable:
        # Fail closed: a request value of the wrong type lets a Deny apply
        # and keeps an Allow from applying.
        return st.effect == "Deny"


def evaluate(request: Request, identity_policies: Iterable[Policy] = (),
             resource_policy: Policy | None = None) -> Decision:
    """Decide ``request`` under the principal's identity policies and the
    container-wide policy.

    Raises :class:`PolicyError` for an unknown action, a resource in no
    known form, a policy of the wrong kind, or a context that tries to set
    an engine key.
    """
    try:
        action = canonical_action(request.action)
    except KeyError:
        raise PolicyError(f"unknown action {request.action!r}: see "
                          f"cartridge.policy.CART_ACTIONS") from None
    resource = request.resource
    if resource.startswith(ARN_PREFIX):
        resource = resource[len(ARN_PREFIX):]
    if not resource.startswith(("/", "snapshot:")):
        raise PolicyError(f"resource {request.resource!r} is neither a container path nor "
                          f"'snapshot:NAME'")
    policies = list(identity_policies)
    for policy in policies:
        if policy.kind != "identity":
            raise PolicyError(f"{policy.name} is a {policy.kind} policy, passed as an "
                              f"identity policy")
    if resource_policy is not None:
        if resource_policy.kind != "resource":
            raise PolicyError(f"{resource_policy.name} is an identity policy, passed as the "
                              f"resource policy")
        policies.append(resource_policy)
    context = _context(request)
    denies: list[MatchedStatement] = []
    allows: list[MatchedStatement] = []
    for policy in policies:
        for st in policy.statements:
            if _applies(st, policy, action, resource, request.principal, context):
                found = MatchedStatement(policy.name, st.index, st.sid, st.effect)
                (denies if st.effect == "Deny" else allows).append(found)
    if denies:
        return Decision(False, tuple(denies), f"denied by {denies[0]}")
    if allows:
        return Decision(True, tuple(allows), f"allowed by {allows[0]}")
    return Decision(False, (), "no statement allowed")
