"""The mapping file's schema (Pydantic), and loading it with errors that name the file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rps_port.etl import convert
from rps_port.etl.errors import MappingError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SourceAlt(_Strict):
    """One way to read a value: a dotted `path`, or `concat` of several paths joined by `sep`."""

    path: str | None = None
    concat: list[str] | None = None
    sep: str = " "
    convert: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one(self) -> SourceAlt:
        if (self.path is None) == (self.concat is None):
            raise ValueError("give exactly one of `path` or `concat`")
        return self


class ColumnSpec(_Strict):
    path: str | None = None
    from_: list[str | SourceAlt] = Field(default_factory=list, alias="from")
    convert: str = "text"
    args: dict[str, Any] = Field(default_factory=dict)
    required: bool = False
    reason: str | None = None
    default: Any = None
    fallback: str | None = None
    reverse: bool = True
    reverse_null: bool = False

    @model_validator(mode="after")
    def _sources(self) -> ColumnSpec:
        if self.path is not None:
            self.from_ = [self.path, *self.from_]
        self.from_ = [SourceAlt(path=a) if isinstance(a, str) else a for a in self.from_]
        for name in [self.convert, *(a.convert for a in self.from_ if a.convert)]:
            if name not in convert.CONVERTERS:
                raise ValueError(f"unknown converter {name!r}; known: {', '.join(sorted(convert.CONVERTERS))}")
        return self

    @property
    def alternatives(self) -> list[SourceAlt]:
        return self.from_  # type: ignore[return-value]


class ChildSpec(_Strict):
    table: str
    path: str
    parent_key: str
    index: str = "position"
    inherit: list[str] = Field(default_factory=list)
    columns: dict[str, ColumnSpec]


class ReferenceSpec(_Strict):
    collection: str
    on_missing: Literal["keep", "null", "reject"] = "keep"
    flag: str


class UniqueSpec(_Strict):
    columns: list[str]
    live_only: bool = True
    reason: str


class CheckSpec(_Strict):
    name: str
    reason: str
    expr: str
    equals: str
    over: str | None = None


class SkipSpec(_Strict):
    path: str
    equals: Any = None
    exists: bool | None = None
    reason: str


class CollectionSpec(_Strict):
    table: str
    id: str = "id"
    version: str | None = "src_updated_at"
    deleted: str | None = "deleted_at"
    extra: str | None = "extra"
    drop: list[str] = Field(default_factory=list)
    columns: dict[str, ColumnSpec]
    children: dict[str, ChildSpec] = Field(default_factory=dict)
    references: dict[str, ReferenceSpec] = Field(default_factory=dict)
    unique: list[UniqueSpec] = Field(default_factory=list)
    checks: list[CheckSpec] = Field(default_factory=list)
    skip: list[SkipSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> CollectionSpec:
        if self.id not in self.columns:
            raise ValueError(f"the id column {self.id!r} must be one of `columns`")
        for col in self.references:
            if col not in self.columns:
                raise ValueError(f"reference column {col!r} is not one of `columns`")
        for check in self.checks:
            if check.over is not None and check.over not in self.children:
                raise ValueError(f"check {check.name!r}: `over` names no child {check.over!r}")
        return self


class MappingSpec(_Strict):
    name: str
    version: int | str = 1
    description: str = ""
    collections: dict[str, CollectionSpec]

    @model_validator(mode="after")
    def _references_point_back(self) -> MappingSpec:
        seen: list[str] = []
        for name, coll in self.collections.items():
            for col, ref in coll.references.items():
                if ref.collection not in seen and ref.collection != name:
                    raise ValueError(
                        f"collections.{name}.references.{col}: {ref.collection!r} must be listed before {name!r} "
                        "(collections load in file order and references resolve against loaded rows)"
                    )
            seen.append(name)
        return self


def _line_index(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[(*path, key.value)] = key.start_mark.line + 1
            _line_index(value, (*path, key.value), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*path, i), out)


def parse(text: str, origin: str = "<mapping>") -> MappingSpec:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError(f"{origin}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise MappingError(f"{origin}: the mapping must be a YAML object with `name` and `collections`")
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _line_index(node, (), lines)
    try:
        return MappingSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "str"))))
            loc = tuple(p for p in loc if p != "SourceAlt")
            line = None
            for cut in range(len(loc), -1, -1):
                if loc[:cut] in lines:
                    line = lines[loc[:cut]]
                    break
            where = ".".join(str(p) for p in loc) or "mapping"
            problems.append(f"{origin}:{line or '?'}: {where}: {err['msg']}")
        raise MappingError("invalid mapping:\n  " + "\n  ".join(problems)) from None


def read(path: str | Path) -> tuple[MappingSpec, str]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"{p}: cannot read the mapping: {exc.strerror}") from None
    return parse(text, str(p)), text
