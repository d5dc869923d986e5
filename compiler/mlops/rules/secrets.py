"""X701: a value that looks like a credential is refused; secrets live in a secret store, not in git."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any
from weakref import WeakKeyDictionary

from mlops.diagnostics import Diagnostic
from mlops.loader import Document, escape
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


Found = list[tuple[tuple[str | int, ...], str, str]]  # (path, message, hint) of each finding

# What a file holds depends on its data alone: a plan's head, which has most files of its base as
# the very same documents (mlops.gitops.shared), scans only the files that changed.
_SCANNED: WeakKeyDictionary[Document, Found] = WeakKeyDictionary()


def check(ctx: Context) -> Iterator[Diagnostic]:
    docs = [ctx.sources.project] if ctx.sources.project else []
    docs += [d for group in ctx.sources.documents.values() for d in group]
    for doc in docs:
        found = _SCANNED.get(doc)
        if found is None:
            found = []
            _scan(doc.data, [], found)
            _SCANNED[doc] = found  # kept once whole
        for path, code_message, hint in found:
            yield doc.diagnostic("".join(f"/{escape(str(p))}" for p in path), "X701", code_message, hint=hint)


# the same keys and most values recur in every spec: each distinct one is searched once
@lru_cache(maxsize=4096)
def _secret_name(key: str) -> bool:
    return SECRET_KEY.search(key) is not None


@lru_cache(maxsize=4096)
def _suspect(value: str) -> bool:
    return _ANY.search(value) is not None


def _scan(value: Any, path: list[str | int], found: Found) -> None:
    """Every finding under `value`, in document order. The pointer of a value is spelled only when
    it holds a finding: the walk touches every value of every spec, and almost none do, so the
    scalars are looked at in their container's loop (a call each was most of the walk)."""
    if isinstance(value, dict):
        items: Any = value.items()
        # blocked_patterns names what a monitor hunts for ({api_key: 'sk-...'}): a detector, not a secret
        named = not (path and path[-1] == "blocked_patterns")  # a key can say its value is a secret
    elif isinstance(value, list):
        items, named = enumerate(value), False
    else:
        if isinstance(value, str) and _suspect(value):
            _looks_like(value, path, found)
        return
    for key, item in items:
        if isinstance(item, str):
            if named and item and _secret_name(key):
                found.append(
                    (
                        (*path, key),
                        f"'{key}' holds a literal secret",
                        "reference a secret store (Kubernetes Secret, AWS Secrets Manager) instead",
                    )
                )
            elif _suspect(item):
                path.append(key)
                _looks_like(item, path, found)
                path.pop()
        elif isinstance(item, dict | list):
            path.append(key)
            _scan(item, path, found)
            path.pop()


def _looks_like(value: str, path: list[str | int], found: Found) -> None:
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
