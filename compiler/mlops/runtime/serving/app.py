"""The ASGI app: OpenAI-compatible LLM endpoints, KServe V1 tabular predictions, /health, /metrics.

    GET  /health                          200 when every model serves a release, else 503; JSON per model
    GET  /metrics                         Prometheus text (names in mlops.serving_metrics)
    GET  /v1/models                       OpenAI list of the LLMs served (id = the model's name)
    GET  /v1/models/NAME                  one model: version, ready (KServe V1 readiness, OpenAI retrieve)
    POST /v1/models/NAME:predict          KServe V1: {"instances": [{feature: value}, ...]} -> {"predictions": [...]}
    POST /v1/completions                  OpenAI completions (stream: true -> server-sent events, like vLLM)
    POST /v1/chat/completions             OpenAI chat completions (stream included)

Refused requests get a 4xx with an OpenAI-style error body and are not written to the inference
log; the server keeps serving. Every answered request carries an X-Request-Id header.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from mlops.runtime.registry.store import now
from mlops.runtime.serving.errors import RequestError
from mlops.runtime.serving.log import InferenceLog, NoLog
from mlops.runtime.serving.metrics import CONTENT_TYPE, Metrics
from mlops.runtime.serving.slots import Handle, ServedModel, Slot, follow

MAX_BODY_BYTES = 1 << 20
MAX_INSTANCES = 10_000
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class ServingApp:
    """The state behind the routes: one slot per model, metrics, the release watchers."""

    def __init__(
        self,
        models: Sequence[ServedModel],
        project_root: Path,
        *,
        poll_seconds: float = 0.5,
        max_body_bytes: int = MAX_BODY_BYTES,
        log_flush_seconds: float = 1.0,
        log_requests: bool = True,
    ) -> None:
        names = [m.name for m in models]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique: {names}")
        self.project_root = project_root
        self.poll_seconds = poll_seconds
        self.max_body_bytes = max_body_bytes
        self.metrics = Metrics()
        self.slots = {
            m.name: Slot(
                m, InferenceLog(m.registry, m.blocked_patterns, log_flush_seconds) if log_requests else NoLog()
            )
            for m in models
        }
        for m in models:
            self.metrics.declare(m.name, m.llm)
        self._tasks: list[asyncio.Task[None]] = []
        self.app = Starlette(
            routes=[
                Route("/health", self.health, methods=["GET"]),
                Route("/metrics", self.prometheus, methods=["GET"]),
                Route("/v1/models", self.list_models, methods=["GET"]),
                Route("/v1/models/{target:path}", self.model_route, methods=["GET", "POST"]),
                Route("/v1/completions", self.completions, methods=["POST"]),
                Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            ],
            lifespan=self._lifespan,
        )
        self.app.state.serving = self

    # --- lifecycle ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        from mlops.runtime.serving.slots import switch

        for slot in self.slots.values():  # the first load happens before the server accepts requests
            release = await asyncio.to_thread(slot.config.registry.release)
            await switch(slot, release, self.project_root, self._switched, self._queue_gauge(slot))
        for slot in self.slots.values():
            self._tasks.append(
                asyncio.create_task(
                    follow(slot, self.project_root, self.poll_seconds, self._switched, self._queue_gauge(slot))
                )
            )
        try:
            yield
        finally:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.close_logs()

    def close_logs(self) -> None:
        for slot in self.slots.values():
            slot.log.close()

    def flush_logs(self) -> None:
        for slot in self.slots.values():
            slot.log.flush()

    def _switched(self, slot: Slot) -> None:
        if slot.current is not None:
            self.metrics.version.labels(slot.config.name).set(slot.current.version.number)

    def _queue_gauge(self, slot: Slot) -> Callable[[int, int], None]:
        waiting = self.metrics.waiting.labels(slot.config.name)
        running = self.metrics.running.labels(slot.config.name)

        def update(queued: int, computing: int) -> None:
            waiting.set(queued)
            running.set(computing)

        return update

    # --- plain routes ------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        models = {name: self._describe(slot) for name, slot in sorted(self.slots.items())}
        ok = all(slot.ready for slot in self.slots.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "models": models}, 200 if ok else 503)

    async def prometheus(self, request: Request) -> Response:
        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE)

    async def list_models(self, request: Request) -> Response:
        data = [self._openai_model(slot) for _, slot in sorted(self.slots.items()) if slot.config.llm and slot.ready]
        return JSONResponse({"object": "list", "data": data})

    def _openai_model(self, slot: Slot) -> dict[str, Any]:
        handle = slot.current
        assert handle is not None
        root = getattr(handle.model, "root", slot.config.name)
        return {
            "id": slot.config.name,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "mlops",
            "root": root,
            "parent": None,
            "max_model_len": getattr(handle.model, "max_model_len", None),
            "version": handle.version.number,
        }

    def _describe(self, slot: Slot) -> dict[str, Any]:
        return {
            "task": slot.config.task,
            "ready": slot.ready,
            "version": None if slot.current is None else slot.current.version.number,
            "release": None if slot.release is None else slot.release.version,
            "error": slot.error,
        }

    async def model_route(self, request: Request) -> Response:
        target = request.path_params["target"]
        name, _, verb = target.partition(":")
        if request.method == "GET" and not verb:
            slot = self.slots.get(name)
            if slot is None:
                return _error(RequestError(404, f"The model `{name}` does not exist.", "NotFoundError", "model"))
            return JSONResponse({"id": name, "name": name, "object": "model", **self._describe(slot)})
        if request.method == "POST" and verb == "predict":
            return await self.predict(request, name)
        return _error(RequestError(404, f"no route {request.method} /v1/models/{target}", "NotFoundError"))

    # --- the request envelope ----------------------------------------------------------------

    async def _answer(self, request: Request, name: str | None, run: Callable[[Call], Awaitable[Response]]) -> Response:
        """Times, counts and ids every request; refused ones (RequestError) become their 4xx."""
        rid = request.headers.get("x-request-id", "")
        call = Call(rid if _REQUEST_ID.match(rid) else uuid.uuid4().hex, time.perf_counter(), now(), name)
        try:
            response = await run(call)
        except RequestError as exc:
            response = _error(exc)
        except Exception as exc:  # the model failed: 500, and the server keeps serving
            response = _error(
                RequestError(500, f"the model failed: {type(exc).__name__}: {exc}", "InternalServerError")
            )
            slot = self.slots.get(call.model or "")
            if slot is not None and call.version is not None:
                slot.log.append(_base(call, call.model or "", call.version, call.endpoint, 500))
        response.headers["x-request-id"] = call.rid
        if call.version is not None:  # which registry version answered: clients and rollouts can tell
            response.headers["x-model-version"] = str(call.version)
        label = call.model if call.model in self.slots else ""  # unknown names do not grow the label set
        if not isinstance(response, StreamingResponse):  # streams count themselves when they end
            self.metrics.requests.labels(label, str(response.status_code)).inc()
            if label:
                self.metrics.e2e.labels(label).observe(time.perf_counter() - call.started)
        return response

    def _slot(self, name: Any, llm: bool) -> tuple[Slot, Handle]:
        if not isinstance(name, str) or not name:
            raise RequestError(400, "`model` is required: the name of a served model", param="model")
        slot = self.slots.get(name)
        if slot is None or slot.config.llm != llm:
            kind = "LLM" if llm else "tabular model"
            served = ", ".join(sorted(n for n, s in self.slots.items() if s.config.llm == llm)) or "none"
            raise RequestError(
                404, f"The model `{name}` does not exist. Served {kind}s: {served}", "NotFoundError", "model"
            )
        handle = slot.current
        if handle is None:
            raise RequestError(503, f"{name}: {slot.error or 'loading'}", "ServiceUnavailableError")
        return slot, handle

    async def _json(self, request: Request) -> Any:
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise RequestError(400, "Content-Length is not a number")
            if int(length) > self.max_body_bytes:
                raise RequestError(413, f"request body of {length} bytes is over the limit of {self.max_body_bytes}")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.max_body_bytes:
                raise RequestError(413, f"request body is over the limit of {self.max_body_bytes} bytes")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise RequestError(400, f"request body is not valid JSON: {exc}") from None

    # --- KServe V1 ---------------------------------------------------------------------------

    async def predict(self, request: Request, name: str) -> Response:
        async def run(call: Call) -> Response:
            payload = await self._json(request)
            slot, handle = self._slot(name, llm=False)
            call.version, call.endpoint = handle.version.number, "predict"
            instances = payload.get("instances") if isinstance(payload, dict) else None
            if not isinstance(instances, list) or not instances:
                raise RequestError(
                    400,
                    'the body must be {"instances": [ {feature: value, ...}, ... ]} with one or more instances',
                    param="instances",
                )
            if len(instances) > MAX_INSTANCES:
                raise RequestError(413, f"{len(instances)} instances is over the limit of {MAX_INSTANCES} per request")
            extra = sorted(set(payload) - {"instances", "parameters"})
            if extra:
                raise RequestError(
                    400, f"unknown field(s) {', '.join(extra)}; KServe V1 takes instances", param=extra[0]
                )
            signature = handle.model.signature
            for i, instance in enumerate(instances):
                problem = signature.check(instance)
                if problem:
                    raise RequestError(400, f"instances[{i}]: {problem}", param=f"instances[{i}]")
            predictions = await handle.batcher.submit(instances)
            response = JSONResponse({"predictions": predictions})
            self._log_tabular(slot, handle, call, instances, predictions)
            return response

        return await self._answer(request, name, run)

    def _log_tabular(
        self,
        slot: Slot,
        handle: Handle,
        call: Call,
        instances: list[dict[str, Any]],
        predictions: list[Any],
    ) -> None:
        cfg = slot.config
        base = _base(call, cfg.name, handle.version.number, "predict", 200)
        inputs = [c for c in cfg.columns if c != cfg.prediction]
        target = cfg.prediction or "prediction"
        for i, (instance, prediction) in enumerate(zip(instances, predictions, strict=True)):
            record = {**base, "index": i, **{c: instance[c] for c in inputs if c in instance}, target: prediction}
            slot.log.append(record)

    # --- OpenAI ------------------------------------------------------------------------------

    async def completions(self, request: Request) -> Response:
        return await self._generate(request, chat=False)

    async def chat_completions(self, request: Request) -> Response:
        return await self._generate(request, chat=True)

    async def _generate(self, request: Request, chat: bool) -> Response:
        async def run(call: Call) -> Response:
            payload = await self._json(request)
            if not isinstance(payload, dict):
                raise RequestError(400, "the body must be a JSON object")
            call.model = payload.get("model") if isinstance(payload.get("model"), str) else None
            slot, handle = self._slot(payload.get("model"), llm=True)
            call.version = handle.version.number
            call.endpoint = "chat.completions" if chat else "completions"
            text = _chat_text(payload) if chat else _completion_text(payload)
            llm = handle.model
            prompt_ids = llm.encode(text)
            sampling = _sampling(payload, llm, prompt_ids, "messages" if chat else "prompt")
            generation = _Generation(self, slot, handle, call, text, prompt_ids, sampling, chat)
            if payload.get("stream") is True:
                include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
                return StreamingResponse(generation.events(include_usage), media_type="text/event-stream")
            return JSONResponse(await generation.whole())

        return await self._answer(request, None, run)


class _Generation:
    """One completion: runs the model in its thread, turns tokens into text, logs and measures."""

    def __init__(
        self,
        app: ServingApp,
        slot: Slot,
        handle: Handle,
        call: Call,
        text: str,
        prompt_ids: list[int],
        sampling: Any,
        chat: bool,
    ) -> None:
        self.app, self.slot, self.handle, self.call = app, slot, handle, call
        self.started = call.started
        self.text, self.prompt_ids, self.sampling, self.chat = text, prompt_ids, sampling, chat
        self.generated: list[int] = []
        self.created = int(time.time())
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{call.rid}"
        self.name = slot.config.name

    async def tokens(self) -> AsyncIterator[int | str]:
        """Token ids as they come, then the finish reason (a str)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[int | str | BaseException] = asyncio.Queue()
        cancelled = threading.Event()
        metrics = self.app.metrics
        waiting = metrics.waiting.labels(self.name)
        running = metrics.running.labels(self.name)

        def on_token(token: int) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, token)

        def work() -> None:
            try:
                reason = self.handle.model.generate(self.prompt_ids, self.sampling, on_token, cancelled)
                loop.call_soon_threadsafe(queue.put_nowait, reason)
            except BaseException as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        future = loop.run_in_executor(None, work)
        last = None
        try:
            while True:
                waiting.set(self.handle.model.waiting)
                running.set(self.handle.model.running)
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, str):
                    yield item
                    return
                t = time.perf_counter()
                if last is None:
                    metrics.ttft.labels(self.name).observe(t - self.started)
                else:
                    metrics.tpot.labels(self.name).observe(t - last)
                last = t
                self.generated.append(item)
                yield item
        finally:
            cancelled.set()  # a client that went away stops the generation at the next token
            await asyncio.shield(future)
            waiting.set(self.handle.model.waiting)
            running.set(self.handle.model.running)

    async def whole(self) -> dict[str, Any]:
        reason = "stop"
        async for item in self.tokens():
            if isinstance(item, str):
                reason = item
        out = self.handle.model.text(self.generated, self.sampling.stop)
        self._finish(out, 200)
        usage = self._usage()
        if self.chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": out},
                "logprobs": None,
                "finish_reason": reason,
            }
            return {
                "id": self.id,
                "object": "chat.completion",
                "created": self.created,
                "model": self.name,
                "choices": [choice],
                "usage": usage,
            }
        choice = {"index": 0, "text": out, "logprobs": None, "finish_reason": reason}
        return {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.name,
            "choices": [choice],
            "usage": usage,
        }

    async def events(self, include_usage: bool) -> AsyncIterator[bytes]:
        sent = ""
        reason = "stop"
        status = 200
        try:
            if self.chat:
                yield self._chunk({"role": "assistant", "content": ""}, None)
            async for item in self.tokens():
                if isinstance(item, str):
                    reason = item
                    break
                full = self.handle.model.text(self.generated, self.sampling.stop)
                if full.startswith(sent) and len(full) > len(sent) and not full.endswith("\ufffd"):
                    piece, sent = full[len(sent) :], full
                    yield self._chunk({"content": piece} if self.chat else piece, None)
            full = self.handle.model.text(self.generated, self.sampling.stop)
            if full.startswith(sent) and len(full) > len(sent):
                piece, sent = full[len(sent) :], full
                yield self._chunk({"content": piece} if self.chat else piece, None)
            yield self._chunk({} if self.chat else "", reason)
            if include_usage:
                yield _sse(
                    {
                        "id": self.id,
                        "object": self._object,
                        "created": self.created,
                        "model": self.name,
                        "choices": [],
                        "usage": self._usage(),
                    }
                )
            yield b"data: [DONE]\n\n"
        except Exception as exc:
            status = 500
            yield _sse(RequestError(500, f"the model failed: {exc}", "InternalServerError").body())
        finally:
            self._finish(sent, status)
            self.app.metrics.requests.labels(self.name, str(status)).inc()
            self.app.metrics.e2e.labels(self.name).observe(time.perf_counter() - self.started)

    @property
    def _object(self) -> str:
        return "chat.completion.chunk" if self.chat else "text_completion"

    def _chunk(self, delta: Any, reason: str | None) -> bytes:
        choice: dict[str, Any] = {"index": 0, "logprobs": None, "finish_reason": reason}
        choice["delta" if self.chat else "text"] = delta
        return _sse(
            {"id": self.id, "object": self._object, "created": self.created, "model": self.name, "choices": [choice]}
        )

    def _usage(self) -> dict[str, int]:
        n, m = len(self.prompt_ids), len(self.generated)
        return {"prompt_tokens": n, "completion_tokens": m, "total_tokens": n + m}

    def _finish(self, response: str, status: int) -> None:
        cfg = self.slot.config
        metrics = self.app.metrics
        metrics.prompt_tokens.labels(self.name).inc(len(self.prompt_ids))
        metrics.generation_tokens.labels(self.name).inc(len(self.generated))
        endpoint = "chat.completions" if self.chat else "completions"
        record = _base(self.call, self.name, self.handle.version.number, endpoint, status)
        record.update(prompt_tokens=len(self.prompt_ids), completion_tokens=len(self.generated))
        for column, value in (("prompt", self.text), ("response", response)):
            if column in cfg.columns:
                record[column] = value
        self.slot.log.append(record)


