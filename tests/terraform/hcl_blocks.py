"""A small reader for the HCL the Terraform code here is written in: top-level blocks and their
top-level attributes, as raw text. Enough for documentation and consistency checks; no dependency.

It understands strings (with escapes and `${ ... }` interpolations that may hold strings), comments
(`#`, `//`, `/* */`) and bracket nesting. It does not evaluate anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_OPEN = "([{"
_CLOSE = ")]}"


CODE, STRING, COMMENT = "code", "string", "comment"


def _scan(text: str):
    """Yield (index, char, kind) for every character; kind is CODE, STRING or COMMENT.

    Code inside a string's `${ ... }` counts as STRING: only top-level code matters here.
    """
    i, n = 0, len(text)
    modes: list[str] = ["code"]  # "code", "string", "interp" (code inside ${ } of a string)
    interp_depth: list[int] = []
    while i < n:
        c = text[i]
        mode = modes[-1]
        if mode == "string":
            if c == "\\" and i + 1 < n:
                yield i, c, STRING
                yield i + 1, text[i + 1], STRING
                i += 2
                continue
            if text.startswith("${", i):
                modes.append("interp")
                interp_depth.append(0)
                yield i, c, STRING
                yield i + 1, "{", STRING
                i += 2
                continue
            if c == '"':
                modes.pop()
            yield i, c, STRING
            i += 1
            continue
        outer = STRING if mode == "interp" else CODE
        if c == "#" or text.startswith("//", i) or text.startswith("/*", i):
            if text.startswith("/*", i):
                end = text.find("*/", i + 2)
                end = n if end == -1 else end + 2
            else:
                end = text.find("\n", i)
                end = n if end == -1 else end
            for j in range(i, end):
                yield j, text[j], COMMENT
            i = end
            continue
        if c == '"':
            modes.append("string")
            yield i, c, STRING
            i += 1
            continue
        if mode == "interp":
            if c == "{":
                interp_depth[-1] += 1
            elif c == "}":
                if interp_depth[-1] == 0:
                    interp_depth.pop()
                    modes.pop()
                else:
                    interp_depth[-1] -= 1
        yield i, c, outer
        i += 1


def without_comments(text: str) -> str:
    """The text with every comment replaced by spaces (line breaks kept)."""
    out = list(text)
    for i, c, kind in _scan(text):
        if kind == COMMENT and c != "\n":
            out[i] = " "
    return "".join(out)


def _matching_brace(text: str, open_index: int) -> int:
    depth = 0
    for i, c, kind in _scan(text):
        if i < open_index or kind != CODE:
            continue
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unbalanced brackets after offset {open_index}")


@dataclass
class Block:
    kind: str
    labels: tuple[str, ...]
    body: str

    @property
    def name(self) -> str:
        return self.labels[0] if self.labels else ""

    def attributes(self) -> dict[str, str]:
        return attributes(self.body)


_BLOCK_START = re.compile(r'^([A-Za-z_][\w-]*)((?:\s+"[^"]*")*)\s*\{', re.MULTILINE)


def blocks(text: str, kind: str | None = None) -> list[Block]:
    """Top-level blocks (optionally only of one kind), in file order."""
    clean = without_comments(text)
    found: list[Block] = []
    pos = 0
    while True:
        m = _BLOCK_START.search(clean, pos)
        if not m:
            break
        open_index = m.end() - 1
        close_index = _matching_brace(clean, open_index)
        if kind is None or m.group(1) == kind:
            labels = tuple(re.findall(r'"([^"]*)"', m.group(2)))
            found.append(Block(m.group(1), labels, clean[open_index + 1 : close_index]))
        pos = close_index + 1
    return found


_ATTRIBUTE_START = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*=(?!=)")


def attributes(body: str) -> dict[str, str]:
    """Top-level `name = value` attributes of a block body (or of a whole .tfvars file), raw values."""
    # Split into statements at line breaks outside brackets and strings.
    statements: list[str] = []
    depth = 0
    start = 0
    for i, c, kind in _scan(body):
        if kind != CODE:
            continue
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif c == "\n" and depth == 0:
            statements.append(body[start:i])
            start = i + 1
    statements.append(body[start:])
    result: dict[str, str] = {}
    for statement in statements:
        m = _ATTRIBUTE_START.match(statement)
        if m:
            result[m.group(1)] = statement[m.end() :].strip()
    return result


def string_value(raw: str) -> str:
    """The text of a quoted HCL string literal."""
    raw = raw.strip()
    if not (raw.startswith('"') and raw.endswith('"')):
        raise ValueError(f"not a string literal: {raw!r}")
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), raw[1:-1])


def read_blocks(directory: Path, kind: str) -> list[Block]:
    """Blocks of one kind across the .tf files of a directory (sorted by file name)."""
    found: list[Block] = []
    for path in sorted(directory.glob("*.tf")):
        found.extend(blocks(path.read_text(), kind))
    return found
