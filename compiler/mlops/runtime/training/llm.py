"""The llm-finetune trainer: Hugging Face transformers + PEFT under DeepSpeed with the rendered config.

A project's trainer is a few lines (examples/llm-support/trainer/train.py):

    from mlops.runtime.training import llm
    llm.main()

Everything comes from the trainer contract (mlops.runtime.training.trainer): the rendered
DeepSpeed config, the data, the output folder, and MLOPS_FINETUNE, a JSON file the train asset
writes from the resolved spec:

    {"method": "lora" | "qlora" | "full",
     "base_model": {"name": "meta-llama/Llama-3.1-8B", "path": null | "base/tiny-llama"},
     "lora": {"rank": 16, "alpha": 32, "dropout": 0.05, "target_modules": ["q_proj", ...]},
     "sequence_length": 2048, "max_new_tokens": 96, "seed": 0,
     "prompt": {the spec's prompt section, see mlops.runtime.prompt}}

The base loads with `from_pretrained` from `path` (a folder inside the project, the local
environment) or from the hub by `name` with the token in $HF_TOKEN (clusters: the Secret the
spec names). lora/qlora save a PEFT adapter (adapter_config.json + adapter_model.safetensors),
full saves the whole checkpoint; both with the tokenizer and the prompt they were trained with.
Evaluation generates greedily on the eval set: eval_loss (nats per answer token), rouge_l
(`rouge-score`'s ROUGE-L F1) and exact_match. With MLOPS_BASELINE (deploy.require_improvement) the
serving version is scored on the same eval rows too and reported as baseline_<metric>.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops import contract
from mlops.runtime.prompt import Prompt
from mlops.runtime.training import trainer as training

log = logging.getLogger("mlops.train")

FINETUNE = contract.FINETUNE
HF_TOKEN = contract.HF_TOKEN
IGNORE = -100
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


@dataclass(frozen=True)
class LoraSpec:
    rank: int
    alpha: float
    dropout: float
    target_modules: tuple[str, ...]


@dataclass(frozen=True)
class FineTune:
    method: str
    base_name: str
    base_path: str | None
    lora: LoraSpec | None
    sequence_length: int
    prompt: Prompt
    max_new_tokens: int = 96
    seed: int = 0

    @property
    def adapters(self) -> bool:
        return self.method in ("lora", "qlora")

    @property
    def base(self) -> str:
        """What from_pretrained loads: the local folder when there is one, else the hub name."""
        return self.base_path or self.base_name

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FineTune:
        base = d["base_model"]
        lora = d.get("lora")
        method = d.get("method", "full")
        if method in ("lora", "qlora") and not lora:
            raise training.ContractError(f"{FINETUNE}: method {method} needs lora settings")
        return cls(
            method=method,
            base_name=base["name"],
            base_path=base.get("path"),
            lora=None
            if method == "full"
            else LoraSpec(
                rank=int(lora["rank"]),
                alpha=float(lora["alpha"]),
                dropout=float(lora["dropout"]),
                target_modules=tuple(lora["target_modules"]),
            ),
            sequence_length=int(d.get("sequence_length") or 512),
            prompt=Prompt.from_dict(d.get("prompt")),
            max_new_tokens=int(d.get("max_new_tokens") or 96),
            seed=int(d.get("seed") or 0),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FineTune:
        env = os.environ if environ is None else environ
        path = env.get(FINETUNE)
        if not path:
            raise training.ContractError(f"set {FINETUNE} (see mlops.runtime.training.llm)")
        if not Path(path).is_file():
            raise training.ContractError(f"no such file: {FINETUNE}={path}")
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


# --- model --------------------------------------------------------------------------------------


def torch_dtype(config: Mapping[str, Any]) -> Any:
    import torch

    if (config.get("bf16") or {}).get("enabled"):
        return torch.bfloat16
    if (config.get("fp16") or {}).get("enabled"):
        return torch.float16
    return torch.float32


def load_tokenizer(ft: FineTune) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ft.base, token=os.environ.get(HF_TOKEN))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(ft: FineTune, config: Mapping[str, Any], warm_start: Path | None = None) -> Any:
    """The base, with LoRA adapters on the spec's target modules for lora/qlora (4-bit base for qlora).

    `warm_start` (the serving version's model/ folder, training.warm_start: release) is where the
    training continues: its adapter, trainable, on the same base; for full, its whole checkpoint."""
    from transformers import AutoModelForCausalLM

    dtype = torch_dtype(config)
    kwargs: dict[str, Any] = {"dtype": dtype, "token": os.environ.get(HF_TOKEN)}
    if ft.method == "qlora":
        import torch
        from transformers import BitsAndBytesConfig

        if not torch.cuda.is_available():
            raise training.ContractError("method qlora needs a CUDA GPU for bitsandbytes 4-bit weights")
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    full_start = warm_start is not None and not ft.adapters
    model = AutoModelForCausalLM.from_pretrained(warm_start if full_start else ft.base, **kwargs)
    if not ft.adapters:
        return model
    from peft import PeftModel, get_peft_model, prepare_model_for_kbit_training

    if ft.method == "qlora":
        model = prepare_model_for_kbit_training(model)
    if warm_start is not None:
        _same_adapter(ft, warm_start)
        return PeftModel.from_pretrained(model, warm_start, is_trainable=True)
    assert ft.lora is not None
    return get_peft_model(model, lora_config(ft.lora))


def _same_adapter(ft: FineTune, warm_start: Path) -> None:
    """A serving adapter of another shape cannot be continued: the spec's LoRA changed since it trained."""
    path = warm_start / ADAPTER_FILES[0]
    if not path.is_file():
        raise training.ContractError(f"warm start {warm_start} holds no PEFT adapter ({ADAPTER_FILES[0]})")
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert ft.lora is not None
    wanted = {"r": ft.lora.rank, "lora_alpha": ft.lora.alpha, "target_modules": sorted(ft.lora.target_modules)}
    found = {
        "r": saved.get("r"),
        "lora_alpha": saved.get("lora_alpha"),
        "target_modules": sorted(saved.get("target_modules") or []),
    }
    if found != wanted:
        raise training.ContractError(
            f"warm start {warm_start}: the serving adapter is {found}, the spec asks for {wanted}; "
            "set training.warm_start: none for this retraining"
        )


def lora_config(spec: LoraSpec) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(spec.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


def trainable_params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --- data ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    prompt_ids: list[int]  # bos + the rendered prompt
    answer_ids: list[int]  # the answer + eos (empty when the record has no answer)


def encode(tokenizer: Any, ft: FineTune, row: Mapping[str, Any], *, with_answer: bool = True) -> Example:
    """Prompt and answer tokenized apart (what generation sees is exactly the training prefix),
    truncated to the sequence length from the prompt's start so the answer keeps its beginning."""
    text = ft.prompt.render(row, tokenizer_chat_template=getattr(tokenizer, "chat_template", None))
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None and ft.prompt.format != "chat" else []
    prompt = bos + tokenizer(text, add_special_tokens=False)["input_ids"]
    answer: list[int] = []
    if with_answer:
        answer = tokenizer(ft.prompt.target(row), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    keep = max(ft.sequence_length - len(answer), ft.sequence_length // 2)
    prompt = prompt[-keep:] if len(prompt) > keep else prompt
    return Example(prompt, answer[: ft.sequence_length - len(prompt)])


def collate(examples: Sequence[Example], pad_id: int) -> dict[str, Any]:
    """Right-padded input_ids, attention_mask and labels that score the answer tokens only."""
    import torch

    width = max(len(e.prompt_ids) + len(e.answer_ids) for e in examples)
    ids, mask, labels = [], [], []
    for e in examples:
        seq = e.prompt_ids + e.answer_ids
        pad = width - len(seq)
        ids.append(seq + [pad_id] * pad)
        mask.append([1] * len(seq) + [0] * pad)
        labels.append([IGNORE] * len(e.prompt_ids) + e.answer_ids + [IGNORE] * pad)
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask), "labels": torch.tensor(labels)}


# --- evaluation ---------------------------------------------------------------------------------


def rouge_l(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    """ROUGE-L F1 per pair, from Google's `rouge-score` package (with its default tokenizer)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    return [scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references, strict=True)]


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    """1.0 where the answer equals the reference after whitespace normalisation."""
    return [float(" ".join(p.split()) == " ".join(r.split())) for p, r in zip(predictions, references, strict=True)]


def generate(module: Any, tokenizer: Any, prompts: Sequence[list[int]], max_new_tokens: int, synced: bool) -> list[str]:
    """Greedy answers for left-padded prompts; `synced` (ZeRO-3) keeps every rank stepping together."""
    import torch

    width = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    device = next(module.parameters()).device
    with torch.no_grad():
        out = module.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad,
            eos_token_id=tokenizer.eos_token_id,
            synced_gpus=synced,
        )
    return [tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in out]


def evaluate(
    engine: Any, tokenizer: Any, ft: FineTune, rows: list[dict[str, Any]], dist: training.Dist, zero_stage: int
) -> dict[str, float]:
    """eval_loss, rouge_l and exact_match over the eval rows, each rank scoring its share.

    Every rank runs the same forward passes (a rank without rows repeats the first one and
    does not count it), because ZeRO-3 forwards are collective.
    """
    import torch

    mine = rows[dist.rank :: dist.world_size]
    counted = len(mine)
    mine = mine or rows[:1]
    engine.eval()
    examples = [encode(tokenizer, ft, r) for r in mine]
    batch = collate(examples, tokenizer.pad_token_id)
    with torch.no_grad():
        logits = engine(
            input_ids=batch["input_ids"].to(engine.device), attention_mask=batch["attention_mask"].to(engine.device)
        ).logits.float()
    target = batch["labels"][:, 1:].to(engine.device)
    nll = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE, reduction="sum"
    )
    tokens = int((target != IGNORE).sum())
    generator = getattr(engine, "module", engine)  # a DeepSpeed engine wraps the module; a plain model is one
    answers = generate(generator, tokenizer, [e.prompt_ids for e in examples], ft.max_new_tokens, zero_stage == 3)
    references = [ft.prompt.target(r) for r in mine]
    rouge = rouge_l(answers, references)[:counted]
    exact = exact_match(answers, references)[:counted]
    if dist.main and answers:
        log.info("eval sample: %r -> %r (reference %r)", ft.prompt.render(mine[0])[-80:], answers[0], references[0])
    keep = 1.0 if counted else 0.0
    nll_sum, token_sum, rouge_sum, exact_sum, n = training.all_sum(
        [float(nll) * keep, tokens * keep, sum(rouge), sum(exact), counted]
    )
    return {"eval_loss": nll_sum / token_sum, "rouge_l": rouge_sum / n, "exact_match": exact_sum / n}


def load_version(folder: Path, ft: FineTune, config: Mapping[str, Any]) -> tuple[Any, FineTune]:
    """A saved version as it serves (deploy.require_improvement's baseline): the adapter on the
    spec's base, or the whole checkpoint, with the prompt it was trained with (prompt.json)."""
    from dataclasses import replace

    from transformers import AutoModelForCausalLM

    dtype = torch_dtype(config)
    if (folder / ADAPTER_FILES[0]).is_file():
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(ft.base, dtype=dtype, token=os.environ.get(HF_TOKEN))
        model = PeftModel.from_pretrained(base, str(folder))
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    prompt_file = folder / "prompt.json"
    if prompt_file.is_file():
        ft = replace(ft, prompt=Prompt.from_dict(json.loads(prompt_file.read_text(encoding="utf-8"))))
    return model, ft


def score_baseline(
    folder: Path, tokenizer: Any, ft: FineTune, rows: list[dict[str, Any]], dist: training.Dist, config: Any
) -> dict[str, float]:
    """The serving version's eval_loss, rouge_l and exact_match on the same eval rows, as baseline_<metric>.

    Every rank loads it as a plain module (no DeepSpeed: its forwards are not collective) and scores
    its share of the rows, like the candidate's evaluation."""
    import torch

    model, served = load_version(folder, ft, config)
    if torch.cuda.is_available():
        model = model.to(torch.cuda.current_device())
    return training.baseline_metrics(evaluate(model, tokenizer, served, rows, dist, zero_stage=0))


# --- saving -------------------------------------------------------------------------------------


def save(engine: Any, tokenizer: Any, ft: FineTune, env: training.TrainEnv, dist: training.Dist, stage: int) -> Path:
    """The adapter (lora/qlora) or the whole checkpoint (full) to $MLOPS_OUTPUT_DIR/model/, with the
    tokenizer and prompt.json. Under ZeRO-3 every rank joins in gathering the 16-bit weights."""
    folder = env.output_dir / "model"
    state = engine._zero3_consolidated_16bit_state_dict() if stage == 3 else None
    if dist.main:
        folder.mkdir(parents=True, exist_ok=True)
        engine.module.save_pretrained(folder, state_dict=state, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        (folder / "prompt.json").write_text(json.dumps(ft.prompt.to_dict(), indent=2, sort_keys=True) + "\n")
    return folder


# --- the whole run ------------------------------------------------------------------------------


def main() -> None:
    import deepspeed
    import torch

    training.setup_logging()
    env = training.TrainEnv.from_env()
    ft = FineTune.from_env()
    dist = training.init_distributed()
    training.seed_everything(ft.seed)
    config = env.config()
    stage = int((config.get("zero_optimization") or {}).get("stage", 0))

    tokenizer = load_tokenizer(ft)
    model = load_model(ft, config, env.warm_start)
    if env.warm_start is not None:
        log.info("continuing from the serving version at %s", env.warm_start)
    trainable = trainable_params(model)
    rows = training.read_rows(env.train_data)
    examples = [encode(tokenizer, ft, r) for r in rows]
    engine, _, _, _ = deepspeed.initialize(
        model=model, model_parameters=[p for p in model.parameters() if p.requires_grad], config=config
    )

    def loss_of(indices: list[int]) -> torch.Tensor:
        batch = {
            k: v.to(engine.device) for k, v in collate([examples[i] for i in indices], tokenizer.pad_token_id).items()
        }
        return engine(**batch).loss

    start = time.monotonic()
    fitted = training.fit(engine, loss_of, len(examples), config, dist, seed=ft.seed)
    seconds = time.monotonic() - start
    eval_rows = training.read_rows(env.eval_data or env.train_data)
    baseline = score_baseline(env.baseline, tokenizer, ft, eval_rows, dist, config) if env.baseline else {}
    metrics = {
        **fitted.metrics,
        **evaluate(engine, tokenizer, ft, eval_rows, dist, stage),
        **baseline,
        "trainable_params": float(trainable),
        "train_seconds": seconds,
        "seconds_per_step": seconds / max(len(fitted.losses), 1),
    }
    save(engine, tokenizer, ft, env, dist, stage)
    training.finish(env, dist, metrics)


if __name__ == "__main__":
    main()
