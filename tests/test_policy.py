"""The policy engine (cartridge.policy): AWS's documented evaluation examples,
validation, wildcard matching against a reference, and hypothesis properties.

The examples follow the AWS IAM User Guide (policy evaluation logic, condition
operators, multivalued context keys, policy variables), rewritten with
``cart:`` actions and container paths.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cartridge
from cartridge.dispatch import ACTIONS
from cartridge.errors import CartridgeError, PolicyError
from cartridge.policy import (
    CART_ACTIONS,
    REQUIRED,
    S3_ACTIONS,
    Pattern,
    Request,
    checks,
    evaluate,
    parse_policy,
    reference_match,
    resolve_actions,
    wildcard_match,
)

V = "2012-10-17"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def doc(*statements: dict) -> dict:
    return {"Version": V, "Statement": list(statements)}


def allow(action="*", resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action="*", resource="*", **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(statements, action, resource, principal=None, context=None, identity=(),
           groups=()):
    policy = parse_policy(doc(*statements)) if statements else None
    ids = [parse_policy(doc(*s), kind="identity", name=f"identity {i}")
           for i, s in enumerate(identity)]
    req = Request(action, resource, principal, tuple(groups), context or {}, T0)
    return evaluate(req, ids, policy)


# ------------------------------------------------------- evaluation examples
# (statements, identity policies, action, resource, principal, context, allowed)
EXAMPLES = [
    pytest.param([], [], "cart:ReadFile", "/a", "alice", {}, False, id="default-deny"),
    pytest.param([allow("cart:ReadFile", "/a")], [], "cart:ReadFile", "/a", None, {}, True,
                 id="allow-without-principal-applies-to-anonymous"),
    pytest.param([allow("cart:*"), deny("cart:WriteFile", "/secret/*")], [],
                 "cart:WriteFile", "/secret/k", "alice", {}, False, id="explicit-deny-wins"),
    pytest.param([deny("cart:ReadFile", "/secret/*")], [[allow()]], "cart:ReadFile",
                 "/secret/k", "alice", {}, False, id="resource-deny-beats-identity-allow"),
    pytest.param([allow()], [[deny("cart:ReadFile", "/secret/*")]], "cart:ReadFile",
                 "/secret/k", "alice", {}, False, id="identity-deny-beats-resource-allow"),
    pytest.param([], [[allow("cart:ReadFile", "/a/*")]], "cart:ReadFile", "/a/b", "alice", {},
                 True, id="identity-allow-alone"),
    pytest.param([allow("cart:ReadFile", "/a/*")], [], "cart:ReadFile", "/a/b", "alice", {},
                 True, id="resource-allow-alone"),
    # NotAction: "allow everything except" (the AWS NotAction-with-Allow example).
    pytest.param([{"Effect": "Allow", "NotAction": "cart:PutPolicy", "Resource": "*"}], [],
                 "cart:WriteFile", "/x", "bob", {}, True, id="notaction-allow-other"),
    pytest.param([{"Effect": "Allow", "NotAction": "cart:PutPolicy", "Resource": "*"}], [],
                 "cart:PutPolicy", "/", "bob", {}, False, id="notaction-allow-excluded"),
    # NotAction with Deny: "deny everything but reading and listing".
    pytest.param([allow(), {"Effect": "Deny", "NotAction": ["cart:ReadFile",
                                                            "cart:ListDirectory"],
                            "Resource": "*"}],
                 [], "cart:DeleteFile", "/x", "bob", {}, False, id="notaction-deny"),
    pytest.param([allow(), {"Effect": "Deny", "NotAction": ["cart:ReadFile",
                                                            "cart:ListDirectory"],
                            "Resource": "*"}],
                 [], "cart:ListDirectory", "/x", "bob", {}, True, id="notaction-deny-spares"),
    # NotResource: the AWS "deny everything outside this bucket" example.
    pytest.param([allow(), {"Effect": "Deny", "Action": "cart:*",
                            "NotResource": ["/public", "/public/*"]}],
                 [], "cart:WriteFile", "/private/x", "bob", {}, False, id="notresource-deny"),
    pytest.param([allow(), {"Effect": "Deny", "Action": "cart:*",
                            "NotResource": ["/public", "/public/*"]}],
                 [], "cart:WriteFile", "/public/x", "bob", {}, True, id="notresource-spares"),
    # Principals of the container-wide policy.
    pytest.param([allow(Principal={"AWS": ["alice", "bob"]})], [], "cart:ReadFile", "/a",
                 "alice", {}, True, id="principal-named"),
    pytest.param([allow(Principal={"AWS": "alice"})], [], "cart:ReadFile", "/a", "carol", {},
                 False, id="principal-other"),
    pytest.param([allow(Principal={"AWS": "alice"})], [], "cart:ReadFile", "/a", None, {},
                 False, id="principal-anonymous-not-named"),
    pytest.param([allow(Principal="*")], [], "cart:ReadFile", "/a", None, {}, True,
                 id="principal-star-includes-anonymous"),
    pytest.param([allow(), deny(NotPrincipal={"AWS": "admin"})], [], "cart:ReadFile", "/a",
                 "alice", {}, False, id="notprincipal-deny-others"),
    pytest.param([allow(), deny(NotPrincipal={"AWS": "admin"})], [], "cart:ReadFile", "/a",
                 "admin", {}, True, id="notprincipal-spares-named"),
    # The seeds' examples: Allow read /public/**, Deny write and delete /**.
    pytest.param([allow("cart:ReadFile", "/public/**"),
                  deny(["cart:WriteFile", "cart:DeleteFile"], "/**")], [], "cart:WriteFile",
                 "/test.txt", None, {}, False, id="seed-write-denied"),
    pytest.param([allow("cart:ReadFile", "/public/**"),
                  deny(["cart:WriteFile", "cart:DeleteFile"], "/**")], [], "cart:ReadFile",
                 "/public/a/b/readme.txt", None, {}, True, id="seed-public-deep"),
    pytest.param([allow("cart:ReadFile", "/public/**")], [], "cart:ReadFile", "/public", None,
                 {}, False, id="seed-public-dir-itself"),
    pytest.param([allow("cart:ReadFile", "*.txt")], [], "cart:ReadFile", "/a/b/c.txt", None,
                 {}, True, id="seed-star-txt"),
    pytest.param([allow("cart:ReadFile", "*.txt")], [], "cart:ReadFile", "/a/b/c.txt.gz",
                 None, {}, False, id="seed-star-txt-suffix"),
    # Case: actions ignore it, resources do not.
    pytest.param([allow("CART:readfile", "/A")], [], "cart:ReadFile", "/A", None, {}, True,
                 id="action-case-insensitive"),
    pytest.param([deny("cart:ReadFile", "/Secret/*"), allow()], [], "cart:ReadFile",
                 "/secret/x", None, {}, True, id="resource-case-sensitive"),
    # s3: names.
    pytest.param([allow("s3:GetObject", "/a/*")], [], "cart:ReadFile", "/a/b", None, {}, True,
                 id="s3-getobject"),
    pytest.param([allow("s3:*")], [], "cart:Compact", "/", None, {}, False,
                 id="s3-star-covers-only-s3-names"),
    # ARN forms of resources.
    pytest.param([allow("cart:ReadFile", "arn:cart:::/a/*")], [], "cart:ReadFile", "/a/b",
                 None, {}, True, id="arn-resource"),
    pytest.param([allow("cart:ReadFile", "/a/*")], [], "cart:ReadFile", "arn:cart:::/a/b",
                 None, {}, True, id="arn-request"),
    pytest.param([allow("cart:RestoreSnapshot", "snapshot:nightly-*")], [],
                 "cart:RestoreSnapshot", "snapshot:nightly-1", None, {}, True, id="snapshot"),
    # Policy variables.
    pytest.param([allow("cart:*", "/home/${cart:username}/*")], [], "cart:WriteFile",
                 "/home/alice/x", "alice", {}, True, id="var-username"),
    pytest.param([allow("cart:*", "/home/${cart:username}/*")], [], "cart:WriteFile",
                 "/home/bob/x", "alice", {}, False, id="var-username-other"),
    pytest.param([allow("cart:*", "/home/${cart:username}/*")], [], "cart:WriteFile",
                 "/home//x", None, {}, False, id="var-unresolved-matches-nothing"),
    pytest.param([allow("cart:*", "/home/${cart:username, 'guest'}/*")], [], "cart:WriteFile",
                 "/home/guest/x", None, {}, True, id="var-default"),
    pytest.param([allow("cart:*", "/home/${cart:username}/*")], [], "cart:WriteFile",
                 "/home/a/x", "a*", {}, False, id="var-value-is-literal-no-match"),
    pytest.param([allow("cart:*", "/home/${cart:username}/*")], [], "cart:WriteFile",
                 "/home/a*/x", "a*", {}, True, id="var-value-is-literal-match"),
    pytest.param([allow("cart:*", "/odd/${*}")], [], "cart:ReadFile", "/odd/*", None, {},
                 True, id="var-literal-star"),
    pytest.param([allow("cart:*", "/odd/${*}")], [], "cart:ReadFile", "/odd/x", None, {},
                 False, id="var-literal-star-is-not-wildcard"),
    pytest.param([allow("cart:*", "/odd/${?}${$}")], [], "cart:ReadFile", "/odd/?$", None, {},
                 True, id="var-literal-question-dollar"),
    pytest.param([allow("cart:*", "/by-group/*",
                        Condition={"ForAnyValue:StringEquals": {"cart:groups": "staff"}})],
                 [], "cart:ReadFile", "/by-group/x", "alice", {}, False,
                 id="foranyvalue-no-groups"),
]


@pytest.mark.parametrize("statements,identity,action,resource,principal,context,allowed",
                         EXAMPLES)
def test_examples(statements, identity, action, resource, principal, context, allowed):
    d = decide(statements, action, resource, principal, context, identity)
    assert d.allowed is allowed, d
    if not allowed and not d.statements:
        assert d.reason == "no statement allowed"


def test_groups_context_and_2008_version():
    st_ = allow("cart:ReadFile", "/g/*",
                Condition={"ForAnyValue:StringEquals": {"cart:groups": ["staff", "ops"]}})
    assert decide([st_], "cart:ReadFile", "/g/x", "alice", groups=["ops"]).allowed
    assert not decide([st_], "cart:ReadFile", "/g/x", "alice", groups=["guests"]).allowed
    old = parse_policy({"Version": "2008-10-17", "Statement": allow("cart:*", "/h/${x}")})
    assert evaluate(Request("cart:ReadFile", "/h/${x}", context={"x": "y"}), (), old).allowed
    assert not evaluate(Request("cart:ReadFile", "/h/y", context={"x": "y"}), (), old).allowed


def test_decision_names_statement():
    d = decide([allow(Sid="All"), deny("cart:DeleteFile", "/keep/*", Sid="Keep")],
               "cart:DeleteFile", "/keep/a", "alice")
    assert not d.allowed and d.reason == "denied by container policy statement 'Keep'"
    assert [(m.sid, m.effect) for m in d.statements] == [("Keep", "Deny")]
    d = decide([allow(Sid="All")], "cart:DeleteFile", "/keep/a", "alice")
    assert d.allowed and d.reason == "allowed by container policy statement 'All'"
    d = decide([], "cart:ReadFile", "/a", "alice", identity=[[deny()]])
    assert d.reason == "denied by identity 0 statement #0"


# ---------------------------------------------------------------- conditions
def cond(condition: dict, context: dict | None, principal: str | None = "alice",
         groups=()) -> bool:
    """Whether an Allow statement with ``condition`` applies."""
    return decide([allow("cart:ReadFile", "/c", Condition=condition)], "cart:ReadFile", "/c",
                  principal, context, groups=groups).allowed


# (condition, context, expected)
CONDITIONS = [
    # String family; several values OR; missing key false for positive, true for negated.
    ({"StringEquals": {"team": ["a", "b"]}}, {"team": "b"}, True),
    ({"StringEquals": {"team": ["a", "b"]}}, {"team": "B"}, False),
    ({"StringEquals": {"team": "a"}}, {}, False),
    ({"StringNotEquals": {"team": ["a", "b"]}}, {"team": "c"}, True),
    ({"StringNotEquals": {"team": ["a", "b"]}}, {"team": "a"}, False),  # NOR
    ({"StringNotEquals": {"team": "a"}}, {}, True),
    ({"StringEqualsIgnoreCase": {"team": "Ops"}}, {"team": "oPS"}, True),
    ({"StringNotEqualsIgnoreCase": {"team": "Ops"}}, {"team": "oPS"}, False),
    ({"StringLike": {"tag": "proj-*"}}, {"tag": "proj-x"}, True),
    ({"StringLike": {"tag": "proj-?"}}, {"tag": "proj-xy"}, False),
    ({"StringNotLike": {"tag": ["proj-*", "tmp-*"]}}, {"tag": "tmp-1"}, False),
    ({"StringNotLike": {"tag": "proj-*"}}, {}, True),
    ({"StringEquals": {"owner": "${cart:username}"}}, {"owner": "alice"}, True),
    ({"StringEquals": {"owner": "${cart:username}"}}, {"owner": "bob"}, False),
    ({"StringEquals": {"Team": "a"}}, {"tEAM": "a"}, True),  # key names ignore case
    # Several keys and operators AND.
    ({"StringEquals": {"a": "1", "b": "2"}}, {"a": "1", "b": "2"}, True),
    ({"StringEquals": {"a": "1", "b": "2"}}, {"a": "1", "b": "3"}, False),
    ({"StringEquals": {"a": "1"}, "NumericLessThan": {"n": 5}}, {"a": "1", "n": 7}, False),
    # Numeric (the AWS s3:max-keys example: NumericLessThanEquals 10).
    ({"NumericLessThanEquals": {"cart:ObjectSize": "10"}}, {"cart:ObjectSize": 10}, True),
    ({"NumericLessThanEquals": {"cart:ObjectSize": 10}}, {"cart:ObjectSize": 11}, False),
    ({"NumericLessThan": {"n": 1.5}}, {"n": "1.25"}, True),
    ({"NumericGreaterThan": {"n": 3}}, {"n": 4}, True),
    ({"NumericGreaterThanEquals": {"n": 3}}, {"n": 2}, False),
    ({"NumericEquals": {"n": [1, 2]}}, {"n": 2}, True),
    ({"NumericNotEquals": {"n": [1, 2]}}, {"n": 2}, False),
    ({"NumericNotEquals": {"n": 1}}, {}, True),
    # Dates: the AWS "allow within a date range" example, ISO 8601 and epoch.
    ({"DateGreaterThan": {"cart:CurrentTime": "2024-04-01T00:00:00Z"},
      "DateLessThan": {"cart:CurrentTime": "2024-06-30T23:59:59Z"}}, {}, True),
    ({"DateGreaterThan": {"cart:CurrentTime": "2024-06-01T00:00:00Z"}}, {}, False),
    ({"DateLessThanEquals": {"cart:EpochTime": int(T0.timestamp())}}, {}, True),
    ({"DateEquals": {"when": "2024-05-01"}}, {"when": 1714521600}, True),
    ({"DateNotEquals": {"when": "2024-05-01"}}, {"when": "2024-05-02T00:00:00+00:00"}, True),
    ({"DateGreaterThanEquals": {"when": "2024-05-01T12:00:00+02:00"}},
     {"when": datetime(2024, 5, 1, 10, 0, tzinfo=UTC)}, True),
    # Bool: the AWS "deny unless TLS" example reads SecureTransport false.
    ({"Bool": {"cart:SecureTransport": "false"}}, {"cart:SecureTransport": False}, True),
    ({"Bool": {"cart:SecureTransport": "true"}}, {"cart:SecureTransport": "TRUE"}, True),
    ({"Bool": {"cart:SecureTransport": True}}, {}, False),
    # Binary.
    ({"BinaryEquals": {"blob": "aGk="}}, {"blob": b"hi"}, True),
    ({"BinaryEquals": {"blob": "aGk="}}, {"blob": "aGk="}, True),
    ({"BinaryEquals": {"blob": "aGk="}}, {"blob": b"ho"}, False),
    # IP addresses, v4 and v6 (the AWS "deny outside these ranges" example uses NotIpAddress).
    ({"IpAddress": {"cart:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]}},
     {"cart:SourceIp": "2001:db8::1"}, True),
    ({"IpAddress": {"cart:SourceIp": "192.0.2.0/24"}}, {"cart:SourceIp": "192.0.3.1"}, False),
    ({"IpAddress": {"cart:SourceIp": "192.0.2.7"}}, {"cart:SourceIp": "192.0.2.7"}, True),
    ({"NotIpAddress": {"cart:SourceIp": ["192.0.2.0/24", "203.0.113.0/24"]}},
     {"cart:SourceIp": "198.51.100.1"}, True),
    ({"NotIpAddress": {"cart:SourceIp": "192.0.2.0/24"}}, {"cart:SourceIp": "192.0.2.1"},
     False),
    ({"NotIpAddress": {"cart:SourceIp": "192.0.2.0/24"}}, {}, True),
    ({"IpAddress": {"cart:SourceIp": "::/0"}}, {"cart:SourceIp": "10.0.0.1"}, False),
    # ARNs: each of the six parts matched separately.
    ({"ArnLike": {"src": "arn:cart:iam:::user/*"}}, {"src": "arn:cart:iam:::user/al"}, True),
    ({"ArnLike": {"src": "arn:cart:*:::user/x"}}, {"src": "arn:cart:a:b::user/x"}, False),
    ({"ArnEquals": {"src": "arn:cart:s3:::b"}}, {"src": "arn:cart:s3:::b"}, True),
    ({"ArnNotEquals": {"src": "arn:cart:s3:::b"}}, {"src": "arn:cart:s3:::c"}, True),
    ({"ArnNotLike": {"src": "arn:cart:s3:::*"}}, {"src": "arn:cart:s3:::c"}, False),
    ({"ArnLike": {"src": "arn:cart:s3:::*"}}, {"src": "not-an-arn"}, False),
    # Null: true when the key is absent, false when present.
    ({"Null": {"cart:SourceIp": "true"}}, {}, True),
    ({"Null": {"cart:SourceIp": "true"}}, {"cart:SourceIp": "10.0.0.1"}, False),
    ({"Null": {"cart:SourceIp": "false"}}, {"cart:SourceIp": "10.0.0.1"}, True),
    ({"Null": {"cart:username": "true"}}, {}, False),  # alice has a user name
    ({"Null": {"tags": "true"}}, {"tags": []}, True),  # an empty set is absent
    # IfExists: the AWS StringLikeIfExists instance-type example.
    ({"StringLikeIfExists": {"cart:Compression": ["lz4", "zstd*"]}}, {}, True),
    ({"StringLikeIfExists": {"cart:Compression": ["lz4", "zstd*"]}},
     {"cart:Compression": "zstd"}, True),
    ({"StringLikeIfExists": {"cart:Compression": ["lz4", "zstd*"]}},
     {"cart:Compression": "none"}, False),
    ({"NumericLessThanIfExists": {"cart:ObjectSize": 5}}, {}, True),
    ({"NotIpAddressIfExists": {"cart:SourceIp": "10.0.0.0/8"}}, {}, True),
    # Set qualifiers: ForAllValues is true for a missing or empty set (AWS warns of it),
    # ForAnyValue false; the AWS ForAllValues:StringNotLike "key1*" table.
    ({"ForAllValues:StringEquals": {"tags": ["a", "b"]}}, {"tags": ["a"]}, True),
    ({"ForAllValues:StringEquals": {"tags": ["a", "b"]}}, {"tags": ["a", "c"]}, False),
    ({"ForAllValues:StringEquals": {"tags": ["a", "b"]}}, {}, True),
    ({"ForAllValues:StringEquals": {"tags": ["a", "b"]}}, {"tags": []}, True),
    ({"ForAnyValue:StringEquals": {"tags": ["a", "b"]}}, {"tags": ["c", "b"]}, True),
    ({"ForAnyValue:StringEquals": {"tags": ["a", "b"]}}, {"tags": ["c"]}, False),
    ({"ForAnyValue:StringEquals": {"tags": ["a", "b"]}}, {}, False),
    ({"ForAllValues:StringNotLike": {"tags": "key1*"}}, {"tags": ["key1:legal"]}, False),
    ({"ForAllValues:StringNotLike": {"tags": "key1*"}}, {"tags": ["key1:hr", "key1:p"]}, False),
    ({"ForAllValues:StringNotLike": {"tags": "key1*"}}, {"tags": ["key2:audit"]}, True),
    ({"ForAllValues:StringNotLike": {"tags": "key1*"}}, {}, True),
    ({"ForAnyValue:StringNotEquals": {"tags": "a"}}, {"tags": ["a", "b"]}, True),
    ({"ForAnyValue:StringNotEquals": {"tags": "a"}}, {"tags": ["a"]}, False),
    ({"ForAnyValue:StringEqualsIfExists": {"tags": "a"}}, {}, True),
    ({"ForAllValues:NumericLessThan": {"sizes": 10}}, {"sizes": [1, 9]}, True),
    # A set without a qualifier: some member for positive, none for negated.
    ({"StringEquals": {"tags": "a"}}, {"tags": ["b", "a"]}, True),
    ({"StringNotEquals": {"tags": "a"}}, {"tags": ["b", "a"]}, False),
]


@pytest.mark.parametrize("condition,context,expected", CONDITIONS)
def test_conditions(condition, context, expected):
    assert cond(condition, context) is expected


def test_every_operator_family_is_exercised():
    from cartridge.policy import OPERATORS
    used = set()
    for condition, _, _ in CONDITIONS:
        for op in condition:
            base = op.split(":")[-1].removesuffix("IfExists")
            used.add(base)
    assert OPERATORS <= used, sorted(OPERATORS - used)


def test_uncomparable_request_value_fails_closed():
    """A request value of the wrong type lets a Deny apply and keeps an Allow off."""
    bad = {"cart:ObjectSize": "huge"}
    assert not cond({"NumericLessThan": {"cart:ObjectSize": 10}}, bad)
    assert not cond({"NumericNotEquals": {"cart:ObjectSize": 10}}, bad)
    d = decide([allow(), deny(Condition={"NumericNotEquals": {"cart:ObjectSize": 10}})],
               "cart:WriteFile", "/a", "bob", bad)
    assert not d.allowed


def test_engine_keys_cannot_be_spoofed():
    with pytest.raises(PolicyError, match="set by the policy engine"):
        decide([allow()], "cart:ReadFile", "/a", "bob", {"CART:UserName": "admin"})
    with pytest.raises(PolicyError, match="twice"):
        decide([allow()], "cart:ReadFile", "/a", "bob", {"k": 1, "K": 2})


def test_request_errors():
    p = parse_policy(doc(allow()))
    with pytest.raises(PolicyError, match="unknown action"):
        evaluate(Request("cart:Frob", "/a"), (), p)
    with pytest.raises(PolicyError, match="neither"):
        evaluate(Request("cart:ReadFile", "relative/path"), (), p)
    with pytest.raises(PolicyError, match="identity"):
        evaluate(Request("cart:ReadFile", "/a"), [p], None)
    with pytest.raises(PolicyError, match="resource policy"):
        evaluate(Request("cart:ReadFile", "/a"), (), parse_policy(doc(allow()), kind="identity"))


# ---------------------------------------------------------------- validation
def _st(**over):
    base = {"Sid": "S", "Effect": "Allow", "Action": "cart:ReadFile", "Resource": "/a"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


# (document, statement index or None, field)
INVALID = [
    ([], None, None),
    ({"Statement": [_st()]}, None, "Version"),
    ({"Version": "2012-10-18", "Statement": [_st()]}, None, "Version"),
    ({"Version": V}, None, "Statement"),
    ({"Version": V, "Statement": []}, None, "Statement"),
    ({"Version": V, "Statement": [_st()], "Statements": []}, None, "Statements"),
    ({"Version": V, "Id": 3, "Statement": [_st()]}, None, "Id"),
    (doc(_st(), "text"), 1, None),
    (doc(_st(), _st(Sid="T", Resources="/a")), 1, "Resources"),
    (doc(_st(Effect="allow")), 0, "Effect"),
    (doc(_st(Effect=None)), 0, "Effect"),
    (doc(_st(Sid="")), 0, "Sid"),
    (doc(_st(), _st()), 1, "Sid"),
    (doc(_st(Action=None)), 0, "Action"),
    (doc(_st(NotAction="cart:ReadFile")), 0, "NotAction"),
    (doc(_st(Action=[])), 0, "Action"),
    (doc(_st(Action=["cart:ReadFile", 3])), 0, "Action"),
    (doc(_st(Action="cart:Raed")), 0, "Action"),
    (doc(_st(Action="cart:Frob*")), 0, "Action"),
    (doc(_st(Action="s3:GetBucketAcl")), 0, "Action"),
    (doc(_st(Action="iam:*")), 0, "Action"),
    (doc(_st(Action="ReadFile")), 0, "Action"),
    (doc(_st(Resource=None)), 0, "Resource"),
    (doc(_st(NotResource="/b")), 0, "NotResource"),
    (doc(_st(Resource=[])), 0, "Resource"),
    (doc(_st(Resource="public/*")), 0, "Resource"),
    (doc(_st(Resource="arn:aws:s3:::bucket/*")), 0, "Resource"),
    (doc(_st(Resource="/home/${cart:username")), 0, "Resource"),
    (doc(_st(Resource="/home/${cart:user name}")), 0, "Resource"),
    (doc(_st(Principal="alice")), 0, "Principal"),
    (doc(_st(Principal={"Service": "x"})), 0, "Principal"),
    (doc(_st(Principal={"AWS": []})), 0, "Principal"),
    (doc(_st(Principal={"AWS": "al*"})), 0, "Principal"),
    (doc(_st(Principal={"AWS": "arn:aws:iam::1:user/x"})), 0, "Principal"),
    (doc(_st(Principal="*", NotPrincipal="*")), 0, "NotPrincipal"),
    (doc(_st(Condition=[])), 0, "Condition"),
    (doc(_st(Condition={})), 0, "Condition"),
    (doc(_st(Condition={"StringEqual": {"a": "b"}})), 0, "Condition"),
    (doc(_st(Condition={"stringequals": {"a": "b"}})), 0, "Condition"),
    (doc(_st(Condition={"ForEachValue:StringEquals": {"a": "b"}})), 0, "Condition"),
    (doc(_st(Condition={"NullIfExists": {"a": "true"}})), 0, "Condition"),
    (doc(_st(Condition={"StringEquals": {}})), 0, "Condition"),
    (doc(_st(Condition={"StringEquals": {"a": []}})), 0, "Condition"),
    (doc(_st(Condition={"StringEquals": {"a": 3}})), 0, "Condition"),
    (doc(_st(Condition={"NumericLessThan": {"a": "ten"}})), 0, "Condition"),
    (doc(_st(Condition={"NumericLessThan": {"a": float("nan")}})), 0, "Condition"),
    (doc(_st(Condition={"DateLessThan": {"a": "yesterday"}})), 0, "Condition"),
    (doc(_st(Condition={"Bool": {"a": "yes"}})), 0, "Condition"),
    (doc(_st(Condition={"Null": {"a": "maybe"}})), 0, "Condition"),
    (doc(_st(Condition={"BinaryEquals": {"a": "not base64!"}})), 0, "Condition"),
    (doc(_st(Condition={"IpAddress": {"a": "10.0.0.0/33"}})), 0, "Condition"),
    (doc(_st(Condition={"ArnLike": {"a": "user/x"}})), 0, "Condition"),
]


@pytest.mark.parametrize("document,index,field", INVALID)
def test_invalid_documents(document, index, field):
    forms = [document]
    try:
        forms.append(json.dumps(document, allow_nan=False))
    except ValueError:
        pass  # NaN: no JSON text can carry it
    for form in forms:
        with pytest.raises(PolicyError) as info:
            parse_policy(form)
        err = info.value
        assert isinstance(err, ValueError) and isinstance(err, CartridgeError)
        assert err.statement == index
        assert err.field == field
        if index is not None:
            assert f"Statement[{index}]" in str(err)
        if field is not None:
            assert field in str(err)


def test_identity_policy_refuses_principal():
    with pytest.raises(PolicyError) as info:
        parse_policy(doc(_st(Principal="*")), kind="identity")
    assert info.value.field == "Principal" and info.value.statement == 0


def test_json_text_strictness():
    with pytest.raises(PolicyError, match="not valid JSON"):
        parse_policy('{"Version": ')
    with pytest.raises(PolicyError, match="NaN"):
        parse_policy('{"Version": "2012-10-17", "Statement": {"Effect": "Allow", '
                     '"Action": "*", "Resource": "*", '
                     '"Condition": {"NumericEquals": {"a": NaN}}}}')
    text = ('{"Version": "2012-10-17", "Statement": [{"Sid": "A", "Effect": "Allow", '
            '"Effect": "Deny", "Action": "*", "Resource": "*"}]}')
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    assert (info.value.statement, info.value.sid, info.value.field) == (0, "A", "Effect")
    with pytest.raises(PolicyError) as info:
        parse_policy('{"Version": "2012-10-17", "Version": "2012-10-17", "Statement": []}')
    assert info.value.field == "Version"
    nested = ('{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", '
              '"Resource": "*", "Condition": {"StringEquals": {"a": "1", "a": "2"}}}}')
    with pytest.raises(PolicyError) as info:
        parse_policy(nested)
    assert (info.value.statement, info.value.field) == (0, "a")


def test_valid_forms_parse():
    p = parse_policy(json.dumps({"Version": V, "Id": "x", "Statement": _st(
        Principal={"AWS": ["alice", "arn:cart:iam:::user/bob"]},
        Condition={"ForAnyValue:StringLikeIfExists": {"k": ["a*", "b"]}})}))
    s = p.statements[0]
    assert s.principal is not None and s.principal.names == {"alice", "bob"}
    assert s.actions == {"cart:ReadFile"} and p.id == "x"
    assert s.conditions[0].qualifier == "ForAnyValue" and s.conditions[0].if_exists
    star = parse_policy(doc(_st(Action="*", Resource="*"))).statements[0]
    assert star.actions == set(CART_ACTIONS)
    inverse = parse_policy(doc(_st(Action=None, NotAction="cart:*"))).statements[0]
    assert inverse.actions == set()


def test_errors_exported():
    assert issubclass(cartridge.PolicyError, ValueError)
    assert issubclass(cartridge.AccessDeniedError, PermissionError)
    err = cartridge.AccessDeniedError("alice may not cart:WriteFile /a: no statement allowed")
    assert "no statement allowed" in str(err) and isinstance(err, CartridgeError)


# ----------------------------------------------------------- action vocabulary
ISSUE_ACTIONS = {"ReadFile", "WriteFile", "DeleteFile", "ListDirectory", "GetMetadata",
                 "SetMetadata", "CreateDirectory", "DeleteDirectory", "Rename",
                 "CreateSnapshot", "RestoreSnapshot", "DeleteSnapshot", "Compact", "Rekey",
                 "PutPolicy", "GetPolicy", "ReadAudit"}
# Transaction control needs no permission (actions.py explains why); nothing else may.
UNCHECKED = {"container.commit", "container.rollback", "container.refresh", "container.reader",
             "sqlite.sync"}


def test_every_dispatch_action_is_mapped():
    assert set(REQUIRED) == set(ACTIONS)
    for action, need in REQUIRED.items():
        assert set(need.actions) <= set(CART_ACTIONS), action
        assert need.resources in ("paths", "database", "snapshots", "container"), action
        assert bool(need.actions) == (action not in UNCHECKED), action


def test_vocabulary():
    assert {f"cart:{a}" for a in ISSUE_ACTIONS} <= set(CART_ACTIONS)
    assert set(S3_ACTIONS.values()) <= set(CART_ACTIONS)
    assert S3_ACTIONS["s3:GetObject"] == "cart:ReadFile"
    assert S3_ACTIONS["s3:PutObject"] == "cart:WriteFile"
    assert S3_ACTIONS["s3:DeleteObject"] == "cart:DeleteFile"
    assert S3_ACTIONS["s3:ListBucket"] == "cart:ListDirectory"
    assert resolve_actions("s3:Get*") == {"cart:ReadFile", "cart:GetMetadata",
                                          "cart:GetPolicy", "cart:GetContainerInfo"}
    assert resolve_actions("cart:*Snapshot") == {"cart:CreateSnapshot", "cart:DeleteSnapshot",
                                                 "cart:RestoreSnapshot"}


def test_checks():
    for action in ("file.read", "array.read", "array.view", "sqlite.read"):
        assert checks(action, ("/d/x",)) == (("cart:ReadFile", "/d/x"),)
    assert checks("path.rename", ("/a", "/b")) == (("cart:Rename", "/a"), ("cart:Rename", "/b"))
    assert checks("sqlite.write", ("/db.sqlite-wal",)) == (("cart:WriteFile", "/db.sqlite"),)
    assert checks("sqlite.delete", ("/db-journal",)) == (("cart:DeleteFile", "/db"),)
    assert checks("snapshot.restore", ("n1",)) == (("cart:RestoreSnapshot", "snapshot:n1"),)
    assert checks("snapshot.diff", ()) == (("cart:DiffSnapshots", "/"),)
    assert checks("container.copy", ("/tmp/out.cart",)) == (("cart:CopyContainer", "/"),)
    assert checks("container.info") == (("cart:GetContainerInfo", "/"),)
    assert checks("container.commit") == ()
    with pytest.raises(KeyError):
        checks("file.frobnicate", ("/a",))


# ----------------------------------------------------------------- wildcards
def test_wildcards():
    assert wildcard_match("/public/**", "/public/a/b/c")
    assert wildcard_match("/public/**", "/public/")
    assert not wildcard_match("/public/**", "/publicx")
    assert wildcard_match("*.txt", "/deep/er/name.txt")
    assert wildcard_match("/a?c", "/abc") and not wildcard_match("/a?c", "/ac")
    assert wildcard_match("/a.b", "/a.b") and not wildcard_match("/a.b", "/axb")  # no regex
    assert wildcard_match("/[x]", "/[x]") and wildcard_match("/a\nb*", "/a\nbc")
    assert wildcard_match("CART:Read*", "cart:readfile", ignore_case=True)
    assert not wildcard_match("/A*", "/a")
    assert not wildcard_match("ab*ba", "aba")  # prefix and suffix may not overlap
    assert wildcard_match("a*?b*c", "axbc") and not wildcard_match("a*?b*c", "abc")


_ALPHABET = "ab/.*?"


@settings(max_examples=400, deadline=None)
@given(st.text(_ALPHABET, max_size=8), st.text("ab/.*?Ab", max_size=10))
def test_wildcard_equals_reference(pattern, value):
    assert wildcard_match(pattern, value) == reference_match(pattern, value)
    assert (wildcard_match(pattern, value, ignore_case=True)
            == reference_match(pattern, value, ignore_case=True))


@settings(max_examples=400, deadline=None)
@given(st.text("ab*?", max_size=7), st.text("ab", max_size=7))
def test_wildcard_equals_reference_small_alphabet(pattern, value):
    """Two letters make overlaps and near misses common."""
    assert wildcard_match(pattern, value) == reference_match(pattern, value)


def test_wildcard_is_not_stalled_by_deep_paths():
    deep = "/a" * 2000 + "/x.bin"
    assert not wildcard_match("/*/*/*/*/*/*/*.txt", deep)
    assert wildcard_match("/*/*/*/*/*/*/*.bin", deep)


@settings(max_examples=200, deadline=None)
@given(st.text("ab*?", max_size=6), st.text("ab*?", max_size=4), st.text("ab", max_size=6))
def test_variables_substitute_literally(prefix, name, rest):
    """A variable's value matches as literal text, whatever characters it has."""
    pattern = Pattern.parse(prefix + "${who}")
    for candidate in (rest + name, name):
        expect = any(reference_match(prefix, candidate[:i]) and candidate[i:] == name
                     for i in range(len(candidate) + 1))
        assert pattern.match(candidate, {"who": name}) == expect


