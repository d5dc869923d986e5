"""Redeploy through the gates: deploy.require_improvement, the health check with its rollback, and
`mlops status` against what the registry serves.

Real parts: `mlops materialize` (a real process, a real Dagster instance, torchrun training) on a
copy of the tabular example; "worse" is a real retraining that underfits (one epoch at a tenth of
the learning rate), "broken" a real version whose trainer truncated its weights; a real server on
127.0.0.1 answers httpx while deploy releases the broken one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import httpx
import pytest
import yaml

from mlops.runtime.dagster import improvement
from mlops.runtime.dagster.serving_status import Evaluation, decide
from mlops.runtime.registry import ModelRegistry, RegistryError
from mlops.runtime.serving import ServerThread, ServingApp
from tests.conftest import EXAMPLES
from tests.helpers import edit, found, line_of, mlops

NAME = "fraud-detector"
SPEC = "models/fraud-detector.yaml"
GOOD = "hyperparameters: {epochs: 5, learning_rate: 1.0e-2,"
UNDERFIT = "hyperparameters: {epochs: 1, learning_rate: 1.0e-3,"


def key(stage: str) -> dg.AssetKey:
    return dg.AssetKey(["fraud_detector", stage])


def latest(home: Path, stage: str) -> dict:
    event = dg.DagsterInstance.from_config(str(home)).get_latest_materialization_event(key(stage))
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


def status(project: Path, home: Path) -> tuple[int, dict]:
    result = mlops("status", project, "--env", "local", "--dagster-home", home, "--format", "json")
    [model] = json.loads(result.output)["models"]
    return result.exit_code, model


def materialize(project: Path, home: Path) -> tuple[int, str]:
    assert mlops("compile", project).exit_code == 0
    result = mlops("materialize", project, "--env", "local", "--dagster-home", home)
    return result.exit_code, result.output


# --- the comparison ------------------------------------------------------------------------------


def test_a_candidate_must_beat_the_serving_version_in_the_gates_direction_by_the_minimum() -> None:
    higher = {"roc_auc": {"min_delta": 0.0, "higher_is_better": True}}
    trained = {"roc_auc": 0.91, "baseline_roc_auc": 0.93}
    kept = improvement.compare(higher, trained, 3, 2)
    assert not kept.improved
    assert kept.summary == "candidate 3 does not beat serving 2: roc_auc 0.9100 <= serving 0.9300"
    assert improvement.compare(higher, {"roc_auc": 0.93, "baseline_roc_auc": 0.93}, 3, 2).improved is False  # a tie
    assert improvement.compare(higher, {"roc_auc": 0.95, "baseline_roc_auc": 0.93}, 3, 2).improved
    # a max gate: lower is better
    lower = {"eval_loss": {"min_delta": 0.0, "higher_is_better": False}}
    assert improvement.compare(lower, {"eval_loss": 0.4, "baseline_eval_loss": 0.5}, 3, 2).improved
    assert not improvement.compare(lower, {"eval_loss": 0.6, "baseline_eval_loss": 0.5}, 3, 2).improved
    # a minimum delta: better, but not by enough
    small = improvement.compare(
        {"roc_auc": {"min_delta": 0.01, "higher_is_better": True}}, {**trained, "roc_auc": 0.935}, 3, 2
    )
    assert not small.improved and "under min_delta 0.01" in small.summary
    # every named metric must improve
    both = {**higher, "accuracy": {"min_delta": 0.0, "higher_is_better": True}}
    mixed = {"roc_auc": 0.95, "baseline_roc_auc": 0.93, "accuracy": 0.80, "baseline_accuracy": 0.85}
    assert not improvement.compare(both, mixed, 3, 2).improved
    # nothing served when it trained: nothing to beat
    assert improvement.compare(higher, {"roc_auc": 0.5}, 1, None).improved


def test_a_trainer_that_does_not_score_the_baseline_is_named() -> None:
    with pytest.raises(improvement.NotComparable, match=r"no baseline_roc_auc .* serving version 2"):
        improvement.compare({"roc_auc": {"min_delta": 0.0, "higher_is_better": True}}, {"roc_auc": 0.9}, 3, 2)


# --- validate ------------------------------------------------------------------------------------


def test_require_improvement_that_cannot_be_decided_is_e101(copy_example: Callable[[str], Path]) -> None:
    project = copy_example("tabular-fraud")
    edit(project, SPEC, "{require_improvement: {accuracy: 0}}", "{require_improvement: {roc_auc: 0.01}}")
    assert found(project, "E101") == []
    edit(project, SPEC, "{roc_auc: 0.01}", "{roc_auc: 0.01, f1: 0}")
    [problem] = {d.message: d for d in found(project, "E101")}.values()
    assert "f1, which has no gate" in problem.message
    assert problem.line == line_of(project, SPEC, "{require_improvement: {roc_auc: 0.01, f1: 0}}")
    edit(project, SPEC, "{roc_auc: 0.01, f1: 0}", "true")
    edit(project, SPEC, "roc_auc: {min: 0.75}", "roc_auc: {min: 0.75, max: 0.99}")
    assert {d.message for d in found(project, "E101")} == {
        "the gate of roc_auc bounds it on both sides, so whether higher or lower is better is unknown"
    }

    llm = copy_example("llm-support")
    spec = "models/support-assistant.yaml"
    assert "require_improvement: true" in (llm / spec).read_text()
    assert found(llm, "E101") == []  # its gates are eval_loss and rouge_l, which the LLM trainer scores
    edit(llm, spec, "      rouge_l: {min: 0.35}\n", "      rouge_l: {min: 0.35}\n      seconds_per_step: {max: 60}\n")
    assert {d.message for d in found(llm, "E101")} == {
        "the llm-finetune trainer cannot score the serving version on seconds_per_step"
    }


def test_require_improvement_without_serving_is_e101(copy_example: Callable[[str], Path]) -> None:
    project = copy_example("tabular-fraud")
    spec = yaml.safe_load((project / SPEC).read_text())
    del spec["spec"]["serving"]
    spec["spec"]["deploy"] = {"require_improvement": True}
    (project / SPEC).write_text(yaml.safe_dump(spec, sort_keys=False))
    [problem] = {d.message: d for d in found(project, "E101")}.values()
    assert "without a serving section" in problem.message


# --- status verdicts -----------------------------------------------------------------------------


def _release(version: int, previous: int | None = None, reason: str = "deploy") -> dict:
    return {"version": version, "previous": previous, "reason": reason}


def test_status_verdicts_for_each_mismatch() -> None:
    passed2 = Evaluation(version=2, passed=True, current=True)
    failed2 = Evaluation(version=2, passed=False, current=True)
    passed1 = Evaluation(version=1, passed=True, current=True)
    assert decide(NAME, _release(2, 1), [passed2, passed1], {}).state == "in sync"
    # a passing version does not serve
    off = decide(NAME, _release(1, 2, "rollback"), [passed2, passed1], {})
    assert (off.state, off.expected) == ("out of sync", 2)
    nothing = decide(NAME, None, [passed2], {})
    assert (nothing.state, nothing.reason) == ("out of sync", "nothing serves, but version 2 passed its gates")
    # the serving version's evaluation of the current spec failed
    failing = decide(NAME, _release(2, 1), [failed2], {})
    assert failing.state == "out of sync" and "its evaluation of the current spec failed" in failing.reason
    # a newer candidate failed; the version that passed before still serves: fine
    assert decide(NAME, _release(1), [Evaluation(2, False, True), passed1], {}).state == "in sync"
    # kept by require_improvement, and rolled back after a failed health check: what serves is right
    kept = Evaluation(3, True, True, improved=False, comparison="candidate 3 does not beat serving 2", compared_with=2)
    deploy = {"released": False, "candidate_version": 3, "kept_reason": "kept version 2: ..."}
    verdict = decide(NAME, _release(2, 1), [kept, passed2], deploy)
    assert (verdict.state, verdict.kept) == ("in sync", "kept version 2: ...")
    assert decide(NAME, _release(1, 2, "rollback"), [kept, passed2], {}).state == "out of sync"
    rolled = decide(NAME, _release(1, 2, "health check failed"), [passed2, passed1], {})
    assert rolled.state == "in sync" and "failed its health check" in rolled.reason
    # an evaluation of an older spec says nothing about the current one
    assert decide(NAME, _release(1), [Evaluation(2, True, False)], {}).state == "in sync"


def test_withdraw_removes_only_a_first_release(tmp_path: Path) -> None:
    reg = ModelRegistry(str(tmp_path / "artifacts"), "local", NAME)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"1")
    reg.register(tmp_path / "m", {}, {})
    reg.register(tmp_path / "m", {}, {})
    reg.set_release(1)
    reg.withdraw(1)
    assert reg.release() is None
    reg.set_release(1)
    reg.set_release(2)
    with pytest.raises(RegistryError, match="not a first release"):
        reg.withdraw(2)
    assert reg.release().version == 2


# --- the real runs -------------------------------------------------------------------------------


@pytest.mark.slow
def test_require_improvement_releases_a_better_version_and_keeps_serving_over_a_worse_one(
    copy_example: Callable[[str], Path], tmp_path: Path
) -> None:
    project = copy_example("tabular-fraud")
    home = tmp_path / "dagster_home"
    # fresh trainings (no warm start) whose quality the hyperparameters set; gates an underfit model passes
    edit(project, SPEC, "    warm_start: release", "    warm_start: none")
    edit(project, SPEC, "accuracy: {min: 0.7}", "accuracy: {min: 0.6}")
    edit(project, SPEC, "roc_auc: {min: 0.75}", "roc_auc: {min: 0.55}")
    edit(project, SPEC, "{require_improvement: {accuracy: 0}}", "{require_improvement: {roc_auc: 0}}")
    edit(project, SPEC, GOOD, UNDERFIT)
    registry = ModelRegistry(str(project / ".mlops" / "artifacts"), "local", NAME)

    # v1 underfits; nothing served before it, so it serves
    code, output = materialize(project, home)
    assert code == 0, output
    assert registry.release().version == 1
    assert latest(home, "evaluate")["compared_with"] == "none"

    # v2 trains well: it beats v1 on the same eval records and is released
    edit(project, SPEC, UNDERFIT, GOOD)
    code, output = materialize(project, home)
    assert code == 0, output
    trained, evaluated = latest(home, "train"), latest(home, "evaluate")
    assert trained["version"] == 2 and trained["baseline_version"] == 1
    assert trained["baseline_roc_auc"] == registry.get(1).metrics["roc_auc"]  # v1 scored again on the same records
    assert evaluated["improved"] is True and evaluated["roc_auc"] > evaluated["serving_roc_auc"]
    assert registry.release().version == 2 and latest(home, "deploy")["released"] is True

    # v3 underfits again: its gates pass but it does not beat v2, so v2 goes on serving
    edit(project, SPEC, GOOD, UNDERFIT)
    code, output = materialize(project, home)
    assert code == 0 and "run succeeded" in output, output
    assert latest(home, "train")["version"] == 3
    deployed = latest(home, "deploy")
    assert deployed["released"] is False and deployed["version"] == 2 and deployed["candidate_version"] == 3
    v2, v3 = registry.get(2).metrics["roc_auc"], registry.get(3).metrics["roc_auc"]
    assert v3 < v2
    assert deployed["kept_reason"] == (
        f"kept version 2: candidate 3 does not beat serving 2: roc_auc {v3:.4f} <= serving {v2:.4f}"
    )
    assert registry.release().version == 2
    assert "kept version 2: candidate 3" in output  # `mlops materialize` says why

    code, model = status(project, home)
    assert code == 0 and (model["serving"], model["expected"], model["state"]) == (2, 2, "in sync")
    assert model["kept"] == deployed["kept_reason"]
    text = mlops("status", project, "--env", "local", "--dagster-home", home).output
    assert "kept version 2: candidate 3 does not beat serving 2" in text

    # a hand rollback to v1: v2 is what the gates chose, so status says out of sync and exits 1
    assert (
        mlops("rollback", NAME, "--path", project, "--env", "local", "--to", "1", "--dagster-home", home).exit_code == 0
    )
    code, model = status(project, home)
    assert code == 1 and (model["serving"], model["expected"]) == (1, 2)
    # nothing released while a version passed
    Path(registry.release_path).unlink()
    code, model = status(project, home)
    assert code == 1 and model["reason"] == "nothing serves, but version 2 passed its gates"


TRUNCATE = """    training.save_model(
        engine,"""


@pytest.mark.slow
def test_a_version_that_fails_its_health_check_is_rolled_back_and_never_answers(
    copy_example: Callable[[str], Path], tmp_path: Path
) -> None:
    project = copy_example("tabular-fraud")
    home = tmp_path / "dagster_home"
    code, output = materialize(project, home)
    assert code == 0, output
    registry = ModelRegistry(str(project / ".mlops" / "artifacts"), "local", NAME)
    assert registry.release().version == 1

    # a trainer bug: the weights it saves are cut short; metrics were computed before, so v2 passes its gates
    trainer = project / "trainer" / "train.py"
    text = trainer.read_text()
    assert "    training.finish(env, dist, metrics)\n" in text
    trainer.write_text(
        text.replace(
            "    training.finish(env, dist, metrics)\n",
            "    if dist.main:\n"
            "        weights = env.output_dir / 'model' / 'pytorch_model.bin'\n"
            "        weights.write_bytes(weights.read_bytes()[:100])\n"
            "    training.finish(env, dist, metrics)\n",
        )
    )
    from mlops.commands.serving import served_models
    from mlops.pipeline import validate

    state = ServingApp(served_models(validate(project, ["local"]), "local"), project, poll_seconds=0.05)
    versions: list[str] = []
    failures: list[str] = []
    stop = threading.Event()
    instance = {"amount": 12.5, "merchant_category": "grocery", "hour": 14, "distance_km": 3.0, "card_present": True}
    with ServerThread(state.app) as server:

        def load() -> None:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                while not stop.is_set():
                    r = client.post(f"/v1/models/{NAME}:predict", json={"instances": [instance]})
                    if r.status_code != 200:
                        failures.append(r.text)
                    versions.append(r.headers.get("x-model-version", ""))

        worker = threading.Thread(target=load)
        worker.start()
        try:
            code, output = materialize(project, home)
        finally:
            stop.set()
            worker.join()
        health = httpx.get(f"{server.url}/health").json()["models"][NAME]
    assert code == 1 and "run FAILED" in output, output
    # `mlops materialize` says why deploy failed
    assert "fraud-detector: version 2 failed its health check and rolled back to version 1" in output
    assert registry.get(2).lineage  # the broken version was registered...
    release = registry.release()
    assert (release.version, release.previous, release.reason) == (1, 2, "health check failed")  # ...and rolled back
    log = (home / "logs" / "materialize.log").read_text()
    assert "version 2 failed its health check and rolled back to version 1" in log
    assert failures == [] and versions and set(versions) == {"1"}  # v2 never answered a request
    assert health["version"] == 1
    assert latest(home, "deploy")["version"] == 1  # the last successful deploy stands

    code, model = status(project, home)
    assert code == 0 and (model["serving"], model["expected"]) == (1, 1)
    assert "version 2 passed its gates but failed its health check" in model["reason"]


# --- the LLM path: the trainer scores the serving adapter on the same eval rows -------------------

LLM_ROOT = EXAMPLES / "llm-support"


def test_the_llm_trainer_scores_the_serving_adapter_on_the_eval_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    import torch.distributed as dist
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from mlops.contract import LLM_EVAL_METRICS
    from mlops.pipeline import validate
    from mlops.runtime.training import llm
    from mlops.runtime.training.trainer import Dist, read_rows
    from mlops.targets.dagster import model_data

    monkeypatch.chdir(LLM_ROOT)  # the local base is a project path, as the trainer sees it
    [m] = validate(LLM_ROOT, ["local"]).models
    ft = llm.FineTune.from_dict({**model_data(m)["finetune"], "max_new_tokens": 4})
    tokenizer = llm.load_tokenizer(ft)
    # a serving version as the trainer saves it: an adapter (untrained: LoRA's B is 0), tokenizer, prompt
    folder = tmp_path / "model"
    get_peft_model(AutoModelForCausalLM.from_pretrained(ft.base), llm.lora_config(ft.lora)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "prompt.json").write_text(json.dumps(ft.prompt.to_dict()))
    rows = read_rows(LLM_ROOT / "data" / "tickets" / "eval.jsonl")[:3]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        one = Dist(0, 1)
        scored = llm.score_baseline(folder, tokenizer, ft, rows, one, {})
        base = llm.evaluate(AutoModelForCausalLM.from_pretrained(ft.base), tokenizer, ft, rows, one, 0)
    finally:
        dist.destroy_process_group()
    assert set(base) == set(LLM_EVAL_METRICS)  # what rule E101 lets require_improvement compare on llm-finetune
    assert set(scored) == {f"baseline_{metric}" for metric in LLM_EVAL_METRICS}
    # a zero adapter changes nothing: the version loaded on its base scores as the base does
    for metric in LLM_EVAL_METRICS:
        assert scored[f"baseline_{metric}"] == pytest.approx(base[metric], rel=1e-5), metric
