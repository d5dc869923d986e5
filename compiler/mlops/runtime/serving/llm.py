"""LLM versions, loaded with transformers (+ PEFT for adapters), generating on the CPU or a GPU.

A version's `model/` is what the llm-finetune trainer saved: a PEFT adapter
(`adapter_config.json` + `adapter_model.safetensors`) or a whole checkpoint, with the tokenizer
and `prompt.json` (the prompt the version was trained with). An adapter's base is its
`base_model_name_or_path` as a local folder (absolute, or inside the project); nothing is ever
downloaded (HF_HUB_OFFLINE is set while loading).

Requests are formatted the way training formatted examples (mlops.runtime.prompt): the user's
text fills the template's one field (a template of several fields takes the user's text as a
JSON object of them), then the tokens are [bos] + the rendered text, as the trainer encodes
them; the generated text is decoded without special tokens, leading whitespace dropped.
One generation runs at a time per loaded version; the others wait (`vllm:num_requests_waiting`).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.runtime.registry import ModelRegistry, Version
from mlops.runtime.serving.errors import RequestError, ServingError

PROMPT_FILE = "prompt.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


@dataclass(frozen=True)
class Sampling:
    max_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...]
    seed: int | None


class _Prompt:
    """The version's prompt.json through mlops.runtime.prompt; without one, the text as sent."""

    def __init__(self, data: Mapping[str, Any] | None):
        self.prompt = None
        if data is not None:
            from mlops.runtime.prompt import Prompt

            self.prompt = Prompt.from_dict(data)

    @property
    def bos(self) -> bool:
        return self.prompt is None or self.prompt.format != "chat"

    def render(self, text: str, tokenizer: Any) -> str:
        if self.prompt is None:
            return text
        from mlops.runtime.prompt import PromptError

        names = sorted(self.prompt.fields)
        if len(names) <= 1:
            record = {names[0] if names else "prompt": text}
        else:
            try:
                record = json.loads(text)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                raise RequestError(
                    400, f"this model's prompt takes the fields {', '.join(names)}: send them as a JSON object"
                )
        try:
            return self.prompt.render(record, tokenizer_chat_template=getattr(tokenizer, "chat_template", None))
        except PromptError as exc:
            raise RequestError(400, str(exc)) from exc


