"""The config file, read defensively: a file anyone who can write the workspace may have written.

At most `MAX_FILE_BYTES`; YAML anchors and aliases refused (a "billion laughs" expands to
gigabytes from a few lines); nesting at most `MAX_DEPTH` deep; a number too long to convert is an
error, not a traceback; every message quotes at most `QUOTE_CHARS` of what it names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from phoenix_sidecar.errors import ConfigError

MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 16
QUOTE_CHARS = 80


def quote(value: Any) -> str:
    """``repr(value)``, cut to `QUOTE_CHARS` characters: an error names a value, never repeats megabytes."""
    if isinstance(value, (dict, list)):
        text = f"a {type(value).__name__}"
    else:
        text = repr(value) if not isinstance(value, str) or len(value) < 10 * QUOTE_CHARS else repr(value[:QUOTE_CHARS + 1])
    return text if len(text) <= QUOTE_CHARS else f"{text[:QUOTE_CHARS]}... ({len(str(value))} characters)"



class _GuardedLoader(yaml.SafeLoader):
    """The safe loader, refusing anchors and aliases and nesting deeper than `MAX_DEPTH`."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError(f"YAML aliases (*name) are not allowed in a Phoenix config "
                                 f"(line {self.peek_event().start_mark.line + 1})")
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise yaml.YAMLError(f"YAML anchors (&name) are not allowed in a Phoenix config "
                                 f"(line {event.start_mark.line + 1})")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.YAMLError(f"nested deeper than {MAX_DEPTH} levels (line {event.start_mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def read_yaml(path: Path) -> dict[str, Any]:
    """The top-level mapping of a config file, read within the limits above; `ConfigError` otherwise."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise ConfigError(f"the config file is larger than {MAX_FILE_BYTES} bytes", source=f"file {path}")
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the config file: {quote(str(exc))}", source=f"file {path}") from None
    try:
        data = parse_text(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"malformed YAML{where}: {problem[:200]}", source=f"file {path}") from None
    except (ValueError, OverflowError, RecursionError) as exc:  # e.g. an integer of 5,000 digits
        raise ConfigError(f"a value cannot be read: {quote(str(exc))}", source=f"file {path}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of settings at the top level, got {type(data).__name__}",
                          source=f"file {path}")
    return {quote(k) if not isinstance(k, str) else k[:QUOTE_CHARS]: v for k, v in data.items()}


def parse_text(text: str) -> Any:
    """YAML text (a file's, or a variable's) with the same limits: no aliases, bounded nesting.

    Raises yaml.YAMLError, ValueError, OverflowError or RecursionError for the caller to name.
    """
    if len(text) > MAX_FILE_BYTES:
        raise ValueError(f"longer than {MAX_FILE_BYTES} characters")
    return yaml.load(text, Loader=_GuardedLoader)  # noqa: S506 - a SafeLoader, with limits
