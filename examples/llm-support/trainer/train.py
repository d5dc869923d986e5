"""support-assistant trainer for the local environment: a tiny character-level transformer LM,
trained from scratch with the rendered DeepSpeed config on the ticket jsonl (prompt -> response).

It stands in for the LoRA fine-tune of Llama-3.1-8B that the dev and prod images run: same
contract (mlops.runtime.training.trainer), same data, same metrics, a model small enough for a CPU.

    MLOPS_DEEPSPEED_CONFIG=rendered/local/deepspeed/support-assistant.json \
    MLOPS_TRAIN_DATA=data/tickets/train.jsonl MLOPS_EVAL_DATA=data/tickets/eval.jsonl \
    MLOPS_OUTPUT_DIR=/tmp/support torchrun --nproc_per_node 2 trainer/train.py

Writes metrics.json (eval_loss: nats per response character, rouge_l of greedy answers,
train_loss_first, train_loss_last, steps) and model/ to $MLOPS_OUTPUT_DIR.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mlops.runtime.training import trainer as training

# The architecture the spec's local base_model describes (hidden_size, num_layers, params).
VOCAB = 128  # ASCII; the control characters below mark the structure
PAD, SEP, EOS = 0, 2, 3
SEQ_LEN = 192  # spec: training.sequence_length
HIDDEN = 64
LAYERS = 2
HEADS = 4
SEED = 0
IGNORE = -100


def encode(text: str) -> list[int]:
    """ASCII codes; anything else becomes '?', control characters a space (they are reserved)."""
    out = []
    for ch in text:
        code = ord(ch)
        out.append(63 if code >= VOCAB else 32 if code < 32 else code)
    return out


def decode(ids: list[int]) -> str:
    return "".join(chr(i) for i in ids if 32 <= i < VOCAB)


def example(row: dict[str, Any]) -> tuple[list[int], list[int]]:
    """Tokens `prompt SEP response EOS` and labels that score the response only, both SEQ_LEN + 1 long."""
    prompt = [*encode(row["prompt"]), SEP]
    answer = [*encode(row["response"]), EOS]
    ids = (prompt + answer)[: SEQ_LEN + 1]
    labels = ([IGNORE] * len(prompt) + answer)[: SEQ_LEN + 1]
    pad = SEQ_LEN + 1 - len(ids)
    return ids + [PAD] * pad, labels + [IGNORE] * pad


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(HIDDEN)
        self.qkv = nn.Linear(HIDDEN, 3 * HIDDEN)
        self.proj = nn.Linear(HIDDEN, HIDDEN)
        self.ln2 = nn.LayerNorm(HIDDEN)
        self.fc = nn.Linear(HIDDEN, 4 * HIDDEN)
        self.out = nn.Linear(4 * HIDDEN, HIDDEN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, HEADS, HIDDEN // HEADS).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, HIDDEN)
        x = x + self.proj(attn)
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class TinyLM(nn.Module):
    """GPT-style decoder: token + position embeddings, LAYERS blocks, output tied to the token embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.tok = nn.Embedding(VOCAB, HIDDEN)
        self.pos = nn.Embedding(SEQ_LEN, HIDDEN)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.ln = nn.LayerNorm(HIDDEN)
        for m in self.modules():  # GPT-2 initialisation: small weights keep the first logits near uniform
            if isinstance(m, nn.Linear | nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        for block in self.blocks:
            x = block(x)
        return self.ln(x) @ self.tok.weight.T


def build_model() -> nn.Module:
    return TinyLM()


def main() -> None:
    import deepspeed

    training.setup_logging()
    env = training.TrainEnv.from_env()
    dist = training.init_distributed()
    training.seed_everything(SEED)
    config = env.config()

    rows = training.read_rows(env.train_data)
    pairs = [example(r) for r in rows]
    ids = torch.tensor([p[0] for p in pairs])
    labels = torch.tensor([p[1] for p in pairs])

    model = build_model()
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config=config)
    device = engine.device

    def loss_of(indices: list[int]) -> torch.Tensor:
        batch, target = ids[indices].to(device), labels[indices].to(device)
        logits = engine(batch[:, :-1]).float()
        return F.cross_entropy(logits.reshape(-1, VOCAB), target[:, 1:].reshape(-1), ignore_index=IGNORE)

    fitted = training.fit(engine, loss_of, len(rows), config, dist, seed=SEED)
    eval_rows = training.read_rows(env.eval_data or env.train_data)
    metrics = {**fitted.metrics, **evaluate(engine, eval_rows, dist)}
    training.save_model(
        engine,
        env,
        {"architecture": "tiny-char-lm", "vocab": VOCAB, "seq_len": SEQ_LEN, "hidden": HIDDEN, "layers": LAYERS},
    )
    training.finish(env, dist, metrics)


def evaluate(engine: Any, rows: list[dict[str, Any]], dist: training.Dist) -> dict[str, float]:
    """eval_loss and ROUGE-L of greedy answers, each rank on its share of the rows, summed over ranks.

    Every rank runs the same number of forward passes, because ZeRO-3 forwards are collective.
    """
    mine = rows[dist.rank :: dist.world_size] or rows[:1]
    counted = len(rows[dist.rank :: dist.world_size])
    device = engine.device
    engine.eval()
    with torch.no_grad():
        pairs = [example(r) for r in mine]
        batch = torch.tensor([p[0] for p in pairs], device=device)
        target = torch.tensor([p[1] for p in pairs], device=device)[:, 1:]
        logits = engine(batch[:, :-1]).float()
        nll = F.cross_entropy(logits.reshape(-1, VOCAB), target.reshape(-1), ignore_index=IGNORE, reduction="sum")
        tokens = int((target != IGNORE).sum()) if counted else 0
        longest = max(len(encode(r["prompt"])) for r in rows)
        answers = generate(engine, [[*encode(r["prompt"]), SEP] for r in mine], longest)
    scores = [training.rouge_l(a, r["response"]) for a, r in zip(answers, mine, strict=True)][:counted]
    nll_sum, token_sum, rouge_sum, n = training.all_sum([float(nll) if counted else 0.0, tokens, sum(scores), counted])
    return {"eval_loss": nll_sum / token_sum, "rouge_l": rouge_sum / n}


def generate(engine: Any, prompts: list[list[int]], longest_prompt: int) -> list[str]:
    """Greedy decoding up to EOS; every rank steps until all ranks are done (ZeRO-3 forwards are collective)."""
    seqs = [list(p) for p in prompts]
    done = [False] * len(seqs)
    for _ in range(SEQ_LEN - longest_prompt - 1):
        if training.all_sum([done.count(False)])[0] == 0:
            break
        width = max(len(s) for s in seqs)
        batch = torch.tensor([s + [PAD] * (width - len(s)) for s in seqs], device=engine.device)
        logits = engine(batch)  # right padding is harmless: attention is causal
        for i, s in enumerate(seqs):
            if done[i] or len(s) >= SEQ_LEN:
                done[i] = True
                continue
            token = int(logits[i, len(s) - 1].argmax())
            if token == EOS:
                done[i] = True
            else:
                s.append(token)
    return [decode(s[len(p) :]) for s, p in zip(seqs, prompts, strict=True)]


if __name__ == "__main__":
    main()
