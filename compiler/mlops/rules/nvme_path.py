"""T507: NVMe offload needs zero.nvme_path, the local NVMe mount DeepSpeed swaps to.

Without it DeepSpeed's offload config has no path and the swapper fails at startup; the
rendered config would have to guess a mount point, so the spec must say it.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.rules.context import Context


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        z = m.training.zero
        if z.nvme_path:
            continue
        for key in ("offload_optimizer", "offload_param"):
            if getattr(z, key) == "nvme":
                yield ctx.at(
                    m,
                    f"/spec/training/zero/{key}",
                    "T507",
                    f"zero.{key} nvme needs zero.nvme_path, the local NVMe mount on every training node",
                    hint="add zero.nvme_path, e.g. /local_nvme (an absolute path on the nodes, not in the project)",
                )
