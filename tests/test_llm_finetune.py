"""The llm-finetune trainer for real: the pre-trained tiny Llama base, LoRA as the spec says, the whole
local graph (dataset -> prepare -> train on 2 CPU ranks -> evaluate -> deploy), the adapter it leaves, and
a retraining on logged production requests with their reference answers that continues the serving adapter."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from mlops.model import ResolvedModel
from mlops.pipeline import validate
from mlops.runtime.registry import ModelRegistry
from mlops.runtime.registry.store import now
from mlops.runtime.serving.log import InferenceLog
from mlops.runtime.training import llm
from tests.conftest import EXAMPLES
from tests.helpers import mlops

ROOT = EXAMPLES / "llm-support"
BASE = ROOT / "base" / "tiny-llama"
FEEDBACK_ROWS = 12
LLAMA_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def model(env: str = "local") -> ResolvedModel:
    [m] = validate(ROOT, [env]).models
    return m


def test_the_specs_base_numbers_are_the_saved_models() -> None:
    """The memory check reads the spec's numbers; they are the DVC-tracked model's own."""
    from transformers import AutoModelForCausalLM

    base = model().training.base_model
    net = AutoModelForCausalLM.from_pretrained(BASE)
    c = net.config
    assert type(net).__name__ == "LlamaForCausalLM" and base.path == "base/tiny-llama"
    assert base.params == sum(p.numel() for p in net.parameters())
    assert (base.hidden_size, base.num_layers, base.intermediate_size, base.vocab_size) == (
        c.hidden_size,
        c.num_hidden_layers,
        c.intermediate_size,
        c.vocab_size,
    )
    assert base.kv_size == c.num_key_value_heads * c.hidden_size // c.num_attention_heads
    assert base.largest_layer_params == max(p.numel() for p in net.parameters())
    # the same module names as Llama-3.1-8B, so the spec's target_modules apply to both
    names = {n.rsplit(".", 1)[-1] for n, _ in net.named_modules()}
    assert set(LLAMA_MODULES) <= names


@pytest.mark.parametrize("env", ["local", "prod"])
def test_lora_is_the_specs_and_its_trainable_count_is_what_the_memory_check_assumed(env: str) -> None:
    """PEFT on the base with the resolved settings trains exactly memory.lora_params parameters (prod: the
    same formula over Llama-3.1-8B's catalog numbers, checked on a model built from that config, not downloaded)."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig

    m = model(env)
    t = m.training
    lora = llm.FineTune.from_dict(
        {"method": t.method, "base_model": {"name": t.base_model.name}, "lora": _lora(m), "sequence_length": 8}
    ).lora
    assert lora is not None
    if env == "local":
        base = AutoModelForCausalLM.from_pretrained(BASE)
    else:  # 8B on the meta device: the shapes without the memory
        b = t.base_model
        config = LlamaConfig(
            hidden_size=b.hidden_size,
            num_hidden_layers=b.num_layers,
            intermediate_size=b.intermediate_size,
            num_attention_heads=32,
            num_key_value_heads=b.kv_size // 128,
            vocab_size=b.vocab_size,
        )
        with torch.device("meta"):
            base = AutoModelForCausalLM.from_config(config)
        assert sum(p.numel() for p in base.parameters()) == b.params
    peft_model = get_peft_model(base, llm.lora_config(lora))
    trainable, _ = peft_model.get_nb_trainable_parameters()
    assert trainable == llm.trainable_params(peft_model) == t.trainable_params
    cfg = peft_model.peft_config["default"]
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout) == (t.lora.rank, t.lora.alpha, t.lora.dropout)
    assert set(cfg.target_modules) == set(t.lora.target_modules)


def _lora(m: ResolvedModel) -> dict:
    lo = m.training.lora
    return {"rank": lo.rank, "alpha": lo.alpha, "dropout": lo.dropout, "target_modules": list(lo.target_modules)}


def test_every_environment_renders_the_same_trainer_with_its_own_base() -> None:
    from mlops.targets.dagster import model_data

    local, prod = model_data(model("local")), model_data(model("prod"))
    assert local["training"]["command"] == prod["training"]["command"] == ["python", "trainer/train.py"]
    assert local["finetune"]["base_model"] == {"name": "tiny-llama", "path": "base/tiny-llama"}
    assert prod["finetune"]["base_model"] == {"name": "meta-llama/Llama-3.1-8B", "path": None}
    assert prod["finetune"]["method"] == local["finetune"]["method"] == "lora"
    assert prod["finetune"]["prompt"] == local["finetune"]["prompt"]
    assert prod["training"]["hub_token_secret"] == {"name": "hf-token", "key": "token"}


