"""The official openai client against a real server on 127.0.0.1 that serves a LoRA fine-tune.

The fixture builds a tiny LlamaForCausalLM from a config (no download) with a word-level
tokenizer, fine-tunes a LoRA adapter with PEFT until it answers one support question, saves it
as the llm trainer does (adapter + tokenizer) and registers it as a version.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import torch

from mlops.runtime.monitoring.window import live_metrics
from mlops.runtime.registry import ModelRegistry
from mlops.runtime.serving import ServedModel, ServerThread, ServingApp, read_records
from mlops.runtime.training import llm
from mlops.runtime.training import trainer as training

NAME = "support-assistant"
QUESTION = "where is my order"
ANSWER = "your order ships tomorrow from the warehouse"
WORDS = sorted(set(f"{QUESTION} {ANSWER} hello please help refund broken speaker thanks a the my is".split()))
CONTEXT = 48
LORA_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def build_base(folder: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    special = ["<unk>", "<pad>", "<s>", "</s>"]
    vocab = {w: i for i, w in enumerate(special + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=CONTEXT,
        initializer_range=0.5,  # logits a frozen random head can make confident: the adapter has room to learn
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
        pad_token_id=vocab["<pad>"],
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def fine_tune(base_dir: Path, out: Path) -> None:
    """LoRA on every projection until the adapter answers QUESTION with ANSWER (greedy)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=LORA_MODULES, task_type="CAUSAL_LM"))
    prompt = [tokenizer.bos_token_id, *tokenizer(QUESTION, add_special_tokens=False)["input_ids"]]
    answer = [*tokenizer(ANSWER, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    ids = torch.tensor([prompt + answer])
    labels = torch.tensor([[-100] * len(prompt) + answer])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-2)
    torch.manual_seed(0)
    model.train()
    for _ in range(150):
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def generate(model, tokenizer, text: str) -> str:
    prompt = torch.tensor([[tokenizer.bos_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"]]])
    with torch.no_grad():
        out = model.generate(input_ids=prompt, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, prompt.shape[1] :], skip_special_tokens=True).strip()


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelRegistry, Path]:
    root = tmp_path_factory.mktemp("llm")
    base = root / "base"
    build_base(base)
    adapter = root / "out" / "model"
    fine_tune(base, adapter)
    reg = ModelRegistry(str(root / "artifacts"), "local", NAME)
    reg.register(adapter, {"eval_loss": 0.1}, {"base_model": str(base), "run_id": "r1"})
    reg.set_release(1)
    return reg, base


@pytest.fixture
def served(versions) -> Iterator[tuple[ServerThread, ServingApp, ModelRegistry]]:
    reg, base = versions
    model = ServedModel(
        NAME, "llm-finetune", reg, ("prompt", "response", "latency_ms"), None, (("when", r"\btomorrow\b"),)
    )
    state = ServingApp([model], base.parent, poll_seconds=0.05)
    with ServerThread(state.app) as server:
        yield server, state, reg


def test_the_openai_client_gets_the_adapters_answer(served, versions) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    server, state, reg = served
    _, base_dir = versions
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    assert generate(base, tokenizer, QUESTION) != ANSWER  # the base alone does not know it
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), str(reg.local_copy(reg.get(1))))
    assert generate(tuned, tokenizer, QUESTION) == ANSWER

    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="-")
    assert [m.id for m in client.models.list().data] == [NAME]
    chat = client.chat.completions.create(
        model=NAME, messages=[{"role": "user", "content": QUESTION}], temperature=0, max_tokens=12
    )
    assert chat.choices[0].message.content == ANSWER and chat.choices[0].finish_reason == "stop"
    assert chat.model == NAME and chat.usage.prompt_tokens == 5 and chat.usage.completion_tokens == 8
    completion = client.completions.create(model=NAME, prompt=QUESTION, temperature=0, max_tokens=3)
    assert (
        completion.choices[0].text == " ".join(ANSWER.split()[:3]) and completion.choices[0].finish_reason == "length"
    )

    stream = client.chat.completions.create(
        model=NAME, messages=[{"role": "user", "content": QUESTION}], temperature=0, max_tokens=12, stream=True
    )
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces) == ANSWER and len([p for p in pieces if p]) > 1  # token by token

    metrics = httpx.get(f"{server.url}/metrics").text
    assert f'vllm:time_to_first_token_seconds_count{{model_name="{NAME}"}} 3.0' in metrics
    assert f'mlops:requests_total{{model_name="{NAME}",status="200"}} 3.0' in metrics
    assert f'vllm:generation_tokens_total{{model_name="{NAME}"}} 19.0' in metrics  # 8 + 3 + 8

    state.flush_logs()
    records = read_records(reg)
    assert len(records) == 3 and [r["endpoint"] for r in records] == [
        "chat.completions",
        "completions",
        "chat.completions",
    ]
    assert records[0]["prompt"] == QUESTION
    assert records[0]["response"] == ANSWER.replace("tomorrow", "[REDACTED:when]")  # blocked before writing
    assert records[0]["redacted"] == {"response": {"when": 1}} and records[2]["response"] == records[0]["response"]
    assert all(r["version"] == 1 and r["status"] == 200 and r["latency_ms"] > 0 for r in records)


