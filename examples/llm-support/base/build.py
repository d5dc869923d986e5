"""Build the local base model: a tokenizer trained offline and a tiny Llama pre-trained on corpus.txt.

The local environment fine-tunes this model the way dev and prod fine-tune meta-llama/Llama-3.1-8B:
the same architecture class (LlamaForCausalLM, so the same q_proj ... down_proj module names
that the spec's LoRA target_modules name), the same loading code (`from_pretrained` of a folder
written by `save_pretrained`), only far smaller. Deterministic: one thread, fixed seeds, so a
rebuild writes the same weights on the same torch version.

    python build.py             # from this folder (about 20 s on one core); writes tiny-llama/
    dvc add tiny-llama && dvc push

The spec's local overlay records the architecture numbers printed at the end; a test keeps
them equal to what this folder holds.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

HERE = Path(__file__).resolve().parent
OUT = HERE / "tiny-llama"
SEED = 0
VOCAB = 1024
BLOCK = 128  # tokens per pre-training sequence
BATCH = 16
STEPS = 400
LR = 3e-3
SPECIAL = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>"}
# a minimal chat template in the Hugging Face format, for specs that choose prompt.format: chat
CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant:{% endif %}"
)
ARCHITECTURE = {
    "hidden_size": 64,
    "intermediate_size": 192,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,  # grouped-query attention, as in Llama 3.1
    "max_position_embeddings": 512,
    "tie_word_embeddings": True,
}


def train_tokenizer(text: str) -> PreTrainedTokenizerFast:
    """Byte-level BPE (any character can be encoded), trained on the corpus only."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=list(SPECIAL.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(text.split("\n\n"), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def pretrain(tokenizer: PreTrainedTokenizerFast, text: str) -> tuple[LlamaForCausalLM, list[float]]:
    ids: list[int] = []
    for paragraph in text.split("\n\n"):
        ids += [tokenizer.bos_token_id, *tokenizer(paragraph)["input_ids"], tokenizer.eos_token_id]
    blocks = torch.tensor(ids[: len(ids) // BLOCK * BLOCK]).view(-1, BLOCK)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **ARCHITECTURE,
    )
    model = LlamaForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / STEPS)))
    order = random.Random(SEED)
    losses = []
    model.train()
    for _ in range(STEPS):
        batch = blocks[order.sample(range(len(blocks)), BATCH)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(float(loss))
    return model.eval(), losses


def main() -> None:
    start = time.monotonic()
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    text = (HERE / "corpus.txt").read_text(encoding="utf-8")
    tokenizer = train_tokenizer(text)
    model, losses = pretrain(tokenizer, text)
    model.save_pretrained(OUT, safe_serialization=True)
    tokenizer.save_pretrained(OUT)
    c = model.config
    numbers = {
        "params": sum(p.numel() for p in model.parameters()),
        "hidden_size": c.hidden_size,
        "num_layers": c.num_hidden_layers,
        "kv_size": c.num_key_value_heads * (c.hidden_size // c.num_attention_heads),
        "intermediate_size": c.intermediate_size,
        "vocab_size": c.vocab_size,
        "largest_layer_params": c.vocab_size * c.hidden_size,
    }
    print(json.dumps(numbers))
    print(f"loss {losses[0]:.3f} -> {sum(losses[-20:]) / 20:.3f} in {STEPS} steps, {time.monotonic() - start:.1f} s")


if __name__ == "__main__":
    main()
