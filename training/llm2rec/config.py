"""The one configuration system of training/: presets are plain dataclasses with typed fields, overridden by a
JSON or TOML file (`--config`) and by `--set section.field=value`, and checked against their field types before
anything runs.

    python -m training.llm2rec.cli train  --preset cpu   --config my.toml --set csft.steps=200
    python -m training.llm2rec.cli bundle --preset quick --set epochs=2 ...

Two kinds of preset use it: the bundle presets (`presets.py`: encoder depth + adapter/SASRec settings) and the
LLM2Rec training presets (`train_config.py`: backbone and the three stages). A file holds a (partial) nested table,
e.g. TOML `[csft]\\nsteps = 200` or JSON `{"csft": {"steps": 200}}`; a `--set` value is read as JSON when it parses
(numbers, true/false, null, lists, quoted strings), as a bare string otherwise.

Field types are checked by pydantic against the dataclass annotations, strictly (no "200" for 200, no true for 1);
the annotations carry the allowed ranges (`Count`: an integer > 0, `Fraction`: 0 <= x < 1, Literal choices, ...).
Unknown keys are refused with the known ones listed.
"""

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Annotated, Mapping, TypeVar

from pydantic import Field, TypeAdapter, ValidationError

# Field types with their allowed values (used in the annotations of presets.py and train_config.py).
Count = Annotated[int, Field(strict=True, gt=0)]  # steps, sizes, lengths: an integer > 0
NonNegativeInt = Annotated[int, Field(strict=True, ge=0)]  # seeds, warm-up steps
Positive = Annotated[float, Field(strict=True, gt=0)]  # learning rates, minutes, temperatures (ints accepted)
NonNegative = Annotated[float, Field(strict=True, ge=0)]  # weight decay
Fraction = Annotated[float, Field(strict=True, ge=0, lt=1)]  # dropout, mask ratio
Flag = Annotated[bool, Field(strict=True)]
Text = Annotated[str, Field(strict=True)]
Names = Annotated[list[Annotated[str, Field(strict=True)]], Field(strict=True)]

C = TypeVar("C")


class ConfigError(ValueError):
    """A setting that does not fit its field: wrong type, out of range, not one of the allowed values."""


class UnknownSetting(ConfigError, KeyError):
    """A key that names no field."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def validate(config: C) -> C:
    """Check every field of a (nested) dataclass against its annotation; raise ConfigError naming each bad one.
    Returns `config` itself, unchanged."""
    try:
        TypeAdapter(type(config)).validate_python(to_dict(config))
    except ValidationError as error:
        problems = [f"{'.'.join(str(part) for part in e['loc'])} = {e['input']!r}: {e['msg']}"
                    for e in error.errors(include_url=False)]
        raise ConfigError("invalid setting" + ("s" if len(problems) > 1 else "") + ": " + "; ".join(problems)) from None
    return config


def merge(obj: C, updates: Mapping, where: str = "") -> C:
    """A copy of dataclass `obj` with `updates` applied (nested dicts go into nested dataclasses). Not validated."""
    changes = {}
    names = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in updates.items():
        if key not in names:
            raise UnknownSetting(f"unknown setting {where}{key} (known: {', '.join(names)})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}{key} is a section: give a table/object, not {value!r}")
            changes[key] = merge(current, value, f"{where}{key}.")
        else:
            changes[key] = value
    return dataclasses.replace(obj, **changes)


def parse_value(text: str):
    try:
        return json.loads(text)  # numbers, true/false, null, lists, quoted strings
    except json.JSONDecodeError:
        return text  # a bare string


def parse_set(item: str) -> dict:
    """`a.b=v` -> {"a": {"b": v}}."""
    key, equals, value = item.partition("=")
    parts = key.strip().split(".")
    if not equals or not all(parts):
        raise ConfigError(f"--set {item!r}: write SECTION.FIELD=VALUE, e.g. csft.steps=200")
    nested: dict = {}
    cursor = nested
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[parts[-1]] = parse_value(value)
    return nested


def read_file(config_file: Path) -> dict:
    text = Path(config_file).read_text()
    try:
        updates = tomllib.loads(text) if str(config_file).endswith(".toml") else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{config_file}: {error}") from None
    if not isinstance(updates, dict):
        raise ConfigError(f"{config_file} must hold a table/object of settings")
    return updates


def resolve(presets: Mapping[str, C], preset: str, config_file: Path | None = None, sets: list[str] = ()) -> C:
    """A preset with a file's and then each `--set`'s overrides applied, validated."""
    if preset not in presets:
        raise UnknownSetting(f"unknown preset {preset!r} (known: {', '.join(presets)})")
    config = presets[preset]
    if config_file is not None:
        config = merge(config, read_file(config_file))
    for item in sets:
        config = merge(config, parse_set(item))
    return validate(config)
