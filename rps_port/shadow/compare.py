"""Compare two canonical forms: equality first (cheap), a bounded DeepDiff only when they differ."""

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

    Equal values return at once; otherwise DeepDiff walks at most DEEPDIFF_NODE_BUDGET nodes and
    at most `rules.max_diffs` differences are kept. Differences within a path's numeric tolerance
    are dropped. `prefix` (concrete, template) is put in front of the paths, e.g. for the
    records of a list answer: ("data[<id>]", "data[*]").
    """
    if legacy == new:
        return []
    from deepdiff import DeepDiff

    tree = DeepDiff(
        legacy,
        new,
        view="tree",
        max_diffs=DEEPDIFF_NODE_BUDGET,
        ignore_numeric_type_changes=True,
        verbose_level=1,
    )
    out: list[Difference] = []
    for report, levels in tree.items():
        kind = _REPORT_KINDS.get(report)
        if kind is None:
            continue
        for level in levels:
            steps = level.path(output_format="list")
            concrete, template = _render(steps, new if kind == "extra" else legacy)
            t1 = None if kind == "extra" else level.t1
            t2 = None if kind == "missing" else level.t2
            if kind == "value_changed":
                tol = rules.tolerance_for(template)
                a, b = _number(t1), _number(t2)
                if tol is not None and a is not None and b is not None and abs(a - b) <= tol:
                    continue
            if prefix:
                concrete, template = _join(prefix[0], concrete), _join(prefix[1], template)
            out.append(Difference(concrete, template, kind, t1, t2))
            if len(out) >= rules.max_diffs:
                return sorted(out, key=lambda d: d.path)
    return sorted(out, key=lambda d: d.path)
