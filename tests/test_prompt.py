"""The prompt section: one function formats training, evaluation and serving input; its errors are
diagnostics at the spec's line; its hash moves exactly the assets that read it; `mlops plan` shows it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlops.pipeline import validate
from mlops.runtime.prompt import Prompt, PromptError
from mlops.targets.dagster import code_versions
from tests.conftest import EXAMPLES
from tests.gitops_repo import artifact, commit, git, init, plan, row
from tests.helpers import mlops

LLM = "models/support-assistant.yaml"
RECORD = {"prompt": "Where is order A1?", "response": "It ships today."}


def test_text_prompt_is_the_system_prompt_then_the_template() -> None:
    p = Prompt(system="Be brief.", template="Customer: {{ prompt }}\nAgent:")
    assert p.render(RECORD) == "Be brief.\n\nCustomer: Where is order A1?\nAgent:"
    assert p.target(RECORD) == "It ships today."
    assert Prompt.from_dict(p.to_dict()) == p
    assert Prompt(template="{{ prompt }}").render(RECORD) == "Where is order A1?"


def test_chat_prompt_goes_through_the_tokenizers_chat_template() -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(EXAMPLES / "llm-support" / "base" / "tiny-llama")
    p = Prompt(system="Be brief.", template="{{ prompt }}", format="chat")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is order A1?"}]
    expected = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert p.render(RECORD, tokenizer_chat_template=tok.chat_template) == expected
    with pytest.raises(PromptError, match="chat template"):
        p.render(RECORD)  # no chat template anywhere: said, not guessed


def test_missing_fields_and_unsafe_access_are_errors_not_empty_text() -> None:
    with pytest.raises(PromptError, match="'customer' is undefined"):
        Prompt(template="{{ customer }}").render(RECORD)
    with pytest.raises(PromptError, match="unsafe"):
        Prompt(template="{{ prompt.__class__.__mro__ }}").render(RECORD)
    with pytest.raises(PromptError, match="no response field 'answer'"):
        Prompt(response="answer").target(RECORD)


def _spec_with(root: Path, old: str, new: str) -> None:
    spec = root / LLM
    text = spec.read_text()
    assert old in text
    spec.write_text(text.replace(old, new, 1))


TEMPLATE = '    template: "Customer: {{ prompt }}\\nAgent:"\n'


def test_a_template_syntax_error_points_at_its_line_in_the_spec(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    _spec_with(root, TEMPLATE, "    template: |\n      Customer: {{ prompt }}\n      {% if prompt %}Agent:\n")
    result = mlops("validate", root)
    lines = (root / LLM).read_text().splitlines()
    line = next(i for i, t in enumerate(lines, 1) if "{% if prompt %}" in t)
    assert result.exit_code == 1
    # Jinja2 reports the unclosed block on template line 2: that spec line, at the template text's column
    assert f"{LLM}:{line}:7: error T509 prompt.template is not a valid Jinja2 template (template line 2)" in (
        result.output
    )
    assert "Traceback" not in result.output


def test_a_field_the_data_does_not_have_is_a_diagnostic_on_the_template(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    _spec_with(root, TEMPLATE, '    template: "{{ customer_name }} asks: {{ prompt }}"\n')
    result = mlops("validate", root)
    line = next(i for i, t in enumerate((root / LLM).read_text().splitlines(), 1) if "customer_name" in t)
    assert result.exit_code == 1
    assert f"{LLM}:{line}:15: error T510 " in result.output
    assert "prompt.template reads 'customer_name', which the training data" in result.output
    assert "the records have: category, prompt, response" in result.output


def test_a_prompt_change_moves_train_evaluate_and_deploy_only(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    before = {m.environment.name: code_versions(m) for m in validate(root).models}
    _spec_with(root, "Answer in one or two sentences", "Answer in one sentence")
    after = {m.environment.name: code_versions(m) for m in validate(root).models}
    for env, versions in before.items():
        changed = {a for a in versions if versions[a] != after[env][a]}
        assert changed == {"train", "evaluate", "deploy"}, env  # prepare reads the template's fields only


def test_plan_shows_a_prompt_change_as_a_diff(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    assert mlops("compile", root).exit_code == 0
    init(root)
    git(root, "checkout", "-q", "-b", "pr")
    _spec_with(root, "Answer in one or two sentences", "Answer in one sentence")
    assert mlops("compile", root).exit_code == 0
    commit(root, "shorter answers")
    code, data = plan(root, "--base", "main", "--head", "pr")
    assert code == 0
    # one code location per environment: its module and payload (the models' names) stay, the
    # model's own data file changes, in the model's row
    shared = [a["path"] for r in data["rows"] if r["model"] is None for a in r["artifacts"]]
    assert not [path for path in shared if "/dagster/" in path]
    changed = artifact(row(data, "support-assistant", "prod"), "dagster")
    assert changed["path"] == "prod/dagster/models/support-assistant.json"
    lines = [line[:1] + line[1:].strip() for line in changed["diff"].splitlines()]
    assert '-"system": "You are Acme\'s support agent. Answer in one or two sentences and name the order.",' in lines
    assert '+"system": "You are Acme\'s support agent. Answer in one sentence and name the order.",' in lines
