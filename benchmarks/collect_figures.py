"""Write docs/benchmarks.md from the per-area figures in docs/benchmarks/*.md.

Each benchmark script's owner records its latest figures (with the machine and date) in
docs/benchmarks/<area>.md; this puts them on one page, in a fixed order, headings demoted a level.
Run: python benchmarks/collect_figures.py
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["etl", "etl-scale", "api", "load", "outbox", "shadow", "legacy-data"]
HEADER = """# Benchmarks: latest figures

Speed and memory targets live in `benchmarks/` (runnable scripts that print their figures beside the
baselines the issues name), never in timed tests. This page collects the latest recorded figures;
each section names its script, the machine (2 cores, 24 GiB; a shared machine where noted, which
inflates wall times) and the date. Regenerate with `python benchmarks/collect_figures.py` after
updating a file in `docs/benchmarks/`.
"""


def demote(markdown: str) -> str:
    """One more `#` on every heading outside fenced code blocks."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        out.append("#" + line if not fenced and re.match(r"^#+ ", line) else line)
    return "\n".join(out)


def main() -> None:
    folder = ROOT / "docs" / "benchmarks"
    files = sorted(folder.glob("*.md"), key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else len(ORDER), p.stem))
    parts = [HEADER]
    for path in files:
        text = path.read_text(encoding="utf-8").strip()
        parts.append(demote(text) + f"\n\n(Source: `docs/benchmarks/{path.name}`.)")
    (ROOT / "docs" / "benchmarks.md").write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    print(f"wrote docs/benchmarks.md from {len(files)} files")


if __name__ == "__main__":
    main()
