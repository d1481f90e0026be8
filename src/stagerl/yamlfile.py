"""Reading the YAML files a person writes (recipes, level rules): strict where PyYAML is lenient.

* A key given twice in one mapping is an error naming its key path and both lines (PyYAML keeps
  the last one silently: two ``L3:`` or two ``scoring:`` would lose the first without a word).
* A file that is not UTF-8 is an error naming the file, line and column of the first bad byte.
* A folder, or a file that cannot be read, is an error naming it.

Every error is a :class:`YamlFileError` (a ``ValueError``) whose message starts with the file;
callers re-raise it as their own error type (``ConfigError``, ``RulesError``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class YamlFileError(ValueError):
    """A YAML file cannot be read, is not UTF-8, is not valid YAML or repeats a key."""


def read_text(path: str | Path, what: str = "file") -> str:
    """The UTF-8 text of ``path``; ``YamlFileError`` naming the file (and line) otherwise."""
    path = Path(path)
    if path.is_dir():
        raise YamlFileError(f"{path}: is a folder, not a {what}")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise YamlFileError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    return decode(raw, str(path))


def decode(raw: bytes, where: str) -> str:
    """``raw`` as UTF-8; ``YamlFileError`` naming ``where``, the line and column of the first bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise YamlFileError(f"{where}, line {line}, column {column}: not UTF-8 text (byte 0x{raw[e.start]:02x}); "
                            "save the file as UTF-8") from None


def load_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load(text)``, but a key repeated within one mapping is an error naming the key
    path and both lines (``where`` names the file in every message)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _no_repeats(node, where, "", set())
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise YamlFileError(f"{where}: not valid YAML: {e}") from None
    finally:
        loader.dispose()


def _no_repeats(node: yaml.Node, where: str, path: str, seen: set[int]) -> None:
    if id(node) in seen:  # an alias: already walked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[tuple, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                name = (key.tag, key.value)
                here = f"{path}.{key.value}" if path else str(key.value)
                line = key.start_mark.line + 1
                if name in first:
                    raise YamlFileError(f"{where}: key {here!r} is given twice, on line {first[name]} and line "
                                        f"{line} (YAML would silently keep only the last); keep one")
                first[name] = line
                _no_repeats(value, where, here, seen)
            else:
                _no_repeats(value, where, path, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _no_repeats(item, where, f"{path}[{i}]", seen)
