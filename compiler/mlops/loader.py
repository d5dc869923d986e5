"""Safe YAML loading that remembers where every node came from, read as editors read it.

PyYAML's event stream (libyaml's C parser when available) is folded into plain Python data by
hand, so that anything YAML can do but a spec must not (aliases, merge keys, tags, duplicate
keys, several documents) is refused with a position instead of being expanded.

Scalars resolve by the YAML 1.2 core schema, which yaml-language-server and check-jsonschema
use with the JSON Schemas in specs/: `2e-4` is a number, `yes`/`no`/`on`/`off` are strings,
`017` is 17 and `0o17` is 15. PyYAML alone would read YAML 1.1 and disagree with the editor.

Positions cost a JSON pointer per node, and only files with a diagnostic need them: the
first pass builds the data alone, and a document parses its text again, once, the first time
a position is asked for.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
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

Position = tuple[int, int]

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1023-core-schema), for plain scalars only
_NULL = {"", "~", "null", "Null", "NULL"}
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NUMBER = re.compile(
    r"(?P<int>[-+]?[0-9]+)|0o(?P<oct>[0-7]+)|0x(?P<hex>[0-9a-fA-F]+)"
    r"|(?P<float>[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)"
    r"|(?P<inf>[-+]?\.(?:inf|Inf|INF))|(?P<nan>\.(?:nan|NaN|NAN))"
)
_NUMBER_START = frozenset("-+.0123456789")
# Line breaks that PyYAML counts but editors, GitHub and diff tools do not show as one: text
# after them looks like part of a comment or of the line before, yet is read as YAML.
_HIDDEN_BREAK = re.compile("[\x85\u2028\u2029]|\r(?!\n)")
_BREAK_NAMES = {"\x85": "U+0085 (NEL)", "\u2028": "U+2028 (line separator)", "\u2029": "U+2029 (paragraph separator)"}


def resolve_scalar(value: str) -> Any:
    """A plain scalar's value under the YAML 1.2 core schema."""
    if value in _NULL:
        return None
    if value in _BOOL:
        return _BOOL[value]
    if value[0] not in _NUMBER_START:
        return value
    m = _NUMBER.fullmatch(value)
    if m is None:
        return value
    kind = m.lastgroup
    if kind == "int":
        return int(value)
    if kind == "oct":
        return int(m.group("oct"), 8)
    if kind == "hex":
        return int(m.group("hex"), 16)
    if kind == "inf":
        return -math.inf if value[0] == "-" else math.inf
    if kind == "nan":
        return math.nan
    return float(value)


@dataclass(frozen=True, eq=False)
class Document:
    """One parsed YAML file: its data, and on demand the (line, col) and source text of every node.

    An overlay document (a model as seen in one environment) shares its file's positions: a
    pointer under /spec is looked up under /spec/environments/<env> first, so a diagnostic about
    a value an environment set lands on the line that set it.
    """

    path: str
    data: Any
    sha256: str = ""  # of the file's bytes, recorded in mlops.lock
    text: str = field(default="", repr=False)
    overlay: str = ""  # "/spec/environments/<env>" when that environment has an overlay
    source: Document | None = field(default=None, repr=False)  # the file's document, for a model in one env
    model: str = ""  # for a model as seen in one environment: its diagnostics say which
    environment: str = ""

    @cached_property
    def _tables(self) -> _Tables:
        if self.source is not None:
            return self.source._tables
        builder = _Builder(self.path, record=True)
        _fold(self.text, builder)
        return _Tables(builder.positions, builder.key_positions, builder.scalars)

    @property
    def positions(self) -> dict[str, Position]:
        return self._tables.positions

    @property
    def key_positions(self) -> dict[str, Position]:
        return self._tables.key_positions

    def with_data(self, data: Any, overlay: str, *, model: str = "", environment: str = "") -> Document:
        """The same file seen through an overlay: `data` merged, positions looked up in `overlay` first."""
        root = self.source or self
        return Document(self.path, data, self.sha256, "", overlay, root, model, environment)

    def _lookups(self, pointer: str) -> tuple[str, ...]:
        if self.overlay and (pointer == "/spec" or pointer.startswith("/spec/")):
            return (self.overlay + pointer[5:], pointer)
        return (pointer,)

    def where(self, pointer: str, *, key: bool = False) -> Position:
        """Position of the node at a JSON pointer, or of its nearest ancestor that exists."""
        tables = self._tables
        while True:
            candidates = self._lookups(pointer)
            if key:
                for c in candidates:
                    if c in tables.key_positions:
                        return tables.key_positions[c]
            for c in candidates:
                if c in tables.positions:
                    return tables.positions[c]
            if not pointer:
                return (1, 1)
            pointer = pointer.rsplit("/", 1)[0]

    def scalar_source(self, pointer: str) -> tuple[str, bool] | None:
        """The text a scalar was written as, and whether it was plain (unquoted)."""
        tables = self._tables
        for c in self._lookups(pointer):
            if c in tables.scalars:
                return tables.scalars[c]
        return None

    def diagnostic(self, pointer: str, code: str, message: str, **kwargs: Any) -> Diagnostic:
        key = kwargs.pop("key", False)
        line, col = self.where(pointer, key=key)
        if self.model:
            kwargs.setdefault("model", self.model)
            kwargs.setdefault("environments", (self.environment,))
        return Diagnostic(self.path, line, col, code, message, pointer=pointer, **kwargs)


