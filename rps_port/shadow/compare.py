"""Compare two canonical forms: equality first (cheap), then a walk into the unequal parts only."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from rps_port.shadow.rules import Keyed, ShadowRules

Kind = Literal["value_changed", "type_changed", "missing", "extra"]

# DeepDiff's own work budget (nodes visited); a pathological pair costs at most this much.
DEEPDIFF_NODE_BUDGET = 20_000
_REPORT_KINDS: dict[str, Kind] = {
    "values_changed": "value_changed",
    "type_changes": "type_changed",
    "dictionary_item_removed": "missing",
    "iterable_item_removed": "missing",
    "set_item_removed": "missing",
    "dictionary_item_added": "extra",
    "iterable_item_added": "extra",
    "set_item_added": "extra",
}
logging.getLogger("deepdiff").setLevel(logging.ERROR)
logging.getLogger("deepdiff.diff").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Difference:
    """One difference: `missing` means present in legacy and absent in new, `extra` the reverse."""

    path: str  # concrete: items[1].unit_price
    template: str  # normalised: items[*].unit_price
    kind: Kind
    legacy: Any = None
    new: Any = None


def _render(steps: list[Any], root: Any) -> tuple[str, str]:
    """Concrete and normalised path strings; positions and keys of keyed arrays become `[*]`."""
    concrete, template = "", ""
    node = root
    for step in steps:
        if isinstance(node, Keyed) or isinstance(step, int):
            concrete += f"[{step}]"
            template += "[*]"
        else:
            sep = "." if concrete else ""
            concrete += f"{sep}{step}"
            template += f"{sep}{step}"
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            node = None
    return concrete, template


def _join(prefix: str, path: str) -> str:
    if not path:
        return prefix
    if not prefix:
        return path
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    return None


def diff(legacy: Any, new: Any, rules: ShadowRules, prefix: tuple[str, str] | None = None) -> list[Difference]:
    """Differences between two canonical forms (after `rules.apply`); [] when they are equal.

    Equal values return at once (the fast path). Otherwise the walk descends only into parts that
    are unequal, classifying leaves itself; DeepDiff runs only on arrays whose lengths differ
    (where aligning elements needs it), within DEEPDIFF_NODE_BUDGET nodes. At most
    `rules.max_diffs` differences are kept; differences within a path's numeric tolerance are
    dropped. `prefix` (concrete, template) is put in front of the paths, e.g. for the records of a
    list answer: ("data[<id>]", "data[*]").
    """
    if legacy == new:
        return []
    out: list[Difference] = []
    _walk(legacy, new, "", "", rules, out)
    if prefix:
        out = [Difference(_join(prefix[0], d.path), _join(prefix[1], d.template), d.kind, d.legacy, d.new)
               for d in out]
    return sorted(out, key=lambda d: d.path)


def _step(path: str, template: str, key: Any, keyed: bool) -> tuple[str, str]:
    if keyed or isinstance(key, int):
        return f"{path}[{key}]", f"{template}[*]"
    sep = "." if path else ""
    return f"{path}{sep}{key}", f"{template}{sep}{key}"


def _leaf(a: Any, b: Any, path: str, template: str, rules: ShadowRules, out: list[Difference]) -> None:
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        tol = rules.tolerance_for(template)
        if tol is not None and abs(na - nb) <= tol:
            return
        out.append(Difference(path, template, "value_changed", a, b))
    elif type(a) is not type(b) and a is not None and b is not None:
        out.append(Difference(path, template, "type_changed", a, b))
    else:
        out.append(Difference(path, template, "value_changed", a, b))


def _walk(a: Any, b: Any, path: str, template: str, rules: ShadowRules, out: list[Difference]) -> None:
    if len(out) >= rules.max_diffs or a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        keyed = isinstance(a, Keyed)
        for key in list(a) + [k for k in b if k not in a]:
            p, t = _step(path, template, key, keyed)
            if key not in b:
                out.append(Difference(p, t, "missing", a[key], None))
            elif key not in a:
                out.append(Difference(p, t, "extra", None, b[key]))
            else:
                _walk(a[key], b[key], p, t, rules, out)
            if len(out) >= rules.max_diffs:
                return
        return
    if isinstance(a, list) and isinstance(b, list):
        if len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                _walk(x, y, f"{path}[{i}]", f"{template}[*]", rules, out)
            return
        _deepdiff(a, b, path, template, rules, out)
        return
    _leaf(a, b, path, template, rules, out)


def _deepdiff(a: list[Any], b: list[Any], path: str, template: str, rules: ShadowRules,
              out: list[Difference]) -> None:
    """Arrays of different lengths: DeepDiff aligns the elements (bounded), we classify its report."""
    from deepdiff import DeepDiff

    tree = DeepDiff(a, b, view="tree", max_diffs=DEEPDIFF_NODE_BUDGET, ignore_numeric_type_changes=True,
                    verbose_level=1)
    for report, levels in tree.items():
        kind = _REPORT_KINDS.get(report)
        if kind is None:
            continue
        for level in levels:
            steps = level.path(output_format="list")
            concrete, tmpl = _render(steps, b if kind == "extra" else a)
            p, t = _join(path, concrete) if concrete else path, _join(template, tmpl) if tmpl else template
            t1 = None if kind == "extra" else level.t1
            t2 = None if kind == "missing" else level.t2
            if kind == "value_changed":
                _leaf(t1, t2, p, t, rules, out)
            else:
                out.append(Difference(p, t, kind, t1, t2))
            if len(out) >= rules.max_diffs:
                return
