"""X701: a value that looks like a credential is refused; secrets live in a secret store, not in git."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

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


def check(ctx: Context) -> Iterator[Diagnostic]:
    docs = [ctx.sources.project] if ctx.sources.project else []
    docs += [d for group in ctx.sources.documents.values() for d in group]
    for doc in docs:
        yield from _scan(doc, doc.data, "")


def _scan(doc: Document, value: Any, pointer: str) -> Iterator[Diagnostic]:
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{pointer}/{escape(key)}"
            # blocked_patterns names what a monitor hunts for ({api_key: 'sk-...'}): a detector, not a secret
            named_secret = SECRET_KEY.search(key) and not pointer.endswith("/blocked_patterns")
            if named_secret and isinstance(item, str) and item:
                yield doc.diagnostic(
                    child,
                    "X701",
                    f"'{key}' holds a literal secret",
                    hint="reference a secret store (Kubernetes Secret, AWS Secrets Manager) instead",
                )
                continue
            yield from _scan(doc, item, child)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _scan(doc, item, f"{pointer}/{i}")
    elif isinstance(value, str) and _ANY.search(value):
        for what, pattern in PATTERNS.items():
            if pattern.search(value):
                yield doc.diagnostic(
                    pointer,
                    "X701",
                    f"value looks like a {what}",
                    hint="remove it from the spec and rotate it: it is in git history now",
                )
                return
