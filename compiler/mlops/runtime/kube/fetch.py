"""The serving pod's init container: copy the model files of the release that serves into a folder.

    python -m mlops.runtime.kube.fetch --artifacts s3://bucket/prefix --environment prod \
        --model support-assistant --dest /models/support-assistant

It asks the registry (mlops.runtime.registry) which version release.json names and copies that
version's `model/` (a PEFT adapter, or a full fine-tune's weights) through fsspec, so s3://, gs://
and local folders work alike. Exit 1 with a message when nothing is released or the version is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlops.runtime.registry.store import MODEL, ModelRegistry, RegistryError


class FetchError(Exception):
    pass


def fetch(artifacts: str, environment: str, model: str, dest: Path) -> int:
    """Copy the released version's model files into `dest`; returns the version number."""
    try:
        store = ModelRegistry(artifacts, environment, model)
        release = store.release()
        if release is None:
            raise FetchError(f"{store.uri}/release.json does not exist: nothing is released yet")
        version = store.get(release.version)
    except RegistryError as exc:
        raise FetchError(str(exc)) from None
    source = store.path("versions", version.number, MODEL)
    dest.mkdir(parents=True, exist_ok=True)
    for path in store.fs.find(source):
        target = dest / Path(path).relative_to(source)  # fsspec paths are posix
        target.parent.mkdir(parents=True, exist_ok=True)
        store.fs.get_file(path, str(target))
    return version.number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops.runtime.kube.fetch", description=__doc__.split("\n")[0])
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--environment", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--dest", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        version = fetch(args.artifacts, args.environment, args.model, args.dest)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"fetched {args.model} version {version} into {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
