"""Config dataclasses whose fields are also flags and TOML keys: one place for the mapping.

A field made with :func:`option` carries its help text and its limits; ``hidden_size`` is the
flag ``--hidden-size`` and the TOML key ``hidden_size``. The language model's TrainConfig and
the tasks' TaskConfig both use these helpers.
"""

import argparse
import inspect
import math
import tomllib
import typing
from dataclasses import field, fields
from pathlib import Path

from rnnkit.errors import UsageError


def option(default, help: str, choices=None, minimum=None, maximum=None):
    """A dataclass field with its help text and the limits check_fields enforces."""
    metadata = {"help": help, "choices": choices, "minimum": minimum, "maximum": maximum}
    return field(default=default, metadata=metadata)


def check_fields(config) -> None:
    """Check every field of a config dataclass against its choices, minimum and maximum."""
    for spec in fields(config):
        value = getattr(config, spec.name)
        meta = spec.metadata
        flag = "--" + spec.name.replace("_", "-")
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{flag} must be a finite number, got {value}")
        if meta.get("choices") and value not in meta["choices"]:
            raise UsageError(f"{flag} must be one of {', '.join(meta['choices'])}, got {value!r}")
        if meta.get("minimum") is not None and value < meta["minimum"]:
            raise UsageError(f"{flag} must be at least {meta['minimum']}, got {value}")
        if meta.get("maximum") is not None and value > meta["maximum"]:
            raise UsageError(f"{flag} must be at most {meta['maximum']}, got {value}")


TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def from_document(config_class, data: object, where: str):
    """A config from a saved JSON document (a run's config): every known field of the type
    its dataclass declares, then the same checks as the command line; one UsageError naming
    the file and the field otherwise (a run file of valid JSON but the wrong shape)."""
    if not isinstance(data, dict):
        raise UsageError(f"{where} is corrupted: expected a JSON object, got {type(data).__name__}")
    values = {}
    for spec in fields(config_class):
        if spec.name not in data:
            continue
        value = data[spec.name]
        kinds = declared_types(spec.type)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        matches = any(
            isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
            for kind in kinds
        )
        if kinds and not matches:
            expected = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            raise UsageError(
                f"{where} is corrupted: {spec.name} should be {expected}, got "
                f"{json_type(value)}; restore the file or train the run again"
            )
        values[spec.name] = value
    config = config_class(**values)
    check_fields(config)
    return config


def declared_types(annotation) -> tuple[type, ...]:
    """The plain types a field's annotation allows (int, float | None, ...); () where it is
    something else, which is then not checked here."""
    if isinstance(annotation, str):
        names = [part.strip() for part in annotation.split("|")]
        kinds = [type(None) if n == "None" else TYPES.get(n) for n in names]
    else:
        kinds = list(typing.get_args(annotation)) or [annotation]
    if not all(k is type(None) or k in TYPES.values() for k in kinds):
        return ()
    return tuple(kinds)


JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "a bool",
              int: "an integer", float: "a number", type(None): "null"}  # fmt: skip


def json_type(value: object) -> str:
    return JSON_TYPES.get(type(value), type(value).__name__)


def add_arguments(
    parser: argparse.ArgumentParser,
    config_class,
    names: tuple[str, ...] | None = None,
    defaults: dict | None = None,
) -> None:
    """One flag per field (or per field in `names`), with no default of its own (None = not
    given); `defaults` overrides the dataclass's defaults in the help text. The class's own
    fields come first, then those every run shares (a base class's), so that --help reads
    from the data and the model to the optimiser and the bookkeeping."""
    own = inspect.get_annotations(config_class)
    ordered = sorted(fields(config_class), key=lambda spec: spec.name not in own)
    for spec in ordered:
        if names is not None and spec.name not in names:
            continue
        flag = "--" + spec.name.replace("_", "-")
        help_text = spec.metadata["help"]
        default = (defaults or {}).get(spec.name, spec.default)
        if default is not None:
            help_text += f" (default: {default})"
        if spec.type is bool:
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
            continue
        kind = spec.type if spec.type in (int, float) else str
        parser.add_argument(
            flag,
            type=kind,
            default=None,
            choices=spec.metadata.get("choices"),
            help=help_text,
            metavar=None if spec.metadata.get("choices") else spec.name.upper(),
        )


def read_toml(path: Path, config_class) -> dict:
    """The keys of a TOML config file, checked against the fields of ``config_class``."""
    if not path.is_file():
        raise UsageError(f"{path}: no such config file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{path} is not valid TOML: {error}") from None
    known = {f.name: f for f in fields(config_class)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UsageError(
            f"{path}: unknown key(s) {', '.join(unknown)}; the keys are the flag names with "
            f"underscores ({', '.join(sorted(known))})"
        )
    for key, value in data.items():
        expected = known[key].type
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            data[key] = float(value)
        elif expected in (int, float, bool, str) and not isinstance(data[key], expected):
            raise UsageError(f"{path}: {key} must be a {expected.__name__}, got {value!r}")
    return data