# ------------------------------------------------------------------ properties
_ACTIONS = ["cart:ReadFile", "cart:WriteFile", "cart:DeleteFile", "cart:Rename"]
_ACTION_PATTERNS = ["*", "cart:*", "cart:ReadFile", "cart:WriteFile", "cart:*File",
                    "s3:GetObject", "s3:PutObject", "cart:Rename"]
_RESOURCES = ["/a", "/a/b", "/a/b.txt", "/c/d", "/", "/home/alice/x"]
_RESOURCE_PATTERNS = ["*", "/a", "/a/*", "/a/?", "*.txt", "/c/**", "/home/${cart:username}/*",
                      "/"]
_CONDITIONS = [
    None,
    {"StringEquals": {"team": "x"}},
    {"StringNotEquals": {"team": "x"}},
    {"NumericLessThan": {"size": 10}},
    {"ForAllValues:StringEquals": {"cart:groups": ["g1"]}},
    {"ForAnyValue:StringEquals": {"cart:groups": ["g2"]}},
    {"Null": {"team": "true"}},
    {"BoolIfExists": {"tls": "true"}},
]


@st.composite
def statements(draw, effect=None):
    out = {
        "Effect": effect or draw(st.sampled_from(["Allow", "Deny"])),
        "NotAction" if draw(st.booleans()) and draw(st.booleans()) else "Action":
            draw(st.lists(st.sampled_from(_ACTION_PATTERNS), min_size=1, max_size=2)),
        "NotResource" if draw(st.booleans()) and draw(st.booleans()) else "Resource":
            draw(st.lists(st.sampled_from(_RESOURCE_PATTERNS), min_size=1, max_size=2)),
    }
    condition = draw(st.sampled_from(_CONDITIONS))
    if condition is not None:
        out["Condition"] = condition
    principal = draw(st.sampled_from([None, "*", {"AWS": "alice"}, {"AWS": ["bob"]}]))
    if principal is not None:
        out["NotPrincipal" if draw(st.booleans()) and principal != "*" else "Principal"] = \
            principal
    return out


