"""X701: a value that looks like a credential is refused; secrets live in a secret store, not in git."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from mlops.diagnostics import Diagnostic
from mlops.loader import escape
from mlops.rules.context import Context

PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"),
    "API key": re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"),
    "Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "credential in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"),
}
_ANY = re.compile("|".join(f"(?:{p.pattern})" for p in PATTERNS.values()))  # one search rules most values out
SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_?key|access_?key|credential)s?$", re.IGNORECASE)


def check(ctx: Context) -> Iterator[Diagnostic]:
    docs = [ctx.sources.project] if ctx.sources.project else []
    docs += [d for group in ctx.sources.documents.values() for d in group]
    for doc in docs:
        found: list[tuple[tuple[str | int, ...], str, str]] = []
        _scan(doc.data, [], found)
        for path, code_message, hint in found:
            yield doc.diagnostic("".join(f"/{escape(str(p))}" for p in path), "X701", code_message, hint=hint)


# the same keys and most values recur in every spec: each distinct one is searched once
@lru_cache(maxsize=4096)
def _secret_name(key: str) -> bool:
    return SECRET_KEY.search(key) is not None


@lru_cache(maxsize=4096)
def _suspect(value: str) -> bool:
    return _ANY.search(value) is not None


def _scan(value: Any, path: list[str | int], found: list[tuple[tuple[str | int, ...], str, str]]) -> None:
    """Every finding under `value`, in document order. The pointer of a value is spelled only when
    it holds a finding: the walk touches every value of every spec, and almost none do."""
    if isinstance(value, dict):
        for key, item in value.items():
            # blocked_patterns names what a monitor hunts for ({api_key: 'sk-...'}): a detector, not a secret
            named_secret = _secret_name(key) and not (path and path[-1] == "blocked_patterns")
            if named_secret and isinstance(item, str) and item:
                found.append(
                    (
                        (*path, key),
                        f"'{key}' holds a literal secret",
                        "reference a secret store (Kubernetes Secret, AWS Secrets Manager) instead",
                    )
                )
                continue
            path.append(key)
            _scan(item, path, found)
            path.pop()
    elif isinstance(value, list):
        for i, item in enumerate(value):
            path.append(i)
            _scan(item, path, found)
            path.pop()
    elif isinstance(value, str) and _suspect(value):
        for what, pattern in PATTERNS.items():
            if pattern.search(value):
                found.append(
                    (
                        tuple(path),
                        f"value looks like a {what}",
                        "remove it from the spec and rotate it: it is in git history now",
                    )
                )
                return
