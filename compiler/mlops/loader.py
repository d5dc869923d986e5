"""Safe YAML loading that remembers where every node came from.

PyYAML's event stream (the C parser when available) is folded into plain Python data by
hand, so that anything YAML can do but a spec must not (aliases, merge keys, tags,
duplicate keys, several documents) is refused with a position instead of being expanded.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops.diagnostics import Diagnostic

MAX_BYTES = 1 << 20  # 1 MiB: a spec is a page of YAML, not a data file
MAX_DEPTH = 32

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_STR_TAGS = {"tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"}

Position = tuple[int, int]


@dataclass(frozen=True)
class Document:
    """One parsed YAML file: its data and the (line, col) of every value and key."""

    path: str
    data: Any
    positions: dict[str, Position] = field(repr=False)
    key_positions: dict[str, Position] = field(repr=False)
    sha256: str = ""  # of the file's bytes, recorded in mlops.lock

    def where(self, pointer: str, *, key: bool = False) -> Position:
        """Position of the node at a JSON pointer, or of its nearest ancestor that exists."""
        table = self.key_positions if key else self.positions
        while True:
            if pointer in table:
                return table[pointer]
            if pointer in self.positions:
                return self.positions[pointer]
            if not pointer:
                return (1, 1)
            pointer = pointer.rsplit("/", 1)[0]

    def diagnostic(self, pointer: str, code: str, message: str, **kwargs: Any) -> Diagnostic:
        key = kwargs.pop("key", False)
        line, col = self.where(pointer, key=key)
        return Diagnostic(self.path, line, col, code, message, pointer=pointer, **kwargs)


class LoadError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def load_file(path: Path, display: str, *, root: Path | None = None) -> Document:
    """Read and parse one spec file; every refusal is a LoadError carrying a Diagnostic."""

    def fail(code: str, message: str, line: int = 1, col: int = 1, hint: str = "") -> LoadError:
        return LoadError(Diagnostic(display, line, col, code, message, hint=hint))

    if path.is_symlink() and not path.exists():
        raise fail("L109", f"broken symbolic link: points to {os.readlink(path)!s}")
    if root is not None and not path.resolve().is_relative_to(root.resolve()):
        raise fail("L110", "file resolves outside the project folder", hint="specs must live inside the project")
    if path.is_dir():
        raise fail("L109", "is a directory, expected a YAML file")
    if not path.is_file():
        raise fail("L109", "is not a regular file")
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise fail(
                "L106",
                f"file is {size:,} bytes, over the {MAX_BYTES:,}-byte limit for a spec",
                hint="keep data out of specs; reference it by path",
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise fail("L109", f"cannot read file: {exc.strerror}") from None
    return parse_bytes(raw, display)


def parse_bytes(raw: bytes, display: str) -> Document:
    if len(raw) > MAX_BYTES:
        raise LoadError(
            Diagnostic(display, 1, 1, "L106", f"file is {len(raw):,} bytes, over the {MAX_BYTES:,}-byte limit")
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise LoadError(
            Diagnostic(
                display,
                line,
                col,
                "L105",
                f"not valid UTF-8: byte 0x{raw[exc.start]:02x}",
                hint="save the file as UTF-8",
            )
        ) from None
    return parse_text(text, display, sha256=hashlib.sha256(raw).hexdigest())


def parse_text(text: str, display: str, *, sha256: str = "") -> Document:
    builder = _Builder(display)
    try:
        for event in yaml.parse(text, Loader=_Loader):
            builder.feed(event)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        hint = ""
        lines = text.splitlines()
        if "\t" in problem or (0 < line <= len(lines) and "\t" in lines[line - 1][:col]):
            if "tab" not in problem:
                problem = f"{problem} (a tab character)"
            hint = "indent YAML with spaces; tabs are not allowed"
        raise LoadError(Diagnostic(display, line, col, "L101", f"YAML syntax error: {problem}", hint=hint)) from None
    except yaml.YAMLError as exc:
        raise LoadError(Diagnostic(display, 1, 1, "L101", f"YAML error: {exc}")) from None
    if builder.documents == 0 or builder.result is None:
        raise LoadError(
            Diagnostic(display, 1, 1, "L108", "file is empty", hint="a spec starts with apiVersion: mlops/v1")
        )
    return Document(display, builder.result, builder.positions, builder.key_positions, sha256)


class _Builder:
    """Folds parser events into dicts, lists and scalars, recording positions."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.stack: list[tuple[Any, str, list[Any]]] = []  # (container, pointer, [pending key])
        self.result: Any = None
        self.documents = 0
        self.positions: dict[str, Position] = {}
        self.key_positions: dict[str, Position] = {}

    def error(self, event: yaml.Event, code: str, message: str, hint: str = "") -> LoadError:
        mark = event.start_mark
        return LoadError(Diagnostic(self.display, mark.line + 1, mark.column + 1, code, message, hint=hint))

    def feed(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise self.error(
                    event,
                    "L101",
                    "a spec file holds exactly one YAML document",
                    hint="split the documents into separate files",
                )
        elif isinstance(event, yaml.AliasEvent):
            raise self.error(
                event,
                "L103",
                f"alias *{event.anchor} is not allowed",
                hint="write the value out; specs do not use anchors or aliases",
            )
        elif isinstance(event, yaml.ScalarEvent | yaml.MappingStartEvent | yaml.SequenceStartEvent):
            self._node(event)
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            container, pointer, _ = self.stack.pop()
            self._attach(container, pointer)

    def _node(self, event: yaml.NodeEvent) -> None:
        if event.anchor is not None:
            raise self.error(
                event,
                "L103",
                f"anchor &{event.anchor} is not allowed",
                hint="write the value out; specs do not use anchors or aliases",
            )
        tag = getattr(event, "tag", None)
        implicit = getattr(event, "implicit", True)
        explicit = tag is not None and tag not in ("!", "?") and not (implicit is True or implicit == (True, True))
        if explicit or (tag is not None and tag.startswith("!") and tag != "!"):
            raise self.error(event, "L104", f"tag {tag} is not allowed", hint="remove the tag; values are plain YAML")
        parent_pointer, is_key = self._child_pointer()
        mark = event.start_mark
        pos = (mark.line + 1, mark.column + 1)
        if isinstance(event, yaml.ScalarEvent):
            if is_key:
                container, pointer, pending = self.stack[-1]
                key = event.value
                if key == "<<" and not event.style:
                    raise self.error(
                        event,
                        "L103",
                        "merge key << is not allowed",
                        hint="write the keys out; specs do not use merge keys",
                    )
                if key in container:
                    first = self.key_positions.get(f"{pointer}/{escape(key)}", (0, 0))
                    raise self.error(
                        event,
                        "L102",
                        f"duplicate key {key!r} (first defined at line {first[0]})",
                        hint="remove one of the two entries",
                    )
                pending.append(key)
                self.key_positions[f"{pointer}/{escape(key)}"] = pos
                return
            self.positions[parent_pointer] = pos
            try:
                value = self._scalar(event)
            except ValueError:  # Python refuses int() of more than 4,300 digits
                raise self.error(event, "L101", f"the number {event.value[:20]}... is too long to read") from None
            self._attach(value, parent_pointer)
            return
        if is_key:
            raise self.error(event, "L101", "mapping keys must be plain strings")
        if len(self.stack) >= MAX_DEPTH:
            raise self.error(event, "L107", f"document nested deeper than {MAX_DEPTH} levels")
        self.positions[parent_pointer] = pos
        container: Any = {} if isinstance(event, yaml.MappingStartEvent) else []
        self.stack.append((container, parent_pointer, []))

    def _child_pointer(self) -> tuple[str, bool]:
        if not self.stack:
            return "", False
        container, pointer, pending = self.stack[-1]
        if isinstance(container, dict):
            if not pending:
                return pointer, True
            return f"{pointer}/{escape(pending[0])}", False
        return f"{pointer}/{len(container)}", False

    def _attach(self, value: Any, pointer: str) -> None:
        if not self.stack:
            self.result = value
            return
        container, _, pending = self.stack[-1]
        if isinstance(container, dict):
            container[pending.pop()] = value
        else:
            container.append(value)

    @staticmethod
    def _scalar(event: yaml.ScalarEvent) -> Any:
        tag = _RESOLVER.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag in _STR_TAGS:
            return event.value  # dates and binary stay text: specs are JSON-shaped
        return _CONSTRUCTOR.construct_object(yaml.ScalarNode(tag, event.value))