def test_bad_requests_get_a_4xx_and_nothing_is_logged(served) -> None:
    server, state, reg = served
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="-", max_retries=0)
    before = len(read_records(reg))
    long = " ".join(["please"] * (CONTEXT + 5))
    with pytest.raises(openai.BadRequestError, match="maximum context length is 48 tokens"):
        client.completions.create(model=NAME, prompt=long, max_tokens=4)
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": QUESTION}], max_tokens=100)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": QUESTION}])
    with pytest.raises(openai.BadRequestError, match="no user message"):
        client.chat.completions.create(model=NAME, messages=[{"role": "system", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": "hi"}], temperature=7)
    raw = [
        (b"{", 400),
        (b"[]", 400),
        (json.dumps({"model": NAME, "prompt": ""}).encode(), 400),
        (json.dumps({"model": NAME, "prompt": "hi", "max_tokens": -1}).encode(), 400),
        (json.dumps({"model": NAME, "prompt": "hi", "n": 3}).encode(), 400),
        (b'{"model": "' + b"x" * (2 << 20) + b'"}', 413),
    ]
    for body, status in raw:
        r = httpx.post(f"{server.url}/v1/completions", content=body, headers={"content-type": "application/json"})
        assert r.status_code == status, (body[:40], r.text)
        assert r.json()["error"]["message"]
    ok = client.completions.create(model=NAME, prompt=QUESTION, temperature=0, max_tokens=2)
    assert ok.choices[0].text == "your order"  # still serving
    state.flush_logs()
    assert len(read_records(reg)) == before + 1


def test_live_rouge_l_compares_served_answers_with_the_references_that_arrive(served) -> None:
    from rouge_score import rouge_scorer

    server, state, reg = served
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="-")
    for rid in ("live-1", "live-2", "live-3"):
        client.chat.completions.create(
            model=NAME,
            messages=[{"role": "user", "content": QUESTION}],
            temperature=0,
            max_tokens=12,
            extra_headers={"X-Request-Id": rid},
        )
    state.flush_logs()
    records = read_records(reg)
    references = {"live-1": ANSWER, "live-2": "a refund for the broken speaker is on its way"}
    feedback = [
        *({"request_id": rid, "response": text} for rid, text in references.items()),
        {"request_id": "never-served", "response": ANSWER},
        {"request_id": "live-3", "index": "not a number", "response": ANSWER},  # malformed: no key, skipped
        {"request_id": "live-3"},  # no label yet
    ]
    labeled, metrics = live_metrics("llm-finetune", records, feedback, "response")
    served_text = {r["request_id"]: r["response"] for r in records}
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    expected = [scorer.score(ref, served_text[rid])["rougeL"].fmeasure for rid, ref in references.items()]
    assert labeled == 2 and metrics == {"rouge_l": pytest.approx(sum(expected) / 2)}
    assert 0 < metrics["rouge_l"] < 1  # one answer matches its reference (but for the redaction), one does not


def lora_finetune(base: Path, rank: int = 8) -> llm.FineTune:
    return llm.FineTune.from_dict(
        {
            "method": "lora",
            "base_model": {"name": "tiny", "path": str(base)},
            "lora": {"rank": rank, "alpha": 16, "dropout": 0.0, "target_modules": LORA_MODULES},
            "sequence_length": CONTEXT,
        }
    )


def test_a_warm_start_continues_the_serving_adapter_and_a_cold_start_does_not(versions) -> None:
    from transformers import AutoTokenizer

    reg, base = versions
    serving = reg.local_copy(reg.get(1))
    tokenizer = AutoTokenizer.from_pretrained(base)
    warm = llm.load_model(lora_finetune(base), {}, warm_start=serving)
    assert generate(warm, tokenizer, QUESTION) == ANSWER  # where the serving version left off
    lora = [p for n, p in warm.named_parameters() if "lora_" in n]
    assert lora and all(p.requires_grad for p in lora)  # and it trains on
    assert llm.trainable_params(warm) == sum(p.numel() for p in lora)
    cold = llm.load_model(lora_finetune(base), {})
    assert generate(cold, tokenizer, QUESTION) != ANSWER  # fresh adapters start as the base
    with pytest.raises(training.ContractError, match="the spec asks for"):
        llm.load_model(lora_finetune(base, rank=4), {}, warm_start=serving)
