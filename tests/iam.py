"""Whether an identity policy allows a request: IAM's evaluation, as far as the app's policies go.

A request (action, resource ARN, the condition keys it carries) is allowed when an Allow statement
matches it and no Deny does. A statement matches when one of its actions and one of its resources
match (IAM's wildcards: `*` any run of characters, `?` one; actions ignore case, resources do not)
and every condition holds. Conditions: the String operators (StringEquals, StringNotEquals,
StringLike, StringNotLike, and their ...IgnoreCase forms for equality) and Null, with IfExists
(a key the request lacks satisfies it) and without (a key the request lacks fails it, but for the
negated operators), each key's values OR-ed, keys and operators AND-ed. NotAction, NotResource
and Principal are not used by the app's policies and are refused rather than misread.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


def allowed(policy: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str] | None = None) -> bool:
    context = context or {}
    statements = policy["Statement"] if isinstance(policy["Statement"], list) else [policy["Statement"]]
    verdicts = [s["Effect"] for s in statements if _matches(s, action, resource, context)]
    return "Allow" in verdicts and "Deny" not in verdicts


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, text: str, case: bool = True) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, 0 if case else re.IGNORECASE) is not None


def _matches(statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str]) -> bool:
    for unsupported in ("NotAction", "NotResource", "Principal", "NotPrincipal"):
        if unsupported in statement:
            raise ValueError(f"{unsupported} is not evaluated here")
    if not any(_wildcard(pattern, action, case=False) for pattern in _listed(statement["Action"])):
        return False
    if not any(_wildcard(pattern, resource) for pattern in _listed(statement["Resource"])):
        return False
    return all(
        _holds(operator, key, _listed(values), context)
        for operator, keys in statement.get("Condition", {}).items()
        for key, values in keys.items()
    )


_STRING = {
    "StringEquals": lambda value, pattern: value == pattern,
    "StringNotEquals": lambda value, pattern: value != pattern,
    "StringEqualsIgnoreCase": lambda value, pattern: value.lower() == pattern.lower(),
    "StringNotEqualsIgnoreCase": lambda value, pattern: value.lower() != pattern.lower(),
    "StringLike": lambda value, pattern: _wildcard(pattern, value),
    "StringNotLike": lambda value, pattern: not _wildcard(pattern, value),
}


def _holds(operator: str, key: str, values: list[Any], context: Mapping[str, str]) -> bool:
    if_exists = operator.endswith("IfExists")
    name = operator.removesuffix("IfExists")
    present = key in context
    if name == "Null":  # "true": the key must be absent; "false": present
        return any((str(value).lower() == "true") != present for value in values)
    if name not in _STRING:
        raise ValueError(f"condition operator {operator} is not evaluated here")
    if not present:
        # IAM: a missing key satisfies ...IfExists, and the negated operators; it fails the others.
        return if_exists or name.startswith("StringNot")
    test = _STRING[name]
    if name.startswith("StringNot"):
        return all(test(context[key], str(value)) for value in values)
    return any(test(context[key], str(value)) for value in values)
