"""The model registry: numbered versions and the release that serves, in an fsspec artifact store.

Layout under the store (a local folder, `s3://bucket/prefix`, `gs://bucket/prefix`, `memory://`):

    <artifacts>/<env>/<model>/versions/<n>/model/         weights or a PEFT adapter, as the trainer saved them
    <artifacts>/<env>/<model>/versions/<n>/code/          the trainer module that featurizes inputs (tabular)
    <artifacts>/<env>/<model>/versions/<n>/metrics.json   what the trainer reported
    <artifacts>/<env>/<model>/versions/<n>/signature.json tabular: the input columns and types (registry.signature)
    <artifacts>/<env>/<model>/versions/<n>/lineage.json   where the version came from (written last)
    <artifacts>/<env>/<model>/release.json                {"version": n, "previous": m, ...}
    <artifacts>/<env>/<model>/inference/                  the servers' inference log (mlops.runtime.serving.log)

A version exists once its lineage.json does: it is written after every other file, so a
registration cut short is never listed. release.json is replaced atomically: written to a
temporary name next to it, then moved over it (a rename on local disks; a copy that is atomic
per object on object stores), so a reader sees the old release or the new one, never half of
one. Version numbers are claimed by creating their folder exclusively on local disks; object
stores have no exclusive create, so two trainings of one model registering at the same
instant there could pick the same number (Dagster runs one train of a model at a time).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOCAL_DEFAULT = ".mlops/artifacts"  # under the project folder
RELEASE = "release.json"
METRICS = "metrics.json"
LINEAGE = "lineage.json"
SIGNATURE = "signature.json"
MODEL = "model"
CODE = "code"
INFERENCE = "inference"
CACHE_VAR = "MLOPS_CACHE"  # where versions from an object store are downloaded to serve them
_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")


class RegistryError(Exception):
    """A version or release that does not exist, or a store that cannot be reached."""


def artifacts_uri(project_root: Path, configured: str | None = None) -> str:
    """The environment's artifact store: the URI its spec names, else <project>/.mlops/artifacts."""
    if configured:
        return configured.rstrip("/")
    return str((project_root / LOCAL_DEFAULT).resolve())


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Version:
    number: int
    uri: str  # the version's folder in the store
    metrics: Mapping[str, Any] = field(default_factory=dict)
    lineage: Mapping[str, Any] = field(default_factory=dict)

    @property
    def model_uri(self) -> str:
        return f"{self.uri}/{MODEL}"

    @property
    def registered_at(self) -> str:
        return str(self.lineage.get("registered_at", ""))

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.number, "uri": self.uri, "metrics": dict(self.metrics), "lineage": dict(self.lineage)}


@dataclass(frozen=True)
class Release:
    model: str
    environment: str
    version: int
    previous: int | None
    released_at: str
    reason: str  # deploy | rollback | health check failed
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "environment": self.environment,
            "version": self.version,
            "previous": self.previous,
            "released_at": self.released_at,
            "reason": self.reason,
            "run_id": self.run_id,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Release:
        previous = d.get("previous")
        return cls(
            model=str(d["model"]),
            environment=str(d["environment"]),
            version=int(d["version"]),
            previous=None if previous is None else int(previous),
            released_at=str(d.get("released_at", "")),
            reason=str(d.get("reason", "deploy")),
            run_id=d.get("run_id"),
        )