def test_rouge_l_is_rouge_scores() -> None:
    # LCS "the cat the mat" = 4 of 6 hypothesis and 5 reference tokens
    assert llm.rouge_l(["the cat sat on the mat"], ["the cat the big mat"]) == pytest.approx(
        [2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5)]
    )
    assert llm.rouge_l(["Same words."], ["same words"]) == [1.0]  # rouge-score lower-cases, drops punctuation
    assert llm.exact_match(["It ships  today.", "no"], ["It ships today.", "yes"]) == [1.0, 0.0]


def test_qlora_on_the_cpu_is_a_validate_time_diagnostic(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    spec = root / "models" / "support-assistant.yaml"
    text = spec.read_text()
    spec.write_text(text.replace("    method: lora\n", "    method: qlora\n", 1))
    result = mlops("validate", root)
    line = next(i for i, t in enumerate(spec.read_text().splitlines(), 1) if "method: qlora" in t)
    assert result.exit_code == 1
    assert f"support-assistant.yaml:{line}:13: error T511 [local] method qlora on the cpu device" in result.output
    t511 = [line for line in result.output.splitlines() if " T511 " in line]
    assert len(t511) == 1  # only local: H100 (prod) and A10G (dev) run bitsandbytes


def meta(instance: dg.DagsterInstance, stage: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(["support_assistant", stage]))
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


@pytest.mark.slow
def test_the_local_llm_graph_fine_tunes_the_base_with_lora(copy_example: Callable[[str], Path], tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    project = copy_example("llm-support")
    home = tmp_path / "dagster_home"
    # a real process, as a user runs it (in-process, the quiet mode's fd redirection and pytest's
    # capture of an earlier test that imported rouge-score close each other's streams)
    run = subprocess.run(
        [sys.executable, "-m", "mlops", "materialize", str(project), "--env", "local", "--dagster-home", str(home)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    for stage in ("dataset", "prepare", "train", "evaluate", "deploy"):
        assert f"support_assistant/{stage}" in output
    assert "gate_eval_loss passed" in output and "gate_rouge_l passed" in output
    m = model()
    instance = dg.DagsterInstance.from_config(str(home))

    prepared = meta(instance, "prepare")
    for step in ("exact_duplicates", "near_duplicates", "length", "eval_in_train"):
        assert prepared[f"removed_{step}"] > 0, step
    assert prepared["redacted_ssn"] > 0 and prepared["redacted_email"] > 0
    assert prepared["train_rows"] == m.train_data.examples
    assert 0 < prepared["train_tokens_p50"] <= prepared["train_tokens_p99"] <= m.training.sequence_length
    assert Path(prepared["profile"]).stat().st_size > 0

    trained = meta(instance, "train")
    assert trained["train_loss_last"] < 0.5 * trained["train_loss_first"]  # the loss falls
    assert trained["trainable_params"] == m.training.trainable_params
    assert trained["steps"] == m.training.total_steps and trained["world_size"] == 2
    for g in m.evaluation.gates:
        value = trained[g.metric]
        assert (g.min is None or value >= g.min) and (g.max is None or value <= g.max), (g, trained)
    assert (
        Path(trained["deepspeed_config"]).read_text()
        == (project / "rendered" / "local" / "deepspeed" / "support-assistant.json").read_text()
    )

    adapter = Path(trained["model_dir"])
    assert {p.name for p in adapter.iterdir()} >= {*llm.ADAPTER_FILES, "tokenizer.json", "prompt.json"}
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["lora_dropout"]) == (16, 32, 0.05)
    assert set(config["target_modules"]) == set(LLAMA_MODULES)
    assert json.loads((adapter / "prompt.json").read_text()) == m.prompt.to_dict()

    # base + adapter through PEFT, outside the trainer: it answers like a support agent
    tok = AutoTokenizer.from_pretrained(adapter)
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(project / "base" / "tiny-llama"), adapter)
    ft = llm.FineTune.from_dict(json.loads(next(Path(trained["output_dir"]).parent.glob("finetune.json")).read_text()))
    record = {"prompt": "I want a refund for my camera, order A123456.", "response": ""}
    prompt = llm.encode(tok, ft, record, with_answer=False).prompt_ids
    with torch.no_grad():
        out = tuned.generate(input_ids=torch.tensor([prompt]), max_new_tokens=24, do_sample=False)
    answer = tok.decode(out[0, len(prompt) :], skip_special_tokens=True)
    assert len(answer.split()) >= 3 and "refund" in answer.lower(), answer

    # the registered version that deploy released holds the same adapter, and its lineage the base
    released = meta(instance, "deploy")
    assert released["version"] == trained["version"]
    version = Path(trained["version_uri"])
    assert (version / "model" / "adapter_model.safetensors").read_bytes() == (
        adapter / "adapter_model.safetensors"
    ).read_bytes()
    lineage = json.loads((version / "lineage.json").read_text())
    assert "tiny-llama" in json.dumps(lineage["base_model"]) and lineage["data"]["train"]["path"] == m.train_data.path

    # production: requests logged by the server's log writer, agents' answers arriving as feedback
    served = [json.loads(line) for line in Path(prepared["eval_path"]).read_text().splitlines()][:FEEDBACK_ROWS]
    reg = ModelRegistry(str(version.parents[3]), "local", m.name)
    log = InferenceLog(reg)
    for i, row in enumerate(served):
        log.append(
            {
                "time": now(),
                "request_id": f"prod-{i}",
                "model": m.name,
                "version": 1,
                "status": 200,
                "latency_ms": 900.0,
                "prompt": row["prompt"],
                "response": row["response"],
            }
        )
    log.close()
    (project / "feedback").mkdir()
    answers = [{"request_id": f"prod-{i}", "response": row["response"]} for i, row in enumerate(served)]
    answers[0]["response"] += " Write to help@acme.example if it has not arrived."  # PII: redacted before training
    (project / "feedback" / "answers.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers))

    # the retraining learns from them and continues the serving adapter (training.warm_start: release)
    again = subprocess.run(
        [sys.executable, "-m", "mlops", "materialize", str(project), "--env", "local", "--dagster-home", str(home)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    retrained = meta(instance, "train")
    assert retrained["version"] == 2 and retrained["warm_start_version"] == 1
    assert (retrained["feedback_rows"], retrained["feedback_rows_skipped"], retrained["feedback_redacted"]) == (
        FEEDBACK_ROWS,
        0,
        1,
    )
    assert retrained["train_loss_first"] < 0.75 * trained["train_loss_first"]  # it starts where v1 left off
    monitored = meta(instance, "monitor")
    assert monitored["labeled"] == FEEDBACK_ROWS and 0 < monitored["live_rouge_l"] <= 1
    assert meta(instance, "deploy")["version"] == 2


def test_a_gated_base_gets_its_token_from_the_named_secret_in_every_training_pod() -> None:
    """prod names the Secret `hf-token`: node 0 (the Pipes pod) and the other nodes read HF_TOKEN from it by
    secretKeyRef, and no token value is anywhere in what is rendered; the Pod is valid Kubernetes."""
    import kubernetes_validate

    from mlops.runtime.dagster import launch
    from mlops.runtime.dagster.spec import EnvironmentSpec, ModelSpec
    from mlops.targets.dagster import model_data

    m = model("prod")
    spec = ModelSpec.from_dict(model_data(m))
    env = EnvironmentSpec("prod", "aws", "us-east-1", "ml-prod", "k8s", "ml", None)
    base = launch.pod_spec(spec.training, env)
    ref = {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}}}
    assert base["containers"][0]["env"] == [ref]
    node = launch._node(base, "ghcr.io/acme/train:1.4.0", ["torchrun"], {"MLOPS_MODEL_NAME": m.name})
    assert node["containers"][0]["env"] == [ref, {"name": "MLOPS_MODEL_NAME", "value": m.name}]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "train-1"}, "spec": node}
    kubernetes_validate.validate(pod, "1.33", strict=True)
    [fraud] = validate(EXAMPLES / "tabular-fraud", ["prod"]).models  # no Secret named, no env added
    assert "env" not in launch.pod_spec(ModelSpec.from_dict(model_data(fraud)).training, env)["containers"][0]
