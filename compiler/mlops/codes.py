"""The table of diagnostic codes: stable, documented, shown by `mlops rules`."""

from __future__ import annotations

from typing import NamedTuple


class Code(NamedTuple):
    title: str
    explanation: str


CODES: dict[str, Code] = {
    # L: loading YAML
    "L101": Code(
        "yaml-syntax",
        "The file is not valid YAML (including tabs used for indentation, several documents in one file, and "
        "line breaks editors do not show: NEL, U+2028, U+2029, a lone CR).",
    ),
    "L102": Code(
        "duplicate-key", "A mapping has the same key twice; YAML loaders silently keep the last one, mlops refuses."
    ),
    "L103": Code(
        "alias-or-merge", "Anchors, aliases and merge keys (<<) are refused: they hide values and enable alias bombs."
    ),
    "L104": Code("yaml-tag", "Explicit tags (!!python/object, !custom) are refused: specs are plain data."),
    "L105": Code("encoding", "The file is not valid UTF-8."),
    "L106": Code("file-too-large", "The file is over the 1 MiB limit for a spec."),
    "L107": Code("too-deep", "The document nests deeper than 32 levels."),
    "L108": Code("empty-file", "The file holds no document."),
    "L109": Code("unreadable", "The path is a directory, a broken symbolic link or otherwise not a readable file."),
    "L110": Code("outside-project", "A path resolves outside the project folder."),
    # S: schema
    "S201": Code("wrong-type", "A value has the wrong JSON type (a string where a number is expected, ...)."),
    "S202": Code("unknown-key", "A key the schema does not define; usually a typo, with a 'did you mean' hint."),
    "S203": Code("missing-key", "A required key is missing."),
    "S204": Code("invalid-value", "A value is outside what the schema allows (enum, pattern, range, length)."),
    "S205": Code(
        "wrong-kind", "apiVersion or kind is missing or not one mlops knows, or the document sits in the wrong folder."
    ),
    "S206": Code(
        "invalid-schedule",
        "A cron field is out of range or malformed, or a schedule's timezone is not an IANA name.",
    ),
    # P: project structure
    "P301": Code("duplicate-name", "Two documents of the same kind share metadata.name."),
    "P302": Code("unknown-environment", "A model overlay or policy names an environment that has no Environment spec."),
    "P303": Code("no-project", "The folder has no mlops.yaml."),
    "P304": Code("no-environments", "The project defines no environment, so there is nothing to compile."),
    # R: resources, arithmetic, quota, budget
    "R401": Code("unknown-gpu", "A GPU type is not in the GPU catalog."),
    "R402": Code(
        "batch-arithmetic",
        "batch.global is not micro_per_gpu x gradient accumulation x data-parallel size for a whole accumulation.",
    ),
    "R403": Code("gpu-quota", "The models of an environment need more GPUs of a type than its gpu_quota allows."),
    "R404": Code("budget", "The models of an environment cost more per hour than its budget_per_hour."),
    "R405": Code(
        "parallel-degree",
        "Tensor x pipeline parallel does not divide the GPUs, or tensor parallel exceeds GPUs per node.",
    ),
    "R406": Code("no-instance", "The cloud has no instance type with that many GPUs of that type."),
    "R407": Code("unknown-base-model", "The base model is not in the model catalog and not given inline."),
    "R408": Code("unknown-price", "The catalog has no price for an instance, so cost and budget cannot be checked."),
    # T: training (DeepSpeed)
    "T501": Code(
        "gpu-memory",
        "Model states (DeepSpeed's estimator formulas) plus the activation margin do not fit in the GPU's usable "
        "memory; the hint names the cheapest change that fits.",
    ),
    "T502": Code("host-memory", "CPU offload needs more host RAM (DeepSpeed's CPU estimate) than the instance has."),
    "T503": Code(
        "fp16-unsupported",
        "fp16 on the cpu device, which DeepSpeed refuses on most CPUs. (fp16 and bf16 together cannot be written: "
        "precision is one value.)",
    ),
    "T504": Code("bf16-unsupported", "bf16 on a GPU without bf16 support (T4)."),
    "T505": Code("offload-param-stage", "offload_param needs ZeRO stage 3; below it DeepSpeed ignores it."),
    "T506": Code("qlora-zero3", "QLoRA (4-bit base weights) with ZeRO-3 is a known failure in the field."),
    "T507": Code("nvme-path", "NVMe offload needs zero.nvme_path."),
    "T508": Code("offload-optimizer-stage", "offload_optimizer needs ZeRO stage 1 or higher; at stage 0 it fails."),
    "T509": Code("prompt-syntax", "prompt.template or prompt.chat_template is not a valid Jinja2 template."),
    "T510": Code(
        "prompt-field", "The prompt template or its response field names a field the training data does not have."
    ),
    "T511": Code(
        "qlora-device", "method qlora where the training device cannot run bitsandbytes 4-bit kernels (cpu/local)."
    ),
    "T512": Code(
        "entrypoint-missing",
        "The training entrypoint of a local environment (a script, module or executable) does not exist.",
    ),
    "T513": Code(
        "entrypoint-not-python",
        "The training command runs python on something that is not a Python file or module name.",
    ),
    "T514": Code(
        "warm-start-never-released",
        "training.warm_start: release on a model without a serving section: no version is ever released to start from.",
    ),
    # G: policy
    "G601": Code("policy-violation", "A policy rule does not hold for a resolved model; the severity is the policy's."),
    "G602": Code(
        "policy-rule",
        "A policy rule cannot apply: its path names a field no resolved model has, its literal has another type "
        'than the field (spot: "false"), or max/min names a field that is not a number.',
    ),
    "G603": Code("policy-model", "A policy's models: list names a model the project does not define."),
    # X: security
    "X701": Code("secret-in-spec", "A value looks like a credential; secrets never go into specs."),
    # D: data
    "D801": Code("data-not-tracked", "A data path is not tracked by DVC."),
    "D802": Code("data-rev", "A data revision does not resolve to a commit."),
    "D803": Code(
        "data-missing", "A data path is neither a file in the working tree nor tracked by DVC, so no run can read it."
    ),
    "D804": Code(
        "retrain-cannot-learn",
        "A drift or performance retraining on pinned data with neither data.feedback nor training.warm_start "
        "would rebuild the model that serves.",
    ),
    "D805": Code(
        "feedback-unjoinable",
        "data.feedback on a model whose requests are not logged (no serving, or serving.engine batch), or on a "
        "tabular model without data.label: no label can be joined by request id.",
    ),
    # E: evaluation and deploy gates
    "E101": Code(
        "require-improvement",
        "deploy.require_improvement cannot be decided: the model has no serving section, a metric it names has no "
        "gate or a gate bounded on both sides (no direction), or the llm-finetune trainer does not score a serving "
        "version on it (eval_loss, rouge_l and exact_match only).",
    ),
    # M: monitoring
    "M901": Code("impossible-constraint", "A column constraint cannot hold (min > max, min_length > max_length)."),
    "M902": Code("bad-pattern", "A regular expression does not compile or is too large."),
    "M903": Code(
        "unknown-column",
        "Drift, compliance or prediction names a column the monitor does not define or of the wrong type, "
        "or drift compares with an eval set the model does not have.",
    ),
    "M904": Code(
        "source-not-read",
        "monitoring.source on a model behind a server: the monitor reads the inference log, not the file.",
    ),
    # V: serving on vLLM
    "V101": Code("lora-rank-limit", "A LoRA rank over 512, the largest --max-lora-rank vLLM accepts."),
    "V102": Code(
        "quantized-checkpoint",
        "quantization awq or gptq without a serving.checkpoint quantized that way: vLLM does not quantize to them.",
    ),
    "V103": Code("fp8-unsupported", "quantization fp8 on a GPU without fp8 support (T4, A10G, A100)."),
    "V104": Code(
        "serving-tensor-parallel", "serving.tensor_parallel exceeds the GPUs of the largest node of that GPU type."
    ),
    "V105": Code(
        "serving-memory",
        "The weights plus the KV cache of one max_model_len sequence do not fit vLLM's share (0.9) of the serving GPUs.",
    ),
    # A: alerting (serving SLOs, training GPU alerts)
    "A101": Code(
        "slo-quantile",
        "An SLO quantile is not between p0 and p100, or its bound cannot hold with the others "
        "(p99 under p95, time to first token over the latency of the same quantile).",
    ),
    "A102": Code(
        "alert-duration",
        "An alert's for is zero or over a day, or the SLO rate window holds fewer than 4 scrapes or outlasts the for.",
    ),
    "A103": Code(
        "gpu-alerts-without-gpus", "training.alerts watch GPUs, but training runs on cpu in every environment."
    ),
    "A104": Code(
        "slo-signal",
        "An SLO on a signal the engine does not measure (time to first token off vllm, any SLO on engine batch): "
        "a warning, and no rule is rendered for it.",
    ),
    # C: compile / output
    "C001": Code("stale-output", "compile --check: a rendered file is missing, stale, edited by hand or orphaned."),
    "C002": Code(
        "write-failed",
        "The output could not be written (or read by compile --check): a read-only or full disk, a symbolic link "
        "where the output goes, or another compile holding the lock too long. The previous output is intact.",
    ),
}


DOCS_URL = "https://mlops.dev/docs/diagnostics"  # the README's diagnostics table, published


def help_uri(code: str = "") -> str:
    return f"{DOCS_URL}#{code.lower()}" if code else DOCS_URL


def lookup(code: str) -> Code | None:
    return CODES.get(code.upper())


def markdown_table() -> str:
    """The README's diagnostics table (tests keep the README in step with CODES)."""
    rows = ["| code | name | meaning |", "|---|---|---|"]
    rows += [f"| {code} | {c.title} | {c.explanation} |" for code, c in CODES.items()]
    return "\n".join(rows)
