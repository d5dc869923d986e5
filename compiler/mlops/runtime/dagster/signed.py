"""Asset functions whose signature is computed once per definition, not once per model.

Dagster asks `inspect.signature` about an asset's function some seventeen times while it builds
the asset (parameters, resources, context, types): for 1,000 models, 94,000 signatures and about
a fifth of loading the definitions. Every model's closure of one `def` has the same parameters,
annotations and (none) defaults, so the first signature is lent to the others through
`__signature__`, which `inspect.signature` returns as it is.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import CodeType
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

_SIGNATURES: dict[CodeType, inspect.Signature] = {}


def signed(fn: F) -> F:
    if fn.__defaults__ is None and fn.__kwdefaults__ is None:  # type: ignore[attr-defined]
        code = fn.__code__  # type: ignore[attr-defined]
        signature = _SIGNATURES.get(code)
        if signature is None:
            signature = _SIGNATURES[code] = inspect.signature(fn)
        fn.__signature__ = signature  # type: ignore[attr-defined]
    return fn