class LLMModel:
    """One registered version, loaded: tokenizer, model, prompt, context length."""

    def __init__(self, name: str, version: Version, model_dir: Path, project_root: Path, max_model_len: int | None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = name
        self.version = version
        adapter = (model_dir / "adapter_config.json").is_file()
        before = os.environ.get("HF_HUB_OFFLINE")
        os.environ["HF_HUB_OFFLINE"] = "1"  # a missing base is an error, never a download
        try:
            if adapter:
                from peft import PeftModel

                self.base_path = _base_folder(model_dir, project_root)
                base = AutoModelForCausalLM.from_pretrained(self.base_path, dtype=torch.float32)
                self.model = PeftModel.from_pretrained(base, str(model_dir))
            else:
                self.base_path = model_dir
                self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
            tok_dir = model_dir if any((model_dir / f).is_file() for f in TOKENIZER_FILES) else self.base_path
            self.tokenizer = AutoTokenizer.from_pretrained(tok_dir)
        except (OSError, ValueError) as exc:
            raise ServingError(f"{name} version {version.number}: cannot load the model: {exc}") from exc
        finally:
            if before is None:
                os.environ.pop("HF_HUB_OFFLINE", None)
            else:
                os.environ["HF_HUB_OFFLINE"] = before
        self.model.eval()
        prompt_file = model_dir / PROMPT_FILE
        self.prompt = _Prompt(json.loads(prompt_file.read_text()) if prompt_file.is_file() else None)
        config = self.model.config
        self.max_model_len = int(max_model_len or getattr(config, "max_position_embeddings", 0) or 2048)
        self.root = str(self.base_path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"mlops-gen-{name}")
        self._count_lock = threading.Lock()
        self.waiting = 0
        self.running = 0

    @classmethod
    def load(cls, registry: ModelRegistry, version: Version, project_root: Path, max_model_len: int | None) -> LLMModel:
        return cls(registry.model, version, registry.local_copy(version), project_root, max_model_len)

    # --- prompts -----------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """Token ids of the user's text in the version's prompt, as the trainer encodes examples."""
        rendered = self.prompt.render(text, self.tokenizer)
        bos = self.tokenizer.bos_token_id
        ids = self.tokenizer(rendered, add_special_tokens=False)["input_ids"]
        return ([bos] if bos is not None and self.prompt.bos else []) + list(ids)

    def check_length(self, prompt_ids: Sequence[int], max_tokens: int | None, kind: str) -> int:
        """max_tokens to use; a 400 like vLLM's when prompt + completion exceed the context."""
        room = self.max_model_len - len(prompt_ids)
        wanted = room if max_tokens is None else max_tokens
        if room <= 0 or wanted > room:
            raise RequestError(
                400,
                f"This model's maximum context length is {self.max_model_len} tokens. However, you requested"
                f" {len(prompt_ids) + max(wanted, 0)} tokens ({len(prompt_ids)} in the {kind}, {max(wanted, 0)} in the"
                " completion). Please reduce the length of the prompt or completion.",
                param="max_tokens" if room > 0 else kind,
            )
        return wanted

    # --- generation --------------------------------------------------------------------------

    def generate(
        self, prompt_ids: list[int], sampling: Sampling, on_token: Callable[[int], None], cancelled: threading.Event
    ) -> str:
        """Blocking: generates (one at a time per version), calls on_token per new token id, and
        returns the finish reason (stop | length)."""
        with self._count_lock:
            self.waiting += 1  # until the one generation thread takes it
        return self._executor.submit(self._generate, prompt_ids, sampling, on_token, cancelled).result()

    def _generate(
        self, prompt_ids: list[int], sampling: Sampling, on_token: Callable[[int], None], cancelled: threading.Event
    ) -> str:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList
        from transformers.generation.streamers import BaseStreamer

        with self._count_lock:
            self.waiting -= 1
            self.running += 1
        generated: list[int] = []
        tok = self.tokenizer

        class Streamer(BaseStreamer):
            first = True

            def put(self, value: Any) -> None:
                if self.first:  # generate() hands the prompt over first
                    self.first = False
                    return
                for t in value.reshape(-1).tolist():
                    generated.append(int(t))
                    on_token(int(t))

            def end(self) -> None:
                pass

        stopped = {"stop": False}

        class Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                if cancelled.is_set():
                    return torch.ones(input_ids.shape[0], dtype=torch.bool)
                if sampling.stop:
                    text = tok.decode(generated, skip_special_tokens=True)
                    if any(s in text for s in sampling.stop):
                        stopped["stop"] = True
                        return torch.ones(input_ids.shape[0], dtype=torch.bool)
                return torch.zeros(input_ids.shape[0], dtype=torch.bool)

        try:
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            ids = torch.tensor([prompt_ids], dtype=torch.long)
            options: dict[str, Any] = {
                "max_new_tokens": sampling.max_tokens,
                "do_sample": sampling.temperature > 0,
                "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                "eos_token_id": tok.eos_token_id,
                "streamer": Streamer(),
                "stopping_criteria": StoppingCriteriaList([Stop()]),
            }
            if sampling.temperature > 0:
                options.update(temperature=sampling.temperature, top_p=sampling.top_p)
            with torch.inference_mode():
                self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **options)
        finally:
            with self._count_lock:
                self.running -= 1
        ended_on_eos = bool(generated) and generated[-1] == tok.eos_token_id
        return "stop" if ended_on_eos or stopped["stop"] or len(generated) < sampling.max_tokens else "length"

    def text(self, generated: Sequence[int], stop: Sequence[str] = ()) -> str:
        """The response text of the generated ids, cut before the first stop string."""
        out = self.tokenizer.decode(list(generated), skip_special_tokens=True).lstrip()
        cut = min((out.index(s) for s in stop if s in out), default=None)
        return out if cut is None else out[:cut]

    def close(self) -> None:
        self._executor.shutdown(wait=False)


def _base_folder(model_dir: Path, project_root: Path) -> Path:
    config = json.loads((model_dir / "adapter_config.json").read_text())
    name = str(config.get("base_model_name_or_path") or "")
    for candidate in (Path(name), project_root / name):
        if name and candidate.is_dir() and (candidate / "config.json").is_file():
            return candidate
    raise ServingError(
        f"the adapter's base model {name!r} is not a local folder (absolute or inside {project_root});"
        " mlops never downloads weights: keep the base as a DVC-tracked folder of the project"
    )
