"""YAML text → plain data, plus where in the file every key and value stands.

PyYAML's safe loader is used only to compose the node tree and to construct
scalars; the tree is walked here so that every value gets a spec path and a
(line, column), duplicate keys are caught (PyYAML silently keeps the last),
and pathological documents (alias bombs, absurd nesting) stop early.

libyaml's parser (``yaml.CSafeLoader``, where PyYAML was built with it) reads
a spec about ten times faster than the pure-Python one and gives the same
nodes and marks. Its error messages are worded differently, so a spec it
refuses, or that has a problem, is read again by the pure-Python parser,
whose messages are the ones users see (and the tests quote).
"""

from __future__ import annotations

import datetime
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..errors import SpecError, SpecProblem

PathPart = str | int
SpecPath = tuple[PathPart, ...]

MAX_SPEC_BYTES = 2_000_000
MAX_NODES = 200_000
MAX_DEPTH = 64

_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")

if TYPE_CHECKING:
    _Loader = yaml.SafeLoader | yaml.CSafeLoader

_FAST_LOADER: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)


def format_path(path: Sequence[PathPart]) -> str:
    """``("targets", 2, "timeout")`` → ``targets[2].timeout``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


@dataclass(frozen=True)
class Document:
    """A loaded spec file: its data and the positions of its nodes."""

    file: str
    data: Any
    text: str
    value_positions: dict[SpecPath, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[SpecPath, tuple[int, int]] = field(default_factory=dict)
    plain_scalars: dict[SpecPath, str] = field(default_factory=dict)  # unquoted values as written

    def locate(self, path: Sequence[PathPart], *, key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of ``path``, or of its nearest located ancestor.

        ``key=True`` prefers the position of the mapping key over its value,
        which is where a user looks for a misspelt or unwanted key.
        """
        if not self.value_positions:  # built from data, not text (load_mapping): there are no lines
            return (0, 0)
        current: SpecPath = tuple(path)
        while True:
            if key and current in self.key_positions:
                return self.key_positions[current]
            if current in self.value_positions:
                return self.value_positions[current]
            if not current:
                return (1, 1)
            current = current[:-1]

    def problem(self, path: Sequence[PathPart], message: str, *, key: bool = False) -> SpecProblem:
        line, column = self.locate(path, key=key)
        return SpecProblem(self.file, line, column, format_path(path), message)


