"""The mapping applied: a legacy document becomes rows (or a reject), and rows become a document again.

`load_mapping()` returns the shipped RPS mapping; `Mapping.map_document()` is what the ETL, verify
and shadow call; `Mapping.unmap()` is what reverse sync calls. It is pure: no database, no I/O.
References to other collections are reported on the result and resolved by the caller (the loader
against the target, dry-run against the source), via `apply_references()`.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
from collections.abc import Callable, Iterable
from collections.abc import Mapping as TMapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

from rps_port.etl import convert, extjson
from rps_port.etl.convert import Context
from rps_port.etl.errors import ConversionError, MappingError, RejectError
from rps_port.etl.spec import ChildSpec, CollectionSpec, ColumnSpec, MappingSpec, SourceAlt, parse, read

DEFAULT_MAPPING = Path(__file__).with_name("rps_mapping.yaml")
_MISSING = object()


class SkipDocument(Exception):
    """A document a mapping `skip` rule excludes on purpose; counted as skipped with the reason."""

    def __init__(self, record_id: str, reason: str) -> None:
        super().__init__(f"{record_id}: skipped: {reason}")
        self.record_id = record_id
        self.reason = reason


@dataclass
class Reference:
    column: str
    collection: str
    value: str
    on_missing: str
    flag: str


@dataclass
class MappedDocument:
    """One legacy document as rows: the parent row, child rows per child table, and what to look at."""

    collection: str
    record_id: str
    table: str
    row: dict[str, Any]
    children: dict[str, list[dict[str, Any]]]
    references: list[Reference] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)  # flag code -> detail (e.g. the dangling id)
    notes: set[str] = field(default_factory=set)


# --------------------------------------------------------------------------- paths and expressions


def _getter(path: str) -> Callable[[Any], Any]:
    parts = path.split(".")
    if len(parts) == 1:
        key = parts[0]
        return lambda doc: doc.get(key, _MISSING) if isinstance(doc, dict) else _MISSING

    def get(doc: Any) -> Any:
        for part in parts:
            if isinstance(doc, dict):
                doc = doc.get(part, _MISSING)
            else:
                return _MISSING
            if doc is _MISSING:
                return _MISSING
        return doc

    return get


def _setter(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        nxt = doc.get(part)
        if not isinstance(nxt, dict):
            nxt = doc[part] = {}
        doc = nxt
    doc[parts[-1]] = value


_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}


def compile_expr(expr: str) -> Callable[[TMapping[str, Any]], Decimal]:
    """`quantity * unit_price - discount`: + - * over column names (NULL counts as 0) and number literals.

    Compiled to one Python expression (it runs for every document and child row)."""
    try:
        tree = ast.parse(expr, mode="eval").body
    except SyntaxError as exc:
        raise MappingError(f"expression {expr!r}: {exc.msg}") from None
    ns: dict[str, Any] = {"D": Decimal}
    serial = itertools.count()  # a fresh name per operand

    def build(node: ast.AST) -> str:
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return f"({build(node.left)} {_OPS[type(node.op)]} {build(node.right)})"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return f"(-{build(node.operand)})"
        if isinstance(node, ast.Name):
            temp = f"v{next(serial)}"
            # a Decimal as it is; NULL as 0; an int (quantity) as a Decimal
            return f"({temp} if type({temp} := row.get({node.id!r})) is D else D({temp} or 0))"
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, str)) and not isinstance(node.value, bool):
            const = f"c{next(serial)}"
            try:
                ns[const] = Decimal(str(node.value))
            except ArithmeticError:
                raise MappingError(f"expression {expr!r}: {node.value!r} is not a number") from None
            return const
        raise MappingError(f"expression {expr!r}: only + - * over column names and numbers are allowed")

    source = f"lambda row: {build(tree)}"
    return eval(compile(source, f"<expr {expr}>", "eval"), ns)  # built above from a validated AST


# --------------------------------------------------------------------------- compiled pieces


@dataclass
class _Alt:
    spec: SourceAlt
    getters: list[Callable[[Any], Any]]
    conv: convert.Converter
    args: dict[str, Any]

    def read(self, doc: Any) -> Any:
        if self.spec.concat is None:
            return self.getters[0](doc)
        parts = [g(doc) for g in self.getters]
        present = [p for p in parts if p is not _MISSING and p is not None]
        if not present:
            return _MISSING
        if not all(isinstance(p, str) for p in present):
            raise ConversionError("invalid_text", "parts to join must be strings")
        return self.spec.sep.join(p.strip() for p in present).strip()


@dataclass
class _Column:
    name: str
    spec: ColumnSpec
    alts: list[_Alt]
    conv: convert.Converter
    # (top-level key for a plain one-segment path else None, alternative, forward converter, its args)
    plan: list[tuple[str | None, _Alt, Any, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.plan = [
            (a.spec.path if a.spec.path and "." not in a.spec.path else None, a, a.conv.forward, a.args)
            for a in self.alts
        ]

    def top_fields(self) -> set[str]:
        out = set()
        for alt in self.spec.alternatives:
            for path in [alt.path] if alt.path else (alt.concat or []):
                out.add(path.split(".")[0])
        return out


def _compile_columns(columns: dict[str, ColumnSpec]) -> list[_Column]:
    out = []
    for name, spec in columns.items():
        alts = []
        for alt in spec.alternatives:
            paths = [alt.path] if alt.path else list(alt.concat or [])
            conv = convert.get(alt.convert or spec.convert)
            args = {**spec.args, **alt.args}
            alts.append(_Alt(alt, [_getter(p) for p in paths], conv, args))
        out.append(_Column(name, spec, alts, convert.get(spec.convert)))
    return out


@dataclass
class _Child:
    name: str
    spec: ChildSpec
    columns: list[_Column]
    getter: Callable[[Any], Any]
    known: set[str]
    fill: Callable[..., None] | None = None


@dataclass
class _Check:
    name: str
    reason: str
    left: Callable[[TMapping[str, Any]], Decimal]
    right: Callable[[TMapping[str, Any]], Decimal]
    over: str | None
    expr: str
    equals: str


def _compile_fill(columns: list[_Column], absent: Callable[..., Any]) -> Callable[..., None]:
    """One straight-line function per column list (what `_fill_generic` does, without its loop overhead).

    The mapping runs once per document and column, so it is generated as Python source from the
    compiled columns; behaviour is the same as the generic loop (tests run both)."""
    ns: dict[str, Any] = {"MISSING": _MISSING, "ConversionError": ConversionError, "RejectError": RejectError,
                          "absent": absent, **convert.FAST_NAMES}
    lines = ["def fill(doc, ctx, record_id, prefix):", "    row = ctx.row", "    get = doc.get"]
    for c, col in enumerate(columns):
        ns[f"col{c}"] = col
        indent = "    "
        first_key, first_alt = (col.plan[0][0], col.plan[0][1]) if col.plan else (None, None)
        hoisted = first_key is not None and first_alt.conv.fast is not None
        if hoisted:  # the common case first: a fast value is never None, so nothing else applies
            condition, value = first_alt.conv.fast
            lines += [f"    raw = get({first_key!r}, MISSING)", f"    if {condition}:",
                      f"        row[{col.name!r}] = {value}", "    else:"]
            indent = "        "
        lines += [f"{indent}v = MISSING", f"{indent}used = None"]
        for i, (key, alt, forward, args) in enumerate(col.plan):
            ns[f"alt{c}_{i}"], ns[f"f{c}_{i}"], ns[f"a{c}_{i}"] = alt, forward, args
            label = path_label(alt.spec)
            if key is not None:
                if not (hoisted and i == 0):
                    lines.append(f"{indent}raw = get({key!r}, MISSING)")
            else:
                lines += [
                    f"{indent}try:",
                    f"{indent}    raw = alt{c}_{i}.read(doc)",
                    f"{indent}except ConversionError as exc:",
                    f"{indent}    raise RejectError(record_id, prefix + {col.name!r}, exc.reason, exc.message) from None",
                ]
            lines += [
                f"{indent}if raw is not MISSING:",
                f"{indent}    used = alt{c}_{i}",
                f"{indent}    if raw is not None:",
            ]
            inner = indent + "        "
            if alt.conv.fast is not None and not (hoisted and i == 0):
                condition, value = alt.conv.fast
                lines += [f"{inner}if {condition}:", f"{inner}    v = {value}", f"{inner}else:"]
                inner += "    "
            lines += [
                f"{inner}try:",
                f"{inner}    v = f{c}_{i}(raw, a{c}_{i}, ctx)",
                f"{inner}except ConversionError as exc:",
                f"{inner}    raise RejectError(record_id, prefix + {label!r}, exc.reason, exc.message) from None",
            ]
            if i:
                lines += [f"{indent}        if ctx.notes is not None:",
                          f"{indent}            ctx.notes.add({(col.name + ':from:' + label)!r})"]
            lines += [f"{indent}    else:", f"{indent}        v = None"]
            if i + 1 < len(col.plan):
                lines.append(f"{indent}else:")
                indent += "    "
        spec = col.spec
        tail = "        " if hoisted else "    "
        if spec.fallback is None and spec.default is None and not spec.required:
            lines += [f"{tail}if v is MISSING:", f"{tail}    v = None"]  # what absent() returns for such a column
        else:
            lines += [f"{tail}if v is None or v is MISSING:",
                      f"{tail}    v = absent(col{c}, v, used, ctx, record_id, prefix)"]
        lines.append(f"{tail}row[{col.name!r}] = v")
    exec(compile("\n".join(lines) + "\n", "<mapping>", "exec"), ns)  # noqa: S102 - source built above from the validated mapping
    return ns["fill"]


class CollectionMapping:
    def __init__(self, name: str, spec: CollectionSpec) -> None:
        self.name = name
        self.spec = spec
        self.table = spec.table
        self.columns = _compile_columns(spec.columns)
        self.children = [
            _Child(
                cname,
                cspec,
                _compile_columns(cspec.columns),
                _getter(cspec.path),
                {t for c in _compile_columns(cspec.columns) for t in c.top_fields()},
            )
            for cname, cspec in spec.children.items()
        ]
        self.checks = [
            _Check(c.name, c.reason, compile_expr(c.expr), compile_expr(c.equals), c.over, c.expr, c.equals)
            for c in spec.checks
        ]
        self.known_fields = {"_id"} | {f for c in self.columns for f in c.top_fields()}
        self.known_fields |= {c.spec.path.split(".")[0] for c in self.children}
        self.dropped = set(spec.drop)
        self.known_or_dropped = self.known_fields | self.dropped
        self.skips = [(_getter(s.path), s) for s in spec.skip]
        self._fill_parent = _compile_fill(self.columns, self._absent)
        for child in self.children:
            child.fill = _compile_fill(child.columns, self._absent)
        id_col = next(c for c in self.columns if c.name == spec.id)
        self._id_reader = id_col.alts[0].getters[0] if id_col.alts else _getter("_id")

    @property
    def child_tables(self) -> list[str]:
        return [c.spec.table for c in self.children]

    def record_id(self, doc: Any) -> str:
        raw = self._id_reader(doc) if isinstance(doc, dict) else _MISSING
        normal = convert.normalize_object_id(raw) if raw is not _MISSING else None
        if normal is not None:
            return normal
        return "!" + ("missing-id" if raw is _MISSING else str(raw)[:40])

    # ----------------------------------------------------------------- forward

    def _fill_generic(
        self,
        columns: list[_Column],
        doc: Any,
        ctx: Context,
        record_id: str,
        prefix: str,
    ) -> None:
        row = ctx.row
        for col in columns:
            value: Any = _MISSING
            used = None
            for i, (key, alt, forward, args) in enumerate(col.plan):
                if key is not None:
                    raw = doc.get(key, _MISSING)
                else:
                    try:
                        raw = alt.read(doc)
                    except ConversionError as exc:
                        raise RejectError(record_id, prefix + col.name, exc.reason, exc.message) from None
                if raw is _MISSING:
                    continue
                used = alt
                if raw is None:
                    value = None
                    break
                try:
                    value = forward(raw, args, ctx)
                except ConversionError as exc:
                    raise RejectError(record_id, prefix + path_label(alt.spec), exc.reason, exc.message) from None
                if i and ctx.notes is not None:
                    ctx.note(f"{col.name}:from:{path_label(alt.spec)}")
                break
            if value is None or value is _MISSING:
                value = self._absent(col, value, used, ctx, record_id, prefix)
            row[col.name] = value

    def _absent(self, col: _Column, value: Any, used: _Alt | None, ctx: Context, record_id: str, prefix: str) -> Any:
        """A value that is missing or null: fallback column, default, or a reject when required."""
        spec, row = col.spec, ctx.row
        if spec.fallback is not None and (value is _MISSING or not spec.reverse_null):
            if spec.fallback == "@id_time":
                if not record_id.startswith("!"):
                    value = convert.id_time(record_id)
                    ctx.note(f"{col.name}:from:_id")
            else:
                value = row.get(spec.fallback)
                if value is not None:
                    ctx.note(f"{col.name}:from:{spec.fallback}")
        if (value is None or value is _MISSING) and spec.default is not None:
            value = list(spec.default) if isinstance(spec.default, list) else spec.default
        if value is _MISSING:
            value = None
        if value is None and spec.required:
            path = path_label(used.spec) if used else path_label(col.alts[0].spec) if col.alts else col.name
            reason = spec.reason or f"missing_{col.name}"
            raise RejectError(record_id, prefix + path, reason, "required value is missing or null")
        return value

    def map(self, doc: Any, secret: str = "", collect_notes: bool = False) -> MappedDocument:
        if not isinstance(doc, dict):
            raise RejectError("!not-a-document", "", "invalid_document", "not a JSON/BSON object")
        record_id = self.record_id(doc)
        for getter, skip in self.skips:
            value = getter(doc)
            if (skip.exists is not None and (value is not _MISSING) == skip.exists) or (
                skip.exists is None and value is not _MISSING and value == skip.equals
            ):
                raise SkipDocument(record_id, skip.reason)
        notes: set[str] | None = set() if collect_notes else None
        row: dict[str, Any] = {}
        ctx = Context(row=row, secret=secret, notes=notes)
        self._fill_parent(doc, ctx, record_id, "")
        children: dict[str, list[dict[str, Any]]] = {}
        extra: dict[str, Any] = {}
        for child in self.children:
            rows: list[dict[str, Any]] = []
            items = child.getter(doc)
            if items is _MISSING or items is None:
                items = []
            if not isinstance(items, list):
                raise RejectError(record_id, child.spec.path, "invalid_list", "an array was expected")
            cctx = Context(row=row, parent=row, secret=secret, notes=notes)  # one per array; its row per item
            for index, item in enumerate(items):
                where = f"{child.spec.path}.{index}."
                if not isinstance(item, dict):
                    raise RejectError(record_id, where[:-1], "invalid_document", "an embedded object was expected")
                crow: dict[str, Any] = {child.spec.parent_key: row[self.spec.id], child.spec.index: index}
                for inherited in child.spec.inherit:
                    crow[inherited] = row.get(inherited)
                cctx.row = crow
                child.fill(item, cctx, record_id, where)
                if not child.known.issuperset(item):
                    unknown = {k: v for k, v in item.items() if k not in child.known}
                    extra[f"{child.spec.path}.{index}"] = extjson.to_canonical(unknown)
                    ctx.note("extra:child_fields")
                rows.append(crow)
            children[child.spec.table] = rows
        for check in self.checks:
            if check.over is not None:
                table = self.spec.children[check.over].table
                left = sum((check.left(r) for r in children[table]), Decimal(0))
            else:
                left = check.left(row)
            right = check.right(row)
            if left != right:
                raise RejectError(
                    record_id,
                    check.equals,
                    check.reason,
                    f"check {check.name}: {('sum of ' + check.over + ' ') if check.over else ''}{check.expr} = {left}"
                    f" but {check.equals} = {right}",
                )
        if self.spec.extra is not None:
            if not self.known_or_dropped.issuperset(doc):  # in document order: the same JSON every run
                for key in [k for k in doc if k not in self.known_or_dropped]:
                    extra[key] = extjson.to_canonical(doc[key])
            if extra:
                ctx.note("extra:fields")
            row[self.spec.extra] = extra or None
        refs = [
            Reference(col, ref.collection, row[col], ref.on_missing, ref.flag)
            for col, ref in self.spec.references.items()
            if row.get(col) is not None
        ]
        return MappedDocument(self.name, record_id, self.table, row, children, refs, {}, notes or set())

    # ----------------------------------------------------------------- backward

    def _unfill(self, columns: list[_Column], row: dict[str, Any], ctx: Context, skip: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for col in columns:
            if col.name in skip or not col.spec.reverse or not col.alts:
                continue
            alt = col.alts[0]
            if alt.spec.path is None:
                continue
            value = row.get(col.name)
            if value is None:
                if col.spec.reverse_null:
                    _setter(out, alt.spec.path, None)
                continue
            _setter(out, alt.spec.path, alt.conv.reverse(value, alt.args, ctx))
        return out

    def unmap(
        self,
        row: dict[str, Any],
        children: TMapping[str, Iterable[dict[str, Any]]] | None = None,
        secret: str = "",
    ) -> dict[str, Any]:
        ctx = Context(row=row, secret=secret)
        doc = self._unfill(self.columns, row, ctx, {self.spec.extra or ""})
        doc = {"_id": doc.pop("_id"), **doc} if "_id" in doc else doc
        extra = row.get(self.spec.extra) if self.spec.extra else None
        extra = dict(extjson.from_canonical(extra)) if extra else {}
        children = children or {}
        for child in self.children:
            rows = sorted(children.get(child.spec.table, ()), key=lambda r: r[child.spec.index])
            skip = {child.spec.parent_key, child.spec.index, *child.spec.inherit}
            items = []
            for crow in rows:
                item = self._unfill(child.columns, crow, Context(row=crow, parent=row, secret=secret), skip)
                item.update(extra.pop(f"{child.spec.path}.{crow[child.spec.index]}", {}))
                items.append(item)
            _setter(doc, child.spec.path, items)
        doc.update(extra)
        return doc


def path_label(alt: SourceAlt) -> str:
    return alt.path if alt.path else "+".join(alt.concat or [])


class Mapping:
    """A loaded mapping: per collection (in load order) how documents become rows and back."""

    def __init__(self, spec: MappingSpec, text: str, origin: str, secret: str | None = None) -> None:
        self.spec = spec
        self.origin = origin
        self.collections: dict[str, CollectionMapping] = {n: CollectionMapping(n, c) for n, c in spec.collections.items()}
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
        self.version = f"{spec.name}@{spec.version}+{digest}"
        self._secret = secret

    @cached_property
    def secret(self) -> str:
        if self._secret is not None:
            return self._secret
        from rps_port.config import get_settings

        return get_settings().legacy_secret.get_secret_value()

    def collection(self, name: str) -> CollectionMapping:
        try:
            return self.collections[name]
        except KeyError:
            raise KeyError(f"the mapping has no collection {name!r}; it maps {', '.join(self.collections)}") from None

    def order(self, names: Iterable[str] | None = None) -> list[str]:
        """Collection names in load order (referenced collections first), optionally limited to `names`."""
        if names is None:
            return list(self.collections)
        wanted = set(names)
        unknown = wanted - set(self.collections)
        if unknown:
            raise KeyError(f"the mapping has no collection {', '.join(sorted(unknown))}; it maps {', '.join(self.collections)}")
        return [n for n in self.collections if n in wanted]

    def map_document(self, collection: str, doc: dict[str, Any], *, collect_notes: bool = False) -> MappedDocument:
        """Rows for one document. Raises RejectError (with the field path and reason) or SkipDocument."""
        return self.collection(collection).map(doc, self.secret, collect_notes)

    def unmap(
        self,
        collection: str,
        parent_row: dict[str, Any],
        child_rows: TMapping[str, Iterable[dict[str, Any]]] | None = None,
    ) -> dict[str, Any]:
        """The legacy document for rows (BSON types: ObjectId, Decimal128, datetime); for reverse sync."""
        return self.collection(collection).unmap(parent_row, child_rows, self.secret)

    def tables(self, collections: Iterable[str] | None = None) -> list[str]:
        """The tables of `collections` (default: all), each collection's parent table then its children."""
        out = []
        for coll in self.collections.values() if collections is None else map(self.collection, collections):
            out.append(coll.table)
            out.extend(coll.child_tables)
        return out


def apply_references(mapped: MappedDocument, exists: Callable[[str, str], bool]) -> MappedDocument:
    """Resolve `mapped.references` with `exists(collection, id)`: keep and flag, NULL and flag, or reject."""
    for ref in mapped.references:
        if exists(ref.collection, ref.value):
            continue
        if ref.on_missing == "reject":
            raise RejectError(mapped.record_id, ref.column, ref.flag, f"{ref.collection} {ref.value} does not exist")
        mapped.flags[ref.flag] = ref.value
        if ref.on_missing == "null":
            mapped.row[ref.column] = None
    return mapped


def load_mapping(path: str | Path | None = None, *, secret: str | None = None) -> Mapping:
    """The mapping at `path`, or the shipped RPS mapping. `secret` overrides Settings.legacy_secret."""
    p = Path(path) if path else DEFAULT_MAPPING
    spec, text = read(p)
    return Mapping(spec, text, str(p), secret)


def mapping_from_text(text: str, *, secret: str | None = None, origin: str = "<mapping>") -> Mapping:
    return Mapping(parse(text, origin), text, origin, secret)
