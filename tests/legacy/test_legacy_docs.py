"""docs/legacy-data.md states the same quirk rates as the code."""

from __future__ import annotations

from pathlib import Path

from rps_port.legacy.quirks import QUIRKS

DOC = Path(__file__).resolve().parents[2] / "docs" / "legacy-data.md"


def test_quirk_table_in_docs_matches_the_code():
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[0].startswith("`") and "." in cells[0]:
            rows[cells[0].strip("`")] = (float(cells[1]), cells[2])
    assert rows == {q.key: (q.rate, q.applies_to) for q in QUIRKS}
