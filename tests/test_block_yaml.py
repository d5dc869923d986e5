"""mlops.block_yaml writes exactly the bytes PyYAML's libyaml dumper writes, for any data.

The rendered Pulumi stack configs and Prometheus rules files rely on it (tests/test_outputs.py
pins the examples' files); here random documents, with the strings that decide YAML's quoting
(indicators, numbers and booleans as text, ": " and " #", spaces at the ends, breaks, tabs,
non-ASCII and invisible characters, long lines), are compared with yaml.dump byte for byte.
"""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mlops.block_yaml import Emitter


class _Block(str):
    pass


class _Dumper(yaml.CSafeDumper):
    pass


_Dumper.add_representer(
    _Block, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="|")
)

TRICKY = [
    "",
    " ",
    "-",
    "- a",
    "-a",
    "?",
    "? x",
    ":",
    "a:",
    "a: b",
    "a:b",
    "a #b",
    "a#b",
    "#a",
    "---",
    "...x",
    "yes",
    "No",
    "null",
    "~",
    "1",
    "0x1F",
    "1e3",
    ".5",
    "1_000",
    "2026-12-01",
    "<<",
    "=",
    "'q'",
    '"q"',
    "it's",
    "{{ $value }}",
    "[a]",
    "a, b",
    "&x",
    "*x",
    "!tag",
    "%x",
    "@x",
    "`x`",
    "|",
    ">",
    "a ",
    " a",
    "a\tb",
    "a\nb",
    "a\n",
    "\n",
    "é",
    "日本",
    "a\u202eb",
    "a\u200bb",
    "\x07",
    "\U0001f600",
]
_text = st.one_of(
    st.sampled_from(TRICKY),
    st.text(alphabet=st.sampled_from("ab -:#'\"?,[]{}.0\n\té\u202e"), max_size=12),
    st.text(max_size=8),
    st.builds(lambda s, n: (s + " ") * n, st.sampled_from(["word", "a: b", "x"]), st.integers(1, 300)),
)
_scalar = st.one_of(
    _text,
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
# a literal block is drawn as ("|", text) and made a _Block after drawing: hypothesis replays only
# the built-in types it drew
_value = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=4), st.tuples(st.just("|"), _text)
    ),
    max_leaves=30,
)
_document = st.dictionaries(_text, _value, min_size=1, max_size=5)


def _blocks(value: object) -> object:
    if isinstance(value, tuple):
        return _Block(value[1])
    if isinstance(value, dict):
        return {k: _blocks(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_blocks(v) for v in value]
    return value


def _expected(data: object, **options: object) -> str:
    return yaml.dump(data, Dumper=_Dumper, default_flow_style=False, **options)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _document,
    st.sampled_from([1000, 60]),
    st.booleans(),
    st.booleans(),
)
# a kept final line break (`|2+`) leaves the stream open-ended: libyaml writes `...` at its end
@example({"": ("|", "\n"), "0": {}}, 1000, False, False)
def test_same_bytes_as_pyyaml(data: dict, width: int, allow_unicode: bool, sort_keys: bool) -> None:
    data = _blocks(data)
    emitter = Emitter(_Dumper, width=width, allow_unicode=allow_unicode, sort_keys=sort_keys, literal=(_Block,))
    expected = _expected(data, width=width, allow_unicode=allow_unicode, sort_keys=sort_keys)
    assert emitter.dump(data) == expected
    assert emitter.dump(data) == expected  # the remembered spellings give the same bytes again


_plain_key = st.from_regex(r"[a-z][a-z0-9_.:/-]{0,30}", fullmatch=True)
_line = st.one_of(
    st.sampled_from([t for t in TRICKY if "\n" not in t]),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x85\u2028\u2029"), max_size=8
    ),
)
_common = st.recursive(
    st.one_of(_line, st.integers(), st.floats(), st.booleans(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_plain_key, inner, max_size=4)),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_plain_key, st.one_of(_common, st.just(("|", '{\n  "a": 1\n}\n'))), min_size=1))
def test_the_fast_path_writes_the_rendered_files_shapes(data: dict) -> None:
    """Short lines, simple keys, no shared container: written without handing anything to yaml.dump."""
    data = _blocks(data)
    emitter = Emitter(_Dumper, width=1000, allow_unicode=False, sort_keys=True, literal=(_Block,))
    assert emitter.dump(data) == _expected(data, width=1000, allow_unicode=False, sort_keys=True)
    assert emitter.fallbacks == 0


def test_shared_containers_are_aliases_as_pyyaml_writes_them() -> None:
    shared = {"a": [1, 2]}
    data = {"x": shared, "y": shared}
    emitter = Emitter(_Dumper, width=1000, allow_unicode=False, sort_keys=True)
    out = emitter.dump(data)
    assert out == _expected(data, width=1000, allow_unicode=False, sort_keys=True)
    assert "&id001" in out
    assert emitter.fallbacks == 1


def test_literal_blocks_at_any_depth() -> None:
    text = _Block('{\n  "a": 1,\n\n  "b": [2]\n}')
    data = {"k": text, "m": [{"n": {"deep": text}}], "z": {"y": {"x": {"w": text}}}}
    emitter = Emitter(_Dumper, width=1000, allow_unicode=False, sort_keys=True, literal=(_Block,))
    out = emitter.dump(data)
    assert out == _expected(data, width=1000, allow_unicode=False, sort_keys=True)
    assert yaml.safe_load(out)["z"]["y"]["x"]["w"] == text