@dataclass(frozen=True)
class _Tables:
    positions: dict[str, Position]
    key_positions: dict[str, Position]
    scalars: dict[str, tuple[str, bool]]


class LoadError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def load_file(path: Path, display: str, *, root: Path | None = None) -> Document:
    """Read and parse one spec file; every refusal is a LoadError carrying a Diagnostic."""
    return parse_bytes(read_file(path, display, root=root), display)


def read_file(path: Path, display: str, *, root: Path | None = None) -> bytes:
    """One spec file's bytes (what load_file parses); every refusal is a LoadError."""

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
        return path.read_bytes()
    except OSError as exc:
        raise fail("L109", f"cannot read file: {exc.strerror}") from None


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
        col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1  # characters, as editors count
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
    hidden = _HIDDEN_BREAK.search(text)
    if hidden is not None:
        line, col = _line_col(text, hidden.start())
        name = _BREAK_NAMES.get(hidden.group(), "a carriage return without a line feed")
        raise LoadError(
            Diagnostic(
                display,
                line,
                col,
                "L101",
                f"line break {name}: YAML reads it as a new line, editors and reviews do not show one",
                hint="end lines with \\n (or \\r\\n); write the character as an escape in a double-quoted string",
            )
        )
    data = _fold_fast(text)
    if data is _UNSURE:  # something to refuse (or to look at closer): the builder words it
        builder = _Builder(display, record=False)
        try:
            _fold(text, builder)
        except LoadError:  # rare: parse again with positions, for the message that names the first key
            _fold(text, _Builder(display, record=True))
            raise
        if builder.documents == 0 or builder.result is None:
            raise LoadError(
                Diagnostic(display, 1, 1, "L108", "file is empty", hint="a spec starts with apiVersion: mlops/v1")
            )
        data = builder.result
    return Document(display, data, sha256, text)


_UNSURE = object()
_SCALAR, _MAPPING, _SEQUENCE = yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent
_ENDS = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
_NO_KEY = object()  # the mapping on top waits for a key


def _fold_fast(text: str) -> Any:
    """The data _Builder folds from a file it accepts, in one loop over the parser's events (its
    method calls per event were a fifth of loading); _UNSURE at anything _Builder would refuse
    (an anchor, alias, tag, merge or duplicate key, a second or no document, depth, a syntax error),
    which it then parses again to word. tests/test_fuzz.py holds the two to the same data."""
    parser = _Loader(text)
    try:
        get = parser.get_event
        stack: list[Any] = []
        top: Any = None
        key: Any = _NO_KEY
        result: Any = None
        documents = 0
        while True:
            event = get()
            kind = type(event)
            if kind is _SCALAR or kind is _MAPPING or kind is _SEQUENCE:
                tag = event.tag
                if event.anchor is not None or _refused_tag(event):
                    return _UNSURE
                if kind is _SCALAR:
                    if key is _NO_KEY and type(top) is dict:
                        key = event.value
                        if key in top or (key == "<<" and not event.style):
                            return _UNSURE
                        continue
                    value = event.value
                    if not event.style and tag != "!":
                        value = resolve_scalar(value)
                elif (key is _NO_KEY and type(top) is dict) or len(stack) >= MAX_DEPTH:
                    return _UNSURE
                else:
                    value = {} if kind is _MAPPING else []
                if top is None:
                    result = value
                elif type(top) is dict:
                    top[key] = value
                    key = _NO_KEY
                else:
                    top.append(value)
                if kind is not _SCALAR:
                    stack.append(value)
                    top = value
            elif kind in _ENDS:
                stack.pop()
                top = stack[-1] if stack else None
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    return _UNSURE
            elif kind is yaml.AliasEvent:
                return _UNSURE
            elif kind is yaml.StreamEndEvent:
                return result if documents and result is not None else _UNSURE
    except (yaml.YAMLError, ValueError):  # ValueError: int() of a number too long to read
        return _UNSURE
    finally:
        parser.dispose()


def _refused_tag(event: yaml.NodeEvent) -> bool:
    """L104: an explicit tag (the non-specific ! and ? aside)."""
    tag = event.tag
    if tag is None or tag == "!" or tag == "?":
        return False
    implicit = getattr(event, "implicit", True)
    return tag.startswith("!") or not (implicit is True or implicit == (True, True))


def _line_col(text: str, index: int) -> Position:
    start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - start + 1


def _clamp(text: str, line: int, col: int) -> Position:
    """A position inside the text: PyYAML's end-of-stream mark may lie one past the last line."""
    lines = text.split("\n")
    line = min(max(line, 1), len(lines))
    return line, min(max(col, 1), len(lines[line - 1].removesuffix("\r")) + 1)


