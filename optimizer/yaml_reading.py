"""Reading a YAML configuration file so that every problem can be reported with its file, line, key path and reason:
YAML with a line map, pydantic validation errors turned into ``ConfigProblem``s, and a collector for the relation
checks that come after validation. Shared by the site file (optimizer.site_loader), the snapshot JSON and the
benchmark scenarios."""

from __future__ import annotations

import difflib
import typing
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from optimizer.errors import ConfigError, ConfigProblem

MAX_FILE_BYTES = 4 * 1024 * 1024
_M = TypeVar("_M", bound=BaseModel)


class LineMap:
    """Line numbers (1-based) of every key path in a YAML document."""

    def __init__(self) -> None:
        self.lines: dict[tuple[str | int, ...], int] = {}
        self.duplicates: list[tuple[tuple[str | int, ...], int]] = []

    def walk(self, node: yaml.Node, path: tuple[str | int, ...]) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                child = (*path, key)
                if key in seen:
                    self.duplicates.append((child, key_node.start_mark.line + 1))
                seen.add(key)
                self.lines[child] = key_node.start_mark.line + 1
                self.walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.walk(item, (*path, index))

    def subtree(self, key: str) -> LineMap:
        """The lines below ``key``, with paths relative to it (for a mapping embedded in another file)."""
        sub = LineMap()
        sub.lines = {path[1:]: line for path, line in self.lines.items() if path[:1] == (key,)}
        return sub

    def line_of(self, path: tuple[str | int, ...]) -> int | None:
        # Fall back to the closest enclosing key that exists in the file.
        for cut in range(len(path), -1, -1):
            line = self.lines.get(path[:cut])
            if line is not None:
                return line
        return None


def format_path(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def read_yaml(text: str, filename: str) -> tuple[Any, LineMap]:
    """Parse YAML text into plain data plus its line map; raises ConfigError on syntax errors."""
    if len(text.encode("utf-8", errors="replace")) > MAX_FILE_BYTES:
        raise ConfigError([ConfigProblem(filename, None, "", f"file larger than {MAX_FILE_BYTES} bytes")])
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError([ConfigProblem(filename, line, "", f"YAML syntax: {exc.problem or exc}")]) from exc
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
        raise ConfigError([ConfigProblem(filename, None, "", f"YAML syntax: {exc}")]) from exc
    lines = LineMap()
    if node is not None:
        lines.walk(node, ())
    duplicates = duplicate_problems(lines, filename)
    if duplicates:
        raise ConfigError(duplicates)
    return data, lines


def duplicate_problems(lines: LineMap, filename: str) -> list[ConfigProblem]:
    return [ConfigProblem(filename, line, format_path(path), "duplicate key") for path, line in lines.duplicates]


def read_yaml_keeping_duplicates(text: str, filename: str) -> tuple[Any, LineMap]:
    """``read_yaml`` that reports duplicate keys later, with the other problems (the last value counts meanwhile)."""
    try:
        return read_yaml(text, filename)
    except ConfigError as exc:
        if not exc.problems or any(p.reason != "duplicate key" for p in exc.problems):
            raise
    data = yaml.safe_load(text)
    lines = LineMap()
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is not None:
        lines.walk(node, ())
    return data, lines


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``annotation`` (itself, or within list[...], X | None, Annotated[...])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def allowed_keys(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The keys the mapping at ``loc`` (relative to ``model``) may have; empty when that is not a model."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            continue  # an item of a list: same model
        if current is None:
            return []
        fields = {f.alias or name: f for name, f in current.model_fields.items()}
        field = fields.get(part)
        current = _model_in(field.annotation) if field is not None else None
    if current is None:
        return []
    return [f.alias or name for name, f in current.model_fields.items()]


def unknown_key_reason(model: type[BaseModel] | None, loc: tuple[str | int, ...]) -> str:
    """'unknown key', with the closest allowed key when one is close enough to be a typo."""
    if model is None or not loc or not isinstance(loc[-1], str):
        return "unknown key"
    close = difflib.get_close_matches(loc[-1], allowed_keys(model, loc[:-1]), n=1, cutoff=0.6)
    return f"unknown key (did you mean '{close[0]}'?)" if close else "unknown key"


def validation_problems(
    exc: ValidationError, filename: str, lines: LineMap, prefix: tuple[str | int, ...] = (),
    model: type[BaseModel] | None = None,
) -> list[ConfigProblem]:
    """``model``: the model that was validated, so an unknown key can be answered with the key it resembles."""
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        path = (*prefix, *loc)
        reason = str(err["msg"])
        if err["type"] == "extra_forbidden":
            reason = unknown_key_reason(model, loc)
        elif err["type"] == "missing":
            reason = "required key is missing"
        if reason.startswith("Value error, "):
            reason = reason[len("Value error, ") :]
        problems.append(ConfigProblem(filename, lines.line_of(path), format_path(path), reason))
    return problems


def validate_model(
    model: type[_M], data: Any, filename: str, lines: LineMap, prefix: tuple[str | int, ...] = ()
) -> _M:
    """Validate ``data`` against ``model``, mapping pydantic errors to ConfigError with lines."""
    if data is None:
        raise ConfigError([ConfigProblem(filename, None, format_path(prefix), "file is empty")])
    if not isinstance(data, dict):
        raise ConfigError(
            [ConfigProblem(filename, lines.line_of(prefix), format_path(prefix), "expected a mapping of keys")]
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, filename, lines, prefix, model)) from exc
    except (RecursionError, ValueError, TypeError) as exc:  # pathological input
        raise ConfigError([ConfigProblem(filename, None, format_path(prefix), str(exc))]) from exc


class ProblemCollector:
    """Collects every problem of one file with its line, so all are reported at once."""

    def __init__(self, filename: str, lines: LineMap) -> None:
        self.filename = filename
        self.lines = lines
        self.items: list[ConfigProblem] = []

    def add(self, path: tuple[str | int, ...], reason: str) -> None:
        self.items.append(ConfigProblem(self.filename, self.lines.line_of(path), format_path(path), reason))
