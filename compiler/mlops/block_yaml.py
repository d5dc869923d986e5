"""Block-style YAML, byte for byte what `yaml.dump(data, Dumper=<a CSafeDumper>, default_flow_style=False,
width=...)` writes, about 15x faster for the rendered files' data (plain dicts, lists and scalars).

PyYAML's C dumper still builds a Python node per value and asks the Python resolver about every
scalar twice, which made the Pulumi stack config of 1,000 models cost seconds. Here the layout
(block mappings, indentless sequences in mappings, `{}`/`[]` for empty ones) is written directly,
and each distinct scalar is spelled once: plain where libyaml's own analysis (emitter.c,
yaml_emitter_analyze_scalar) and the dumper's implicit resolvers say it writes a printable ASCII
string plain, single-quoted where it would quote one, and for anything else (floats, non-ASCII,
control characters, literal blocks) by libyaml itself on a one-value document. Whatever this
module cannot vouch for (a line libyaml would fold at `width`, a long key, a shared container that
PyYAML would write as an alias, a type without a representer here) goes to `yaml.dump` whole.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# printable ASCII, no indicator that matters in block context at the start, no ": " / " #" inside;
# what libyaml writes plain when the resolver also reads it back as a string
_PLAIN = re.compile(r"(?![-?:](?: |$))(?!---|\.\.\.)(?![#,\[\]{}&*!|>'\"%@`])[\x21-\x7e][\x20-\x7e]*")
_UNSAFE_INSIDE = re.compile(r": | #|:$| $")
_ASCII_LINE = re.compile(r"[\x20-\x7e]*")
_REMEMBERED = 200_000  # distinct strings an emitter keeps the spelling of


class _Fallback(Exception):
    """The fast path cannot vouch for these bytes: let PyYAML write the document."""


class Emitter:
    """One dumper configuration; its scalar spellings are kept across documents (they are pure)."""

    def __init__(
        self, dumper: type, *, width: int, allow_unicode: bool, sort_keys: bool, literal: tuple[type, ...] = ()
    ) -> None:
        self.dumper = dumper
        self.options = {
            "Dumper": dumper,
            "default_flow_style": False,
            "width": width,
            "allow_unicode": allow_unicode,
            "sort_keys": sort_keys,
        }
        self.width = width
        self.sort_keys = sort_keys
        self.resolvers = dumper.yaml_implicit_resolvers
        self.literal = literal  # str subclasses the dumper writes as literal blocks (`|`)
        self._strings: dict[str, str] = {}
        self._floats: dict[float, str] = {}
        self._keys: dict[str, str] = {}
        self._blocks: dict[tuple[str, int], str] = {}
        self.fallbacks = 0  # documents handed to yaml.dump whole

    def dump(self, data: Any) -> str:
        if (
            len(self._strings) + len(self._floats) > _REMEMBERED
        ):  # a long-lived process (mlops dev) compiles again and again
            self._strings.clear()
            self._keys.clear()
            self._floats.clear()
            self._blocks.clear()
        if type(data) is not dict or not data:
            return yaml.dump(data, **self.options)
        out: list[str] = []
        try:
            self._mapping(data, 0, out, False, set())
        except _Fallback:
            self.fallbacks += 1
            return yaml.dump(data, **self.options)
        return "".join(out)

    def item(self, data: dict, indent: int) -> str | None:
        """`data` as one item of a block sequence whose dashes sit at `indent`: the lines `dump` writes
        for it inside a document; None where `dump` would hand the document to yaml.dump."""
        if type(data) is not dict or not data:
            return None
        out = [" " * indent + "- "]
        try:
            self._mapping(data, indent + 2, out, True, set())
        except _Fallback:
            return None
        return "".join(out)

    # --- layout ---------------------------------------------------------------------------------

    def _mapping(self, data: dict, indent: int, out: list[str], inline: bool, seen: set[int]) -> None:
        if id(data) in seen:  # _once, inlined: called for every container
            raise _Fallback
        seen.add(id(data))
        items = sorted(data.items(), key=_first) if self.sort_keys else data.items()
        pad = " " * indent
        keys, strings, width = self._keys, self._strings, self.width  # the loop runs once per value written
        for key, value in items:
            if type(key) is not str:
                raise _Fallback
            column = indent if inline else 0  # what precedes `head` on its line
            head = ("" if inline else pad) + (keys.get(key) or self._key(key))  # a spelling is never ""
            inline = False
            t = type(value)
            if t is str:
                line = head + ": " + (strings.get(value) or self._scalar(value))
                if column + len(line) > width:
                    raise _Fallback  # libyaml would fold it at a space past `width`
                out.append(line + "\n")
            elif t is dict:
                if value:
                    out.append(head + ":\n")
                    self._mapping(value, indent + 2, out, False, seen)
                else:
                    self._once(value, seen)
                    out.append(head + ": {}\n")
            elif t is list:
                if value:
                    out.append(head + ":\n")
                    self._sequence(value, indent, out, False, seen)  # indentless, as libyaml writes it
                else:
                    self._once(value, seen)
                    out.append(head + ": []\n")
            elif t in self.literal:
                out.append(head + ": " + self._block(value, indent + 2))
            else:
                line = head + ": " + self._scalar(value)
                if column + len(line) > self.width:
                    raise _Fallback  # libyaml would fold it at a space past `width`
                out.append(line + "\n")

    def _sequence(self, data: list, indent: int, out: list[str], inline: bool, seen: set[int]) -> None:
        self._once(data, seen)
        pad = " " * indent
        for item in data:
            column = indent if inline else 0
            head = ("" if inline else pad) + "- "
            inline = False
            t = type(item)
            if t is dict and item:
                out.append(head)
                self._mapping(item, indent + 2, out, True, seen)
            elif t is list and item:
                out.append(head)
                self._sequence(item, indent + 2, out, True, seen)
            elif t is dict or t is list:
                self._once(item, seen)
                out.append(head + ("{}\n" if t is dict else "[]\n"))
            elif t in self.literal:
                raise _Fallback  # a literal block as a sequence item: not in any rendered file
            else:
                line = head + self._scalar(item)
                if column + len(line) > self.width:
                    raise _Fallback
                out.append(line + "\n")

    @staticmethod
    def _once(container: Any, seen: set[int]) -> None:
        """PyYAML writes a container met twice as an anchor and an alias; leave that to it."""
        if id(container) in seen:
            raise _Fallback
        seen.add(id(container))

    # --- scalars --------------------------------------------------------------------------------

    def _scalar(self, value: Any) -> str:
        t = type(value)
        if t is str:
            spelled = self._strings.get(value)
            if spelled is None:
                spelled = self._strings[value] = self._string(value)
            return spelled
        if t is bool:
            return "true" if value else "false"
        if t is int:
            return str(value)
        if value is None:
            return "null"
        if t is float:
            spelled = self._floats.get(value)  # 0.0 and -0.0 are equal keys but spelled apart
            if spelled is None or value == 0:
                spelled = self._floats[value] = self._by_libyaml(value)
            return spelled
        raise _Fallback

    def _string(self, s: str) -> str:
        if _ASCII_LINE.fullmatch(s):
            if self._plain(s):
                return s
            return "'" + s.replace("'", "''") + "'"  # quoting allowed: no break, no special character
        return self._by_libyaml(s)

    def _plain(self, s: str) -> bool:
        if not _PLAIN.fullmatch(s) or _UNSAFE_INSIDE.search(s):
            return False
        return not any(rx.match(s) for _, rx in self.resolvers.get(s[0], ()))

    def _key(self, key: str) -> str:
        spelled = self._keys.get(key)
        if spelled is None:
            if _ASCII_LINE.fullmatch(key) and len(key) <= 100:  # a simple key (<= 128), spelled as a value is
                spelled = self._string(key)
            else:
                out = yaml.dump({key: 0}, **self.options)
                if not out.endswith(": 0\n") or out.count("\n") != 1 or out.startswith("? "):
                    raise _Fallback  # not a simple key
                spelled = out[:-4]
            self._keys[key] = spelled
        return spelled

    def _by_libyaml(self, value: Any) -> str:
        out = yaml.dump({"k": value}, **self.options)
        if not out.startswith("k: ") or out.count("\n") != 1:
            raise _Fallback  # a multi-line spelling: its breaks depend on the column
        return out[3:-1]

    def _block(self, value: str, indent: int) -> str:
        """A literal block scalar (`|`) whose lines sit at `indent`, spelled by libyaml."""
        spelled = self._blocks.get((value, indent))
        if spelled is None:
            doc: Any = {"k": value}
            for _ in range(indent // 2 - 1):
                doc = {"k": doc}
            out = yaml.dump(doc, **self.options)
            marker = " " * (indent - 2) + "k: "
            start = out.find("\n" + marker) + 1 if indent > 2 else 0
            if not out.startswith(marker, start) or out[start + len(marker)] != "|":
                raise _Fallback
            if out.endswith("\n...\n"):  # keep chomping (`|+`): libyaml ends the stream, not the block, with `...`
                raise _Fallback
            spelled = self._blocks[value, indent] = out[start + len(marker) :]
        return spelled


def _first(item: tuple[Any, Any]) -> Any:
    return item[0]