requests = st.builds(
    lambda a, r, p, g, ctx: Request(a, r, p, g, ctx, T0),
    st.sampled_from(_ACTIONS), st.sampled_from(_RESOURCES),
    st.sampled_from([None, "alice", "bob"]),
    st.sampled_from([(), ("g1",), ("g1", "g2")]),
    st.fixed_dictionaries({}, optional={"team": st.sampled_from(["x", "y"]),
                                        "size": st.sampled_from([1, 50]),
                                        "tls": st.sampled_from([True, False])}))


def _policy(stmts):
    return parse_policy(doc(*stmts)) if stmts else None


def _identity(stmts):
    return [parse_policy(doc(*[{k: v for k, v in s.items()
                                if k not in ("Principal", "NotPrincipal")} for s in stmts]),
                         kind="identity")] if stmts else []


@settings(max_examples=150, deadline=None)
@given(st.lists(statements(), max_size=5), st.lists(statements(), max_size=3),
       statements(effect="Deny"), st.booleans(), requests)
def test_adding_a_deny_never_grants(resource_stmts, identity_stmts, extra, to_identity, req):
    before = evaluate(req, _identity(identity_stmts), _policy(resource_stmts))
    if to_identity:
        after = evaluate(req, _identity([*identity_stmts, extra]), _policy(resource_stmts))
    else:
        after = evaluate(req, _identity(identity_stmts), _policy([*resource_stmts, extra]))
    assert after.allowed <= before.allowed


