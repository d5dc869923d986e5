"""`mlops plan --format json`: the whole plan as data, every diff in full (for scripts and bots)."""

from __future__ import annotations

import json

from mlops.gitops.plan import Plan


def render(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