# --- request parsing -----------------------------------------------------------------------------


def _completion_text(payload: dict[str, Any]) -> str:
    prompt = payload.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise RequestError(400, "`prompt` must be a non-empty string (one prompt per request)", param="prompt")
    return prompt


def _chat_text(payload: dict[str, Any]) -> str:
    """The last user message: the fine-tune answers one turn in the prompt it was trained with."""
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "`messages` must be a non-empty list of {role, content}", param="messages")
    last = None
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "tool", "developer"):
            raise RequestError(
                400,
                f"messages[{i}] must be an object with a role (system, user, assistant, tool)",
                param=f"messages[{i}]",
            )
        content = m.get("content")
        if isinstance(content, list):  # content parts: only text is understood
            if not all(
                isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content
            ):
                raise RequestError(400, f"messages[{i}].content: only text parts are supported", param=f"messages[{i}]")
            content = "".join(p["text"] for p in content)
        if m["role"] == "user":
            if not isinstance(content, str) or not content:
                raise RequestError(400, f"messages[{i}].content must be a non-empty string", param=f"messages[{i}]")
            last = content
    if last is None:
        raise RequestError(400, "`messages` holds no user message", param="messages")
    return last


def _sampling(payload: dict[str, Any], llm: Any, prompt_ids: list[int], kind: str) -> Any:
    from mlops.runtime.serving.llm import Sampling

    def number(key: str, default: float, lo: float, hi: float) -> float:
        value = payload.get(key, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise RequestError(400, f"`{key}` must be a number from {lo} to {hi}", param=key)
        return float(value)

    if payload.get("n", 1) not in (1, None):
        raise RequestError(400, "`n` must be 1: one completion per request", param="n")
    if "stream" in payload and not isinstance(payload["stream"], bool):
        raise RequestError(400, "`stream` must be true or false", param="stream")
    key = "max_completion_tokens" if payload.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = payload.get(key)
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise RequestError(400, f"`{key}` must be a positive integer", param=key)
    if max_tokens is None and kind == "prompt":
        max_tokens = min(16, llm.max_model_len - len(prompt_ids)) or 16  # the OpenAI and vLLM default for completions
    stop = payload.get("stop") or ()
    if isinstance(stop, str):
        stop = (stop,)
    if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) and s for s in stop) or len(stop) > 4:
        raise RequestError(400, "`stop` must be a string or a list of up to 4 non-empty strings", param="stop")
    seed = payload.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise RequestError(400, "`seed` must be an integer", param="seed")
    return Sampling(
        max_tokens=llm.check_length(prompt_ids, max_tokens, kind),
        temperature=number("temperature", 1.0, 0.0, 2.0),
        top_p=number("top_p", 1.0, 1e-9, 1.0),
        stop=tuple(stop),
        seed=seed,
    )


@dataclass
class Call:
    """One request as the envelope tracks it; the handler fills in what it learns."""

    rid: str
    started: float  # perf_counter at arrival
    received: str  # ISO time at arrival
    model: str | None
    version: int | None = None
    endpoint: str = ""


def _base(call: Call, model: str, version: int, endpoint: str, status: int) -> dict[str, Any]:
    return {
        "time": call.received,
        "request_id": call.rid,
        "model": model,
        "version": version,
        "endpoint": endpoint,
        "status": status,
        "latency_ms": round((time.perf_counter() - call.started) * 1000, 3),
    }


def _sse(data: Any) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def _error(exc: RequestError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


def create_app(models: Sequence[ServedModel], project_root: Path, **options: Any) -> Starlette:
    """The ASGI app serving `models` (the current release of each); options go to ServingApp."""
    return ServingApp(models, project_root, **options).app
