"""Access policies with AWS IAM semantics: documents, matching, conditions, decisions.

This package is the policy *engine* and nothing else: it reads policy
documents, matches actions and resources, evaluates conditions and decides
requests.  It knows nothing of containers, handles or files - it imports only
:mod:`cartridge.errors` - so it can be reasoned about, and tested, as a pure
function from (request, policies) to a decision.  Where policies are stored,
who the users are, how a dispatched operation becomes requests (through
:func:`checks`) and what is audited is the container's business.

The modules, bottom up: :mod:`.matching` (wildcards and policy variables),
:mod:`.conditions` (condition operators), :mod:`.actions` (the ``cart:``
vocabulary and the table from choke-point actions to permissions),
:mod:`.document` (parsing and validation) and :mod:`.evaluate` (the decision).

>>> from cartridge.policy import Request, evaluate, parse_policy
>>> policy = parse_policy({"Version": "2012-10-17", "Statement": [
...     {"Effect": "Allow", "Action": "cart:ReadFile", "Resource": "/public/**"}]})
>>> evaluate(Request("cart:ReadFile", "/public/a.txt"), (), policy).allowed
True
>>> evaluate(Request("cart:WriteFile", "/public/a.txt"), (), policy).reason
'no statement allowed'
"""

from .actions import (
    CART_ACTIONS,
    CONTAINER,
    REQUIRED,
    S3_ACTIONS,
    Requirement,
    canonical_action,
    checks,
    resolve_actions,
)
from .conditions import OPERATORS, Clause
from .document import ARN_PREFIX, VERSIONS, Policy, Principals, Statement, parse_policy
from .evaluate import ENGINE_KEYS, Decision, MatchedStatement, Request, evaluate
from .matching import Pattern, reference_match, wildcard_match

__all__ = [
    "ARN_PREFIX",
    "CART_ACTIONS",
    "CONTAINER",
    "Clause",
    "Decision",
    "ENGINE_KEYS",
    "MatchedStatement",
    "OPERATORS",
    "Pattern",
    "Policy",
    "Principals",
    "REQUIRED",
    "Request",
    "Requirement",
    "S3_ACTIONS",
    "Statement",
    "VERSIONS",
    "canonical_action",
    "checks",
    "evaluate",
    "parse_policy",
    "reference_match",
    "resolve_actions",
    "wildcard_match",
]
