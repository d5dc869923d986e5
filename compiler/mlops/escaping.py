"""One escaping function per medium that spec text reaches: terminal, GitHub workflow command,
Markdown (with its HTML), XML. Every writer of that medium calls these; none escapes by hand.

Text from specs and policies is data: in no medium may it become a command (`::error::`,
an ANSI escape), markup (HTML, a link, an image, an @mention) or invisible (bidi overrides,
zero-width characters that make a review show something else than what runs).
"""

from __future__ import annotations

import html
import json
import re

# C0 and C1 controls, DEL, and the characters that change how text around them is shown:
# bidi embeddings/overrides/isolates and marks, zero-width characters, line and paragraph
# separators (U+0085 NEL is C1), the BOM, interlinear annotation and object replacement, tag
# characters; and what no UTF-8 or XML document can hold (lone surrogates, U+FFFE, U+FFFF).
_INVISIBLE_BUT_NEWLINE = (
    "\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u202a-\u202e\u2028\u2029\u2060-\u2064\u2066-\u206f"
    "\ud800-\udfff\ufeff\ufff9-\ufffc\ufffe\uffff\U000e0000-\U000e007f"
)
_INVISIBLE = re.compile(f"[\n{_INVISIBLE_BUT_NEWLINE}]")
# JSON text has a line break per value: matching them only to keep them cost a call each
_INVISIBLE_IN_JSON = re.compile(f"[{_INVISIBLE_BUT_NEWLINE}]")


def _shown(ch: str) -> str:
    n = ord(ch)
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch) or (f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}")


def visible(text: str, keep: str = "") -> str:
    """Invisible and control characters written as escapes (`\\x1b`, `\\u202e`), except `keep`."""
    return _INVISIBLE.sub(lambda m: m.group() if m.group() in keep else _shown(m.group()), text)


def has_invisible(text: str, keep: str = "") -> bool:
    return any(m.group() not in keep for m in _INVISIBLE.finditer(text))


# terminal -------------------------------------------------------------------------------


def terminal(text: str) -> str:
    """One line for a terminal or a CI log: no control character, no line break.

    A CI runner reads its log for commands (`::set-output`, `::stop-commands::`) at the start
    of a line; with every break escaped, spec text cannot start a line.
    """
    return visible(text)


def terminal_line(line: str) -> str:
    """A whole output line whose start comes from data (a file name): never a runner command."""
    return "./" + line if line.lstrip().startswith(("::", "##[")) else line


# GitHub workflow commands ---------------------------------------------------------------


def workflow_data(text: str) -> str:
    """The message of `::error ...::message` (line breaks become %0A, as the runner expects)."""
    return visible(text, keep="\n").replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def workflow_property(text: str) -> str:
    """A property value of a workflow command (`file=`, `title=`)."""
    return workflow_data(text).replace(":", "%3A").replace(",", "%2C")


# Markdown (GitHub flavoured) ------------------------------------------------------------

_MD_INLINE = re.compile(r"([\\`*_\[\]<>|~&])")  # what starts markup anywhere in a line
_MD_LEADING = re.compile(r"^(\s*)([#+\-=]|\d+[.)])")  # what starts a block at the start of one
_ZWSP = "&#8203;"  # an entity: the Markdown source itself stays free of invisible characters


def markdown(text: str) -> str:
    """Text inside a Markdown paragraph or table cell: one line, shown literally.

    Every character that can start markup is backslash-escaped (no HTML, entity, link, image,
    emphasis, code, table break); @mentions, e-mail and URL autolinks are broken with a
    zero-width space, which GitHub's mention and autolink filters do not look through.
    """
    text = _MD_INLINE.sub(r"\\\1", visible(text))
    text = _MD_LEADING.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], text)
    text = re.sub(r"(?i)(www)\.", r"\1" + _ZWSP + ".", text)
    return text.replace("@", "@" + _ZWSP).replace("://", ":" + _ZWSP + "//")


def markdown_code(text: str) -> str:
    """Inline code (one line) that survives backticks in the text; `|` is escaped for table cells
    (GitHub reads `\\|` inside a code span of a table as a literal pipe)."""
    text = visible(text)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}".replace("|", "\\|")


def markdown_fence(lines: list[str]) -> str:
    """A code fence longer than any run of backticks in `lines`."""
    longest = max((len(m) for line in lines for m in re.findall(r"`{3,}", line)), default=0)
    return "`" * max(3, longest + 1)


def code_block_line(line: str) -> str:
    """A line inside a fenced code block: shown as is, with invisible characters made visible."""
    return visible(line, keep="\t")


def markdown_html(text: str) -> str:
    """Text inside an HTML element of a Markdown document (`<code>`, `<summary>`)."""
    return html.escape(visible(text), quote=True).replace("@", "@" + _ZWSP)


def html_comment(text: str) -> str:
    """Text inside `<!-- ... -->`: cannot end the comment early."""
    return visible(text).replace("--", "-\u200b-").replace(">", "&gt;")


# JSON -----------------------------------------------------------------------------------


def json_visible(text: str) -> str:
    """Serialized JSON with invisible characters as `\\u` escapes. Outside strings JSON has only
    its indentation's line breaks (kept); inside a string the escape is the same character to every
    reader (json.dumps already escaped the C0 controls there)."""
    if text.isascii() and "\x7f" not in text:  # nearly every file: in ASCII JSON only DEL can hide
        return text
    return _INVISIBLE_IN_JSON.sub(lambda m: json.dumps(m.group())[1:-1], text)


# XML ------------------------------------------------------------------------------------


def xml(text: str) -> str:
    """Character data or an attribute value of an XML 1.0 document, before ElementTree quotes
    `<&>"`: XML 1.0 cannot hold most control characters at all, even as references."""
    return visible(text, keep="\n\t")