class _Walker:
    def __init__(self, loader: _Loader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.nodes = 0
        self.problems: list[SpecProblem] = []
        self.value_positions: dict[SpecPath, tuple[int, int]] = {}
        self.key_positions: dict[SpecPath, tuple[int, int]] = {}
        self.plain_scalars: dict[SpecPath, str] = {}

    def _problem(self, node: yaml.Node, path: SpecPath, message: str) -> None:
        mark = node.start_mark
        self.problems.append(SpecProblem(self.file, mark.line + 1, mark.column + 1, format_path(path), message))

    def build(self, node: yaml.Node, path: SpecPath) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Abort(f"the document has more than {MAX_NODES} nodes (an alias bomb?)", node)
        if len(path) > MAX_DEPTH:
            raise _Abort(f"the document is nested deeper than {MAX_DEPTH} levels", node)
        self.value_positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.CollectionNode) and node.tag not in _PLAIN_COLLECTION_TAGS:
            self._problem(node, path, f"YAML tags are not allowed here ({node.tag})")
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.ScalarNode) and not node.style:  # plain: None from PyYAML's parser, "" from libyaml's
            self.plain_scalars[path] = node.value
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: SpecPath) -> Any:
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            self._problem(node, path, f"cannot load this value: {exc.problem}")
            return None
        except ValueError as exc:  # a date like 2024-13-45, an integer of 5,000 digits
            self._problem(node, path, f"cannot read {node.value[:40]!r}: {exc}; quote it to keep it text")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            # .nan passes every numeric bound (each comparison is false) and .inf
            # means "never"; neither is a sensible setting.
            self._problem(node, path, f"expected a finite number, got {value}")
            return None
        return value

    def _mapping(self, node: yaml.MappingNode, path: SpecPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self._problem(key_node, path, "merge keys (<<) are not supported; write the keys out")
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                kind = "a mapping" if isinstance(key_node, yaml.MappingNode) else "a list"
                self._problem(key_node, path, f"keys must be plain names, got {kind}")
                continue
            key = self._scalar(key_node, path)
            if not isinstance(key, str):
                hint = ""
                if isinstance(key, bool):
                    hint = f' (YAML reads an unquoted {key_node.value} as a boolean: quote it, e.g. "{key_node.value}")'
                written = key_node.value or "an empty key"
                self._problem(key_node, path, f"keys must be strings, got {written}{hint}")
                continue
            line = key_node.start_mark.line + 1
            if key in first_seen:
                self._problem(
                    key_node, path + (key,), f"duplicate key {key!r} (first defined on line {first_seen[key]})"
                )
                continue
            first_seen[key] = line
            self.key_positions[path + (key,)] = (line, key_node.start_mark.column + 1)
            result[key] = self.build(value_node, path + (key,))
        return result


class _Abort(Exception):
    def __init__(self, message: str, node: yaml.Node) -> None:
        super().__init__(message)
        self.message = message
        self.node = node


def _check_nesting(text: str, file: str, loader: type[_Loader]) -> None:
    """Refuse absurd nesting before PyYAML's recursive composer meets it.

    The event parser is iterative, so counting depth on its events is safe
    where composing the tree would hit Python's recursion limit.
    """
    depth = 0
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
                    raise SpecError([SpecProblem(file, line, column, "", f"nested deeper than {MAX_DEPTH} levels")])
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return  # composing reports syntax errors with their location


def _syntax_problem(exc: yaml.MarkedYAMLError, file: str) -> SpecProblem:
    """A YAML syntax error, located where the user has to look.

    PyYAML's problem mark is where it gave up: for an unclosed quote, the end
    of the file, which says nothing. A scanner error's context mark is the
    start of the token it could not finish (the opening quote), so that is
    where it is reported. A parser error's context is a whole enclosing
    block, too far from the mistake to be worth pointing at.
    """
    problem = exc.problem or exc.context or "invalid YAML"
    mark = exc.problem_mark or exc.context_mark
    if isinstance(exc, yaml.scanner.ScannerError) and exc.context_mark is not None and exc.context:
        mark = exc.context_mark
        problem = f"{problem} ({exc.context} that starts here)"
    line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    return SpecProblem(file, line, column, "", f"YAML syntax error: {problem}")


def load_text(text: str, file: str = "<spec>") -> Document:
    """Parse YAML ``text``; raise SpecError with located problems if it is not usable."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
        raise SpecError([SpecProblem(file, 1, 1, "", f"the spec is larger than {MAX_SPEC_BYTES} bytes")])
    # libyaml lets through characters PyYAML's reader refuses: those texts go the slow way, and are refused.
    if _FAST_LOADER is not None and not yaml.reader.Reader.NON_PRINTABLE.search(text):
        try:
            return _load(text, file, _FAST_LOADER)
        except SpecError:
            pass  # reported below, in PyYAML's words
    return _load(text, file, yaml.SafeLoader)


def _load(text: str, file: str, loader_class: type[_Loader]) -> Document:
    _check_nesting(text, file, loader_class)
    try:
        loader = loader_class(text)
    except yaml.YAMLError as exc:  # a control character the reader refuses
        raise SpecError([SpecProblem(file, 0, 0, "", f"YAML error: {exc}")]) from None
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            raise SpecError([_syntax_problem(exc, file)]) from None
        except yaml.YAMLError as exc:
            raise SpecError([SpecProblem(file, 0, 0, "", f"YAML error: {exc}")]) from None
        if root is None:
            raise SpecError([SpecProblem(file, 1, 1, "", "the spec is empty")])
        walker = _Walker(loader, file)
        try:
            data = walker.build(root, ())
        except _Abort as exc:
            walker._problem(exc.node, (), exc.message)
            data = None
    finally:
        loader.dispose()
    if walker.problems:
        raise SpecError(walker.problems)
    return Document(file, data, text, walker.value_positions, walker.key_positions, walker.plain_scalars)


STDIN = "<stdin>"  # the file name problems of a spec read from standard input give


def load_file(path: str | Path) -> Document:
    """Read and parse a spec file (``-``: standard input); every failure is a SpecError naming the file."""
    name = STDIN if str(path) == "-" else str(path)
    try:
        # From stdin, no more than it takes to know the spec is too large.
        raw = sys.stdin.buffer.read(MAX_SPEC_BYTES + 1) if name == STDIN else Path(path).read_bytes()
    except FileNotFoundError:
        raise SpecError([SpecProblem(name, 0, 0, "", "no such file")]) from None
    except IsADirectoryError:
        raise SpecError([SpecProblem(name, 0, 0, "", "is a directory, not a spec file")]) from None
    except OSError as exc:
        raise SpecError([SpecProblem(name, 0, 0, "", f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError([SpecProblem(name, 1, 1, "", f"the spec is larger than {MAX_SPEC_BYTES} bytes")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError([_not_utf8(name, raw, exc)]) from None
    return load_text(text, name)


def _not_utf8(name: str, raw: bytes, exc: UnicodeDecodeError) -> SpecProblem:
    """Where the first byte that is not UTF-8 is, as an editor counts: line, and characters into it."""
    # utf-8-sig reports offsets past a byte-order mark; the file offset includes it.
    data = exc.object if isinstance(exc.object, bytes) else raw
    start = exc.start + len(raw) - len(data)
    line_start = data.rfind(b"\n", 0, exc.start) + 1
    line = data.count(b"\n", 0, exc.start) + 1
    # Everything before the bad byte decoded, so the column counts characters.
    column = len(data[line_start : exc.start].decode("utf-8")) + 1
    message = f"not UTF-8 text (bad byte 0x{data[exc.start]:02x} at offset {start})"
    return SpecProblem(name, line, column, "", message)


# What YAML's safe loader makes of a document: a mapping given as data holds only these.
_PLAIN_SCALARS = (str, int, float, bool, datetime.date, type(None))


def load_mapping(data: Mapping[str, Any], file: str = "<mapping>") -> Document:
    """A spec given as data (a dict, parsed YAML or JSON) as a Document.

    Its problems name ``file`` and the spec path, without a line. Only what
    YAML itself could hold is accepted, so the spec means what the same
    keys and values written in a file would. Its text, which the spec's
    digest covers, is the data written as YAML.
    """
    problems: list[SpecProblem] = []
    plain = _plain_data(data, (), file, problems)
    if problems:
        raise SpecError(problems)
    text = yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)
    return Document(file, plain, text)


def _plain_data(value: Any, path: SpecPath, file: str, problems: list[SpecProblem]) -> Any:
    """``value`` as the loader would have built it (dicts, lists, scalars); what YAML could not hold is a problem."""

    def problem(message: str) -> None:
        problems.append(SpecProblem(file, 0, 0, format_path(path), message))

    if len(path) > MAX_DEPTH:  # a mapping that contains itself, too
        problem(f"nested deeper than {MAX_DEPTH} levels")
        return None
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, str):
                result[key] = _plain_data(item, path + (key,), file, problems)
            else:
                problem(f"keys must be strings, got {key!r}")
        return result
    if isinstance(value, list | tuple):
        return [_plain_data(item, path + (i,), file, problems) for i, item in enumerate(value)]
    if not isinstance(value, _PLAIN_SCALARS):
        problem(f"expected a mapping, list, string, number, boolean or None, got a {type(value).__name__}")
        return None
    if isinstance(value, float) and not math.isfinite(value):
        problem(f"expected a finite number, got {value}")
        return None
    return value