def _fold(text: str, builder: _Builder) -> None:
    display = builder.display
    try:
        for event in yaml.parse(text, Loader=_Loader):
            builder.feed(event)
    except LoadError as exc:
        d = exc.diagnostic
        line, col = _clamp(text, d.line, d.col)
        if (line, col) != (d.line, d.col):
            raise LoadError(Diagnostic(d.file, line, col, d.code, d.message, hint=d.hint)) from None
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _clamp(text, mark.line + 1, mark.column + 1) if mark else (1, 1)
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


class _Builder:
    """Folds parser events into dicts, lists and scalars; with `record`, also every node's position
    and every scalar's source text by JSON pointer (the second, on-demand pass)."""

    def __init__(self, display: str, *, record: bool) -> None:
        self.display = display
        self.record = record
        self.stack: list[tuple[Any, str, list[Any]]] = []  # (container, pointer, [pending key])
        self.result: Any = None
        self.documents = 0
        self.positions: dict[str, Position] = {}
        self.key_positions: dict[str, Position] = {}
        self.scalars: dict[str, tuple[str, bool]] = {}

    def error(self, event: yaml.Event, code: str, message: str, hint: str = "") -> LoadError:
        mark = event.start_mark
        return LoadError(Diagnostic(self.display, mark.line + 1, mark.column + 1, code, message, hint=hint))

    def feed(self, event: yaml.Event) -> None:
        kind = type(event)
        if kind is yaml.ScalarEvent or kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            self._node(event)
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            container = self.stack.pop()[0]
            self._attach(container)
        elif kind is yaml.DocumentStartEvent:
            self.documents += 1
            if self.documents > 1:
                raise self.error(
                    event,
                    "L101",
                    "a spec file holds exactly one YAML document",
                    hint="split the documents into separate files",
                )
        elif kind is yaml.AliasEvent:
            raise self.error(
                event,
                "L103",
                f"alias *{event.anchor} is not allowed",
                hint="write the value out; specs do not use anchors or aliases",
            )

    def _node(self, event: yaml.NodeEvent) -> None:
        if event.anchor is not None:
            raise self.error(
                event,
                "L103",
                f"anchor &{event.anchor} is not allowed",
                hint="write the value out; specs do not use anchors or aliases",
            )
        tag = event.tag
        if _refused_tag(event):
            raise self.error(event, "L104", f"tag {tag} is not allowed", hint="remove the tag; values are plain YAML")
        stack = self.stack
        top = stack[-1] if stack else None
        is_key = top is not None and type(top[0]) is dict and not top[2]
        if type(event) is yaml.ScalarEvent:
            if is_key:
                container, pointer, pending = top
                key = event.value
                if key == "<<" and not event.style:
                    raise self.error(
                        event,
                        "L103",
                        "merge key << is not allowed",
                        hint="write the keys out; specs do not use merge keys",
                    )
                if key in container:
                    raise self.error(
                        event,
                        "L102",
                        f"duplicate key {key!r}" + self._first(pointer, key),
                        hint="remove one of the two entries",
                    )
                pending.append(key)
                if self.record:
                    mark = event.start_mark
                    self.key_positions[f"{pointer}/{escape(key)}"] = (mark.line + 1, mark.column + 1)
                return
            plain = not event.style and tag != "!"
            value = event.value
            if plain:
                try:
                    value = resolve_scalar(value)
                except ValueError:  # Python refuses int() of more than 4,300 digits
                    raise self.error(event, "L101", f"the number {event.value[:20]}... is too long to read") from None
            if self.record:
                pointer = self._pointer(top)
                mark = event.start_mark
                self.positions[pointer] = (mark.line + 1, mark.column + 1)
                self.scalars[pointer] = (event.value, plain)
            self._attach(value)
            return
        if is_key:
            raise self.error(event, "L101", "mapping keys must be plain strings")
        if len(stack) >= MAX_DEPTH:
            raise self.error(event, "L107", f"document nested deeper than {MAX_DEPTH} levels")
        pointer = ""
        if self.record:
            pointer = self._pointer(top)
            mark = event.start_mark
            self.positions[pointer] = (mark.line + 1, mark.column + 1)
        stack.append(({} if type(event) is yaml.MappingStartEvent else [], pointer, []))

    def _first(self, pointer: str, key: str) -> str:
        """Where a duplicate key was first defined (the fast pass does not know: parse for it)."""
        first = self.key_positions.get(f"{pointer}/{escape(key)}")
        return f" (first defined at line {first[0]})" if first else ""

    @staticmethod
    def _pointer(top: tuple[Any, str, list[Any]] | None) -> str:
        if top is None:
            return ""
        container, pointer, pending = top
        if type(container) is dict:
            return f"{pointer}/{escape(pending[0])}"
        return f"{pointer}/{len(container)}"

    def _attach(self, value: Any) -> None:
        if not self.stack:
            self.result = value
            return
        container, _, pending = self.stack[-1]
        if type(container) is dict:
            container[pending.pop()] = value
        else:
            container.append(value)
