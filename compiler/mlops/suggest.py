"""'Did you mean' suggestions for names: containment first (L4-24GB -> L4), then edit similarity."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, options: Iterable[str], cutoff: float = 0.6) -> str | None:
    options = list(options)
    low = name.lower()
    contained = [o for o in options if o.lower() in low or low in o.lower()]
    if contained:
        return max(contained, key=lambda o: (difflib.SequenceMatcher(None, low, o.lower()).ratio(), o))
    match = difflib.get_close_matches(name, options, n=1, cutoff=cutoff)
    return match[0] if match else None


def did_you_mean(name: str, options: Iterable[str], fallback: str = "", cutoff: float = 0.6) -> str:
    options = list(options)
    match = closest(name, options, cutoff)
    if match:
        return f"did you mean '{match}'?"
    return fallback or (f"known: {', '.join(sorted(options))}" if options else "")
