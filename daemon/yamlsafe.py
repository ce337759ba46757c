"""A bounded YAML reader for config files: no alias bombs, no deep nesting, no duplicate keys.

PyYAML's SafeLoader shares an aliased node instead of copying it, but anything that walks
the result (validation, an error quoting a value) expands it: 300 bytes of nested aliases
become gigabytes. :func:`load_yaml` refuses a document whose expanded size exceeds
MAX_EXPANDED_NODES, one nesting deeper than MAX_DEPTH, a recursive alias, more than
MAX_ALIASES aliases, or a key repeated in one mapping.
"""

from __future__ import annotations

import reprlib
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_ALIASES = 100
"""Most ``*alias`` uses in one document."""
MAX_DEPTH = 64
"""Deepest nesting of sequences/mappings."""
MAX_EXPANDED_NODES = 20_000
"""Most nodes of the document with every alias expanded."""

_QUOTER = reprlib.Repr()
_QUOTER.maxlevel, _QUOTER.maxstring, _QUOTER.maxother = 3, 80, 80
_QUOTER.maxlist = _QUOTER.maxdict = _QUOTER.maxtuple = _QUOTER.maxset = 6


def quote(value: Any) -> str:
    """A bounded repr of ``value`` for error messages (long or nested values are elided)."""
    return _QUOTER.repr(value)


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader counting aliases and depth while composing, refusing duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        """Count aliases and nesting before composing the next node."""
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_ALIASES} aliases (*name); refused")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.YAMLError(f"nested deeper than {MAX_DEPTH} levels; refused")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict:
        """A mapping whose explicit keys are unique (merge keys ``<<`` may be overridden)."""
        if isinstance(node, MappingNode):
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:
                    continue  # unhashable: SafeLoader's own error follows
                if first is not key_node.start_mark:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"found duplicate key {quote(key)}", key_node.start_mark,
                        f"first at line {first.line + 1}")
        return super().construct_mapping(node, deep)


def _measure(node: Node, depth: int, memo: dict[int, tuple[int, int]],
             open_ids: set[int]) -> tuple[int, int]:
    """(nodes, height) under ``node`` with aliases expanded; YAMLError beyond the bounds."""
    key = id(node)
    if key in open_ids:
        raise yaml.YAMLError("recursive alias (a node contains itself); refused")
    size, height = memo.get(key) or (1, 1)
    if key not in memo:
        open_ids.add(key)
        if isinstance(node, SequenceNode):
            children: list[Node] = list(node.value)
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        for child in children:
            child_size, child_height = _measure(child, depth + 1, memo, open_ids)
            size, height = size + child_size, max(height, child_height + 1)
            if size > MAX_EXPANDED_NODES:
                raise yaml.YAMLError(f"more than {MAX_EXPANDED_NODES} values once aliases are "
                                     "expanded (an alias bomb?); refused")
        open_ids.discard(key)
        memo[key] = size, height
    if depth + height > MAX_DEPTH:
        raise yaml.YAMLError(f"nested deeper than {MAX_DEPTH} levels once aliases are "
                             "expanded; refused")
    return size, height


def one_line(error: yaml.YAMLError) -> str:
    """A YAML error as one line: 'context: problem at line L, column C; note'."""
    if not isinstance(error, yaml.MarkedYAMLError) or not error.problem:
        return " ".join(str(error).split())
    mark = error.problem_mark
    parts = [f"{error.context}: " if error.context else "", error.problem,
             f" at line {mark.line + 1}, column {mark.column + 1}" if mark else "",
             f"; {error.note}" if error.note else ""]
    return " ".join("".join(parts).split())


def load_yaml(text: str) -> Any:
    """Parse one YAML document within the bounds above (yaml.YAMLError otherwise)."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _measure(node, 0, {}, set())
        return loader.construct_document(node)
    finally:
        loader.dispose()
