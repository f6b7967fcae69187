"""Comparison rules from a config file: ignored paths, numeric tolerance, set-like arrays, datetime truncation.

Paths are canonical record paths with array positions written `[*]` (`items[*].unit_price`,
`card.last4`); `*` matches one path segment, `**` any number. Rules apply per record, so a list
answer uses the same rules for each record it holds.

```yaml
ignore: ["updated_at"]
tolerance: {"items[*].unit_price": "0.005"}
set_arrays: {"tags": null, "addresses": "kind"}   # null: an unordered set of scalars; a key: keyed by it
datetime_truncate: ms                              # us | ms | s | min
loose_json: ["meta"]                               # free-form JSON compared as the legacy JSON shows it
noise_margin: 0.02
```
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rps_port.timeutil import ensure_utc

_TRUNCATE = {"us": None, "ms": 1000, "s": 1_000_000, "min": 60_000_000}
_PLAIN = frozenset({str, int, float, bool, type(None)})


class Keyed(dict):
    """An array turned into a mapping by a key (set-like comparison); its keys print as `[*]`."""


def compile_pattern(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("[*]", i):
            out.append(r"\[\*\]")
            i += 3
        elif pattern.startswith("**", i):
            out.append(r".*")
            i += 2
        elif pattern[i] == "*":
            out.append(r"[^.\[\]]*")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("^" + "".join(out) + "$")


class _Matcher:
    """Path patterns: literal ones by set lookup, wildcard ones by regex (the walk asks per node)."""

    def __init__(self, patterns: list[str]) -> None:
        self.exact = {p for p in patterns if "*" not in p}
        self.regexes = [compile_pattern(p) for p in patterns if "*" in p]
        self.empty = not patterns

    def __call__(self, path: str) -> bool:
        if self.empty:
            return False
        return path in self.exact or any(r.match(path) for r in self.regexes)


class ShadowRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ignore: list[str] = Field(default_factory=list, description="Canonical paths never compared.")
    tolerance: dict[str, Decimal] = Field(default_factory=dict, description="Path -> largest absolute difference.")
    set_arrays: dict[str, str | None] = Field(
        default_factory=dict, description="Path of an array -> key it is matched by (null: set of scalars)."
    )
    datetime_truncate: Literal["us", "ms", "s", "min"] = "ms"
    loose_json: list[str] = Field(
        default_factory=lambda: ["meta"],
        description="Free-form JSON fields compared in the form the legacy's JSON can express "
        "(BSON dates, ids and numbers as Mongoose prints them).",
    )
    noise_margin: float = Field(default=0.02, ge=0, le=1, description="Rate a path must exceed its noise by.")
    max_diffs: int = Field(default=50, ge=1, le=10_000, description="Differences reported per record at most.")

    @field_validator("tolerance")
    @classmethod
    def _non_negative(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        for path, tol in v.items():
            if tol < 0:
                raise ValueError(f"tolerance for {path!r} must be >= 0")
        return v

    @cached_property
    def _ignore(self) -> _Matcher:
        return _Matcher(self.ignore)

    @cached_property
    def _tolerance(self) -> list[tuple[re.Pattern[str], Decimal]]:
        return [(compile_pattern(p), t) for p, t in self.tolerance.items()]

    @cached_property
    def _sets(self) -> list[tuple[re.Pattern[str], str | None]]:
        return [(compile_pattern(p), k) for p, k in self.set_arrays.items()]

    @cached_property
    def _loose(self) -> _Matcher:
        return _Matcher(self.loose_json)

    def ignored(self, template: str) -> bool:
        return self._ignore(template)

    def tolerance_for(self, template: str) -> Decimal | None:
        for pattern, tol in self._tolerance:
            if pattern.match(template):
                return tol
        return None

    def set_key(self, template: str) -> tuple[bool, str | None]:
        for pattern, key in self._sets:
            if pattern.match(template):
                return True, key
        return False, None

    def apply(self, record: Any, prefix: str = "") -> Any:
        """The record normalised (Decimal without trailing zeros, datetimes UTC and truncated), with
        ignored paths dropped and set-like arrays keyed."""
        return self._walk(record, prefix)

    def _walk(self, value: Any, path: str) -> Any:
        if isinstance(value, dict):
            if path and self._loose(path):
                return self._walk_loose(loosen(value), path)
            keyed = isinstance(value, Keyed)
            out = Keyed() if keyed else {}
            ignore = self._ignore
            for k, v in value.items():
                if ignore.empty and type(v) in _PLAIN:
                    out[k] = v  # nothing to normalise in a plain scalar: skip the call
                    continue
                child = f"{path}[*]" if keyed else (f"{path}.{k}" if path else str(k))
                if ignore.empty or not ignore(child):
                    out[k] = v if type(v) in _PLAIN else self._walk(v, child)
            return out
        if isinstance(value, list):
            if path and self._loose(path):
                return self._walk_loose(loosen(value), path)
            child = f"{path}[*]"
            items = [v if type(v) in _PLAIN else self._walk(v, child) for v in value]
            if not self.set_arrays:
                return items
            is_set, key = self.set_key(path)
            if not is_set:
                return items
            if key is None:
                return sorted(items, key=repr)
            keyed_out = Keyed()
            for item in items:
                k = str(item.get(key)) if isinstance(item, dict) else repr(item)
                while k in keyed_out:  # duplicates keep both, in order
                    k += "'"
                keyed_out[k] = item
            return keyed_out
        if isinstance(value, Decimal):
            return Decimal(format(value.normalize(), "f")) if value.is_finite() else value
        if isinstance(value, datetime):
            if value.tzinfo is None or value.utcoffset():
                value = ensure_utc(value)
            step = _TRUNCATE[self.datetime_truncate]
            if step is None:
                return value
            micros = value.second * 1_000_000 + value.microsecond
            micros -= micros % step
            return value.replace(second=micros // 1_000_000, microsecond=micros % 1_000_000)
        return value

    def _walk_loose(self, value: Any, path: str) -> Any:
        """Inside a loose JSON field: only ignored paths apply (values are already plain JSON)."""
        if self._ignore.empty:
            return value
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                child = f"{path}.{k}"
                if not self._ignore(child):
                    out[k] = self._walk_loose(v, child)
            return out
        if isinstance(value, list):
            return [self._walk_loose(v, f"{path}[*]") for v in value]
        return value


def loosen(value: Any) -> Any:
    """Extended JSON as the legacy's Mongoose JSON shows it: `{"$date": ...}` -> ISO string, etc."""
    import json

    from rps_port.etl.extjson import from_canonical
    from rps_port.legacy.emulator_json import to_mongoose

    return json.loads(json.dumps(to_mongoose(from_canonical(value)), default=str))


def load_rules(path: str | Path | None) -> ShadowRules:
    """Rules from a YAML/JSON file (None: the defaults); errors name the file and the field."""
    if path is None:
        return ShadowRules()
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ValueError(f"{p}: cannot read shadow rules: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{p}: not valid YAML: {exc}") from None
    try:
        return ShadowRules.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ValueError(f"{p}: {where}: {err['msg']}") from None