@settings(max_examples=150, deadline=None)
@given(st.lists(statements(), max_size=5), st.lists(statements(), max_size=3),
       statements(effect="Allow"), st.booleans(), requests)
def test_adding_an_allow_never_removes_access(resource_stmts, identity_stmts, extra,
                                              to_identity, req):
    before = evaluate(req, _identity(identity_stmts), _policy(resource_stmts))
    if to_identity:
        after = evaluate(req, _identity([*identity_stmts, extra]), _policy(resource_stmts))
    else:
        after = evaluate(req, _identity(identity_stmts), _policy([*resource_stmts, extra]))
    assert after.allowed >= before.allowed


@settings(max_examples=150, deadline=None)
@given(st.lists(statements(), min_size=1, max_size=6), requests, st.randoms())
def test_statement_order_does_not_matter(stmts, req, rnd: random.Random):
    named = [{**s, "Sid": f"S{i}"} for i, s in enumerate(stmts)]
    shuffled = named[:]
    rnd.shuffle(shuffled)
    a = evaluate(req, (), _policy(named))
    b = evaluate(req, (), _policy(shuffled))
    assert a.allowed == b.allowed
    assert {m.sid for m in a.statements} == {m.sid for m in b.statements}
    assert a.allowed == (not any(m.effect == "Deny" for m in a.statements)
                         and any(m.effect == "Allow" for m in a.statements))


def test_package_docstring_example():
    import doctest

    import cartridge.policy

    result = doctest.testmod(cartridge.policy)
    assert result.attempted and not result.failed