class ModelRegistry:
    """The versions and the release of one model in one environment."""

    def __init__(self, artifacts: str, environment: str, model: str, **storage_options: Any) -> None:
        for kind, name in (("environment", environment), ("model", model)):
            if not _NAME.match(name):
                raise RegistryError(f"{kind} name {name!r} is not a lower-case DNS label")
        self.artifacts = artifacts.rstrip("/")
        self.environment = environment
        self.model = model
        import fsspec  # on first use: a Dagster code location imports this module, its assets open stores when they run

        try:
            self.fs, base = fsspec.core.url_to_fs(self.artifacts, **storage_options)
        except (ImportError, ValueError) as exc:  # an s3:// store without s3fs installed, an unknown scheme
            raise RegistryError(f"artifact store {self.artifacts}: {exc}") from exc
        self._base = f"{base.rstrip('/')}/{environment}/{model}"
        self.uri = f"{self.artifacts}/{environment}/{model}"

    def __repr__(self) -> str:
        return f"ModelRegistry({self.uri!r})"

    @property
    def local(self) -> bool:
        from fsspec.implementations.local import LocalFileSystem

        return isinstance(self.fs, LocalFileSystem)

    def path(self, *parts: str | int) -> str:
        """A path inside this model's folder, as the filesystem names it."""
        return "/".join([self._base, *(str(p) for p in parts)])

    @property
    def inference_path(self) -> str:
        return self.path(INFERENCE)

    @property
    def release_path(self) -> str:
        return self.path(RELEASE)

    # --- versions --------------------------------------------------------------------------

    def numbers(self) -> list[int]:
        """Numbers of the complete versions (their lineage.json written), ascending."""
        try:
            entries = self.fs.ls(self.path("versions"), detail=False)
        except FileNotFoundError:
            return []
        found = []
        for entry in entries:
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if name.isdigit() and self.fs.exists(self.path("versions", name, LINEAGE)):
                found.append(int(name))
        return sorted(found)

    def versions(self) -> list[Version]:
        return [self.get(n) for n in self.numbers()]

    def get(self, number: int) -> Version:
        folder = self.path("versions", number)
        try:
            lineage = self._read_json(f"{folder}/{LINEAGE}")
        except FileNotFoundError:
            known = ", ".join(map(str, self.numbers())) or "none"
            raise RegistryError(
                f"{self.model} ({self.environment}) has no version {number}; versions: {known}"
            ) from None
        try:
            metrics = self._read_json(f"{folder}/{METRICS}")
        except FileNotFoundError:
            metrics = {}
        return Version(number, f"{self.uri}/versions/{number}", metrics, lineage)

    def latest(self) -> Version | None:
        numbers = self.numbers()
        return self.get(numbers[-1]) if numbers else None

    def register(
        self,
        model_dir: Path,
        metrics: Mapping[str, Any],
        lineage: Mapping[str, Any],
        code: Iterable[Path] = (),
        signature: Mapping[str, Any] | None = None,
    ) -> Version:
        """Copy a trained model folder (and the trainer code that featurizes its inputs) into the
        next version; lineage.json last, so the version appears complete or not at all."""
        model_dir = Path(model_dir)
        if not model_dir.is_dir() or not any(model_dir.iterdir()):
            raise RegistryError(f"{model_dir}: no trained model to register (the trainer wrote no model/ folder)")
        number = self._claim()
        folder = self.path("versions", number)
        for file in sorted(p for p in model_dir.rglob("*") if p.is_file()):
            self._put(file, f"{folder}/{MODEL}/{file.relative_to(model_dir).as_posix()}")
        code_hashes = {}
        for file in code:
            self._put(file, f"{folder}/{CODE}/{file.name}")
            code_hashes[file.name] = sha256_file(file)
        record = {**dict(lineage), "version": number, "registered_at": now()}
        if code_hashes:
            record["code_sha256"] = code_hashes
        if signature is not None:
            self._write_json(f"{folder}/{SIGNATURE}", dict(signature))
        self._write_json(f"{folder}/{METRICS}", dict(metrics))
        self._write_json(f"{folder}/{LINEAGE}", record)
        return self.get(number)

    def _claim(self) -> int:
        self.fs.makedirs(self.path("versions"), exist_ok=True)
        taken = [
            int(e.rstrip("/").rsplit("/", 1)[-1])
            for e in self.fs.ls(self.path("versions"), detail=False)
            if e.rstrip("/").rsplit("/", 1)[-1].isdigit()
        ]
        number = max(taken, default=0) + 1
        while True:
            if not self.local:
                return number
            try:
                os.mkdir(self.path("versions", number))  # exclusive: a concurrent registration takes the next
                return number
            except FileExistsError:
                number += 1

    def signature(self, version: Version) -> dict[str, Any] | None:
        """The version's input signature (tabular models; see registry.signature), or None."""
        try:
            return self._read_json(self.path("versions", version.number, SIGNATURE))
        except FileNotFoundError:
            return None

    # --- release ---------------------------------------------------------------------------

    def release(self) -> Release | None:
        try:
            return Release.from_dict(self._read_json(self.release_path))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise RegistryError(f"{self.uri}/{RELEASE} is not a release record: {exc}") from exc

    def serving(self) -> Version | None:
        """The version the release names (None before the first deploy)."""
        current = self.release()
        return None if current is None else self.get(current.version)

    def set_release(self, number: int, *, reason: str = "deploy", run_id: str | None = None) -> Release:
        """Make version `number` the one that serves; the one serving before becomes `previous`."""
        self.get(number)  # refuses an unknown version before anything is written
        current = self.release()
        previous = current.previous if current is not None and current.version == number else None
        if current is not None and current.version != number:
            previous = current.version
        record = Release(self.model, self.environment, number, previous, now(), reason, run_id)
        tmp = self.path(f".{RELEASE}.{uuid.uuid4().hex}.tmp")
        self._write_json(tmp, record.to_dict())
        self.fs.mv(tmp, self.release_path)
        return record

    def rollback(self, to: int | None = None, *, run_id: str | None = None, reason: str = "rollback") -> Release:
        """Release `to`, or the version that served before the current one."""
        current = self.release()
        if current is None:
            raise RegistryError(f"{self.model} ({self.environment}) has never been released: nothing to roll back")
        if to is None:
            if current.previous is None:
                raise RegistryError(
                    f"{self.model} ({self.environment}) serves version {current.version} and names no previous"
                    " version; pass --to N"
                )
            to = current.previous
        return self.set_release(to, reason=reason, run_id=run_id)

    def withdraw(self, number: int) -> None:
        """Remove the release of version `number`, the first ever released (deploy's health check
        failed and no version served before it): then nothing is released, as before."""
        current = self.release()
        if current is None or current.version != number or current.previous is not None:
            raise RegistryError(f"{self.model} ({self.environment}): version {number} is not a first release")
        self.fs.rm(self.release_path)

    # --- files -----------------------------------------------------------------------------

    def local_copy(self, version: Version, part: str = MODEL) -> Path:
        """A local folder holding a version's `model/` (or `code/`): the store's own folder on a
        local disk, else a download into $MLOPS_CACHE (default ~/.cache/mlops), reused once complete."""
        remote = self.path("versions", version.number, part)
        if self.local:
            return Path(remote)
        cache = Path(os.environ.get(CACHE_VAR) or Path.home() / ".cache" / "mlops")
        digest = hashlib.sha256(self.uri.encode()).hexdigest()[:16]
        target = cache / digest / str(version.number) / part
        done = target.with_name(f"{part}.complete")
        if not done.exists():
            if not self.fs.exists(remote):
                target.mkdir(parents=True, exist_ok=True)
            else:
                for entry in self.fs.find(remote):
                    dest = target / entry[len(remote) :].lstrip("/")
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    self.fs.get_file(entry, str(dest))
            done.write_text(version.uri)
        return target

    def _put(self, local: Path, remote: str) -> None:
        self.fs.makedirs(remote.rsplit("/", 1)[0], exist_ok=True)
        self.fs.put_file(str(local), remote)

    def _read_json(self, path: str) -> dict[str, Any]:
        with self.fs.open(path, "rb") as f:
            data = json.loads(f.read())
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object")
        return data

    def _write_json(self, path: str, data: Mapping[str, Any]) -> None:
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with self.fs.open(path, "wb") as f:
            f.write((json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode())


def models_in(artifacts: str, environment: str) -> list[str]:
    """Names of the models with a folder in an environment's store."""
    import fsspec

    fs, base = fsspec.core.url_to_fs(artifacts.rstrip("/"))
    try:
        entries = fs.ls(f"{base.rstrip('/')}/{environment}", detail=False)
    except FileNotFoundError:
        return []
    return sorted(n for n in (e.rstrip("/").rsplit("/", 1)[-1] for e in entries) if _NAME.match(n))
