"""JSON trees edited by dotted path, and written to bytes with fragments `json` cannot write:
numbers of thousands of digits, nesting 100,000 deep, duplicate keys, invalid UTF-8.

    tree = json.loads(valid)
    set_path(tree, "payload.lines.0.amount", "NaN")
    tree["payload"]["x"] = Raw(b"[" * 100_000 + b"]" * 100_000)
    value = dumps(tree)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_MARK = "\ue000"  # a private-use character: never in a real envelope


@dataclass(frozen=True)
class Raw:
    """Bytes written verbatim where this value stands (need not be valid JSON or UTF-8)."""

    text: bytes


@dataclass(frozen=True)
class DupKey:
    """A dict key written as `name`, so an object can carry `name` twice (use with a plain `name`)."""

    name: str
    n: int = 0


def _parts(path: str) -> list[str | int]:
    return [int(p) if p.isdigit() else p for p in path.split(".")]


def _index(node: Any, part: str | int) -> str | int:
    return str(part) if isinstance(node, dict) else part  # a dict may have digit keys ("0")


def get_path(tree: Any, path: str) -> Any:
    node = tree
    for part in _parts(path):
        node = node[_index(node, part)]
    return node


def set_path(tree: Any, path: str, value: Any) -> None:
    *parents, last = _parts(path)
    node = get_path(tree, ".".join(str(p) for p in parents)) if parents else tree
    node[_index(node, last)] = value


def del_path(tree: Any, path: str) -> None:
    *parents, last = _parts(path)
    node = get_path(tree, ".".join(str(p) for p in parents)) if parents else tree
    del node[_index(node, last)]


def dumps(tree: Any) -> bytes:
    """Compact JSON (as the platform writes it), with `Raw` fragments and `DupKey` keys in place.

    Strings are written unescaped (UTF-8); a lone surrogate becomes invalid UTF-8 bytes."""
    raws: list[bytes] = []
    dups: list[str] = []

    def swap(node: Any) -> Any:
        if isinstance(node, Raw):
            raws.append(node.text)
            return f"{_MARK}R{len(raws) - 1}{_MARK}"
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if isinstance(k, DupKey):
                    dups.append(k.name)
                    k = f"{_MARK}D{len(dups) - 1}{_MARK}"
                out[k] = swap(v)
            return out
        if isinstance(node, (list, tuple)):
            return [swap(v) for v in node]
        return node

    text = json.dumps(swap(tree), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    data = text.encode("utf-8", "surrogatepass")
    for i, name in enumerate(dups):
        data = data.replace(_quoted(f"{_MARK}D{i}{_MARK}"), json.dumps(name, ensure_ascii=False).encode())
    for i, raw in enumerate(raws):
        data = data.replace(_quoted(f"{_MARK}R{i}{_MARK}"), raw)
    return data


def _quoted(text: str) -> bytes:
    return b'"' + text.encode() + b'"'


def walk(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every (path, node) below `tree`, parents before children (paths as `set_path` takes them)."""
    out: list[tuple[str, Any]] = []
    stack: list[tuple[str, Any]] = [(prefix, tree)]
    while stack:
        path, node = stack.pop()
        if path:
            out.append((path, node))
        if isinstance(node, dict):
            items = [(f"{path}.{k}" if path else str(k), v) for k, v in node.items() if isinstance(k, str)]
        elif isinstance(node, list):
            items = [(f"{path}.{i}" if path else str(i), v) for i, v in enumerate(node)]
        else:
            continue
        stack.extend(reversed(items))
    return out
