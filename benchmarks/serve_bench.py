"""The local server under load: tabular predictions/s and latency, tiny-LLM tokens/s, release-switch time.

    python benchmarks/serve_bench.py              # 5 s per measurement
    python benchmarks/serve_bench.py --seconds 10

The server runs in its own process (uvicorn, as `mlops serve` runs it) over a temporary
registry holding two versions of the tabular example's model (its trainer's build_model, two
seeds) and a tiny Llama + LoRA adapter built from a config (no download). The load comes from
this process: keep-alive HTTP/1.1 connections on asyncio, one request in flight per connection,
each request one KServe V1 instance. Printed: predictions/s, p50/p99 at 1 and 32 connections
with the goal (>= 1,000/s with p99 <= 50 ms at 32) as a ratio; LLM completion tokens/s and time
to first token; the time from writing release.json to the server answering with the new
version, and the requests that failed meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "compiler"))
EXAMPLE = ROOT / "examples" / "tabular-fraud"
TRAINER = EXAMPLE / "trainer" / "train.py"
TABULAR, LLM = "fraud-detector", "support-assistant"
GOAL_RPS, GOAL_P99_MS = 1000.0, 50.0
INSTANCE = {"amount": 42.5, "merchant_category": "online", "hour": 23, "distance_km": 120.0, "card_present": False}


def build_registry(folder: Path) -> str:
    import torch

    from mlops.runtime.registry import ModelRegistry
    from mlops.runtime.registry.signature import infer
    from mlops.runtime.training.trainer import read_rows

    spec = importlib.util.spec_from_file_location("fraud_trainer", TRAINER)
    trainer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trainer)
    rows = read_rows(EXAMPLE / "data" / "transactions.csv")
    x = torch.tensor([trainer.features(r) for r in rows], dtype=torch.float32)
    store = str(folder / "artifacts")
    reg = ModelRegistry(store, "local", TABULAR)
    for seed in (1, 2):
        torch.manual_seed(seed)
        model = folder / f"tab{seed}"
        model.mkdir()
        torch.save(trainer.build_model().state_dict(), model / "pytorch_model.bin")
        scaling = {"feature_mean": x.mean(0).tolist(), "feature_std": x.std(0).clamp_min(1e-6).tolist()}
        (model / "config.json").write_text(json.dumps(scaling))
        reg.register(model, {}, {}, [TRAINER], infer(rows, "is_fraud").to_dict())
    reg.set_release(1)

    from peft import LoraConfig, get_peft_model
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = [
        "the",
        "a",
        "order",
        "ships",
        "today",
        "tomorrow",
        "where",
        "is",
        "my",
        "refund",
        "please",
        "help",
        "speaker",
        "broken",
        "thanks",
    ]
    vocab = {w: i for i, w in enumerate(["<unk>", "<pad>", "<s>", "</s>", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    base = folder / "base"
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, bos_token_id=2, eos_token_id=3, pad_token_id=1,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(base)
    tokenizer.save_pretrained(base)
    lora = LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM")
    adapter = folder / "adapter"
    get_peft_model(AutoModelForCausalLM.from_pretrained(base), lora).save_pretrained(adapter)
    llm = ModelRegistry(store, "local", LLM)
    llm.register(adapter, {}, {})
    llm.set_release(1)
    return store


def run_server(store: str, root: str, port: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from mlops.runtime.registry import ModelRegistry
    from mlops.runtime.serving import ServedModel, ServingApp, serve

    models = [
        ServedModel(TABULAR, "tabular-classification", ModelRegistry(store, "local", TABULAR), ("amount",), "score"),
        ServedModel(LLM, "llm-finetune", ModelRegistry(store, "local", LLM), ("prompt", "response")),
    ]
    serve(ServingApp(models, Path(root), poll_seconds=0.05).app, port, log_level="warning")


# --- a small keep-alive HTTP/1.1 client: the load generator must cost less than the server ---------


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def load(port: int, clients: int, seconds: float, path: str, body: bytes) -> tuple[list[float], int]:
    latencies: list[float] = []
    failed = 0
    end = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal failed
        conn = Connection(port)
        await conn.open()
        while time.perf_counter() < end:
            t = time.perf_counter()
            status, _ = await conn.post(path, body)
            latencies.append(time.perf_counter() - t)
            failed += status != 200
        conn.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, failed


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] if len(values) > 1 else values[0]


def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: b\r\n\r\n")
                if b" 200 " in s.recv(200):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("server did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = build_registry(Path(tmp))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = multiprocessing.get_context("spawn").Process(target=run_server, args=(store, tmp, port))
        proc.start()
        try:
            wait_ready(port)
            report(port, store, args.seconds)
        finally:
            proc.terminate()
            proc.join(30)


def report(port: int, store: str, seconds: float) -> None:
    from mlops.runtime.registry import ModelRegistry

    predict = f"/v1/models/{TABULAR}:predict"
    body = json.dumps({"instances": [INSTANCE]}).encode()
    print(f"server pid: separate process; cores: {os.cpu_count()}; {seconds:g} s per measurement")
    asyncio.run(load(port, 8, 1.0, predict, body))  # warm-up
    results = {}
    for clients in (1, 32):
        lat, failed = asyncio.run(load(port, clients, seconds, predict, body))
        rps = len(lat) / seconds
        p50, p99 = quantile(lat, 0.5) * 1000, quantile(lat, 0.99) * 1000
        results[clients] = (rps, p99)
        print(
            f"tabular, {clients:>2} clients: {rps:8.0f} predictions/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  failed {failed}"
        )
    rps, p99 = results[32]
    print(
        f"goal at 32 clients: {rps / GOAL_RPS:.2f}x the {GOAL_RPS:.0f}/s goal, p99 {p99:.1f} ms vs {GOAL_P99_MS:.0f} ms ({'met' if rps >= GOAL_RPS and p99 <= GOAL_P99_MS else 'NOT met'})"
    )

    completion = json.dumps({"model": LLM, "prompt": "where is my order", "max_tokens": 64, "temperature": 0}).encode()
    conn_lat, tokens = [], 0

    async def llm_run() -> None:
        nonlocal tokens
        conn = Connection(port)
        await conn.open()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t = time.perf_counter()
            status, out = await conn.post("/v1/completions", completion)
            conn_lat.append(time.perf_counter() - t)
            tokens += json.loads(out)["usage"]["completion_tokens"] if status == 200 else 0
        conn.close()

    asyncio.run(llm_run())
    print(f"tiny LLM (2 layers, hidden 64, LoRA r=8): {tokens / sum(conn_lat):.0f} completion tokens/s, "
          f"{len(conn_lat)} completions of ~{tokens / max(len(conn_lat), 1):.0f} tokens, p50 {quantile(conn_lat, 0.5) * 1000:.1f} ms")  # fmt: skip

    # release switch under load: write release.json, time until the server answers with version 2
    reg = ModelRegistry(store, "local", TABULAR)

    async def switch() -> tuple[float, int, int]:
        stop = asyncio.Event()
        failed = answered = 0
        before: bytes | None = None
        switched_at: float | None = None
        started = 0.0

        async def client() -> None:
            nonlocal failed, answered, before, switched_at
            conn = Connection(port)
            await conn.open()
            while not stop.is_set():
                status, out = await conn.post(predict, body)
                answered += 1
                if status != 200:
                    failed += 1
                elif before is None:
                    before = out
                elif out != before and switched_at is None and started:
                    switched_at = time.perf_counter()
            conn.close()

        tasks = [asyncio.create_task(client()) for _ in range(8)]
        await asyncio.sleep(0.5)
        started = time.perf_counter()
        await asyncio.to_thread(reg.set_release, 2)
        while switched_at is None and time.perf_counter() - started < 60:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*tasks)
        return (switched_at or float("nan")) - started, failed, answered

    took, failed, answered = asyncio.run(switch())
    print(f"release switch under 8 clients: {took * 1000:.0f} ms from release.json to version 2's answers "
          f"(poll 50 ms); {failed} of {answered} requests failed")  # fmt: skip


if __name__ == "__main__":
    main()
