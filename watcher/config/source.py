"""The YAML source: the file's text, the line of every value, ``${ENV}`` interpolation.

Every issue names the line of the value it is about, so the parsed document keeps the line
of each path next to the data. A value taken from the environment is never quoted back in
a message: the variable may hold a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from watcher.errors import ConfigError, ConfigIssue

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _resolve(base_dir: Path, path: Path) -> Path:
    return path if path.is_absolute() else base_dir / path


def _read_text(path: Path) -> str:
    """The file at ``path`` decoded as UTF-8; OSError or UnicodeDecodeError otherwise."""
    return path.read_bytes().decode("utf-8")


def _read_error(exc: OSError | UnicodeDecodeError) -> str:
    """Why :func:`_read_text` failed, without quoting any of the file's content."""
    if isinstance(exc, UnicodeDecodeError):
        line = exc.object[: exc.start].count(b"\n") + 1
        return f"line {line} is not UTF-8 text"
    return exc.strerror or str(exc)


Loc = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """YAML 1.1 safe loading, except that ``0x...`` stays a string.

    Plain YAML reads an unquoted ``0x70997970...`` as a hexadecimal integer, which silently
    turns an Ethereum address into a number; addresses and hashes are far more common here
    than hexadecimal numbers.
    """


_Loader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.yaml_implicit_resolvers["0"].insert(
    0, ("tag:yaml.org,2002:str", re.compile(r"^0x[0-9a-fA-F_]+$"))
)


class _YamlDocument:
    """Parsed YAML plus the line of every value, keyed by its path.

    :func:`_interpolate` records which values took an environment variable (``from_env``,
    the text as written) and which name an unset one (``unset``).
    """

    def __init__(self, data: Any, lines: dict[Loc, int], issues: list[ConfigIssue]) -> None:
        self.data = data
        self.lines = lines
        self.issues = issues
        self.from_env: dict[Loc, str] = {}
        self.unset: set[Loc] = set()

    @classmethod
    def parse(cls, text: str, source: str) -> _YamlDocument:
        try:
            node = yaml.compose(text, Loader=_Loader)
            data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(source, [ConfigIssue("", f"invalid YAML: {problem}", line)]) from None
        lines: dict[Loc, int] = {}
        issues: list[ConfigIssue] = []
        if node is not None:
            _index_lines(node, (), lines, issues)
        return cls(data, lines, issues)

    def line(self, loc: Loc) -> int | None:
        """The line of ``loc``, or of its nearest ancestor present in the file."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return None

    def issue(self, loc: Loc, message: str) -> ConfigIssue:
        return ConfigIssue(format_loc(loc), message, self.line(loc))

    def shown(self, loc: Loc, value: object, *, quote: bool = True) -> str:
        """``value`` as a message may show it: never a value taken from the environment.

        A variable may hold a secret by mistake, so such a value is named by the text as
        written instead, e.g. ``the value of ${HOOK_URL}``.
        """
        written = self.from_env.get(loc)
        if written is not None:
            return f"the value of {written}"
        return f"'{value}'" if quote else str(value)


def _index_lines(
    node: yaml.Node, loc: Loc, lines: dict[Loc, int], issues: list[ConfigIssue]
) -> None:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                issues.append(
                    ConfigIssue(
                        format_loc((*loc, key)), "duplicate key", key_node.start_mark.line + 1
                    )
                )
            seen.add(key)
            _index_lines(value_node, (*loc, key), lines, issues)
            lines[(*loc, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*loc, index), lines, issues)


def format_loc(loc: Iterable[str | int]) -> str:
    """``("subscriptions", 2, "url")`` -> ``subscriptions[2].url``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _interpolate(
    value: Any, loc: Loc, environ: Mapping[str, str], doc: _YamlDocument, issues: list[ConfigIssue]
) -> Any:
    """Replace ``${NAME}`` in every string with the environment variable's value."""
    if isinstance(value, dict):
        return {k: _interpolate(v, (*loc, str(k)), environ, doc, issues) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*loc, i), environ, doc, issues) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        doc.from_env[loc] = value
        if name not in environ:
            issues.append(doc.issue(loc, f"environment variable {name} is not set"))
            doc.unset.add(loc)
            return ""
        return environ[name]

    return _ENV_REFERENCE.sub(substitute, value)
