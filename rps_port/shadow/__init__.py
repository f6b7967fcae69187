"""Shadow comparisons between the legacy RPS and the new API (see docs/shadow.md).

The public API, imported lazily so that loading the table models (`rps_port.shadow.models`) stays cheap:
`run_shadow`, `run_shadow_async`, `ShadowConfig`, `ShadowReport`, `Principals`, `CorpusEntry`,
`read_corpus`, `sample_corpus`, `load_rules`, `ShadowRules`, `DualRead`, `DualReadConfig`,
`DualReadMiddleware`, `write_evidence`, `save_results`, `latest_results`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "run_shadow": "runner", "run_shadow_async": "runner", "ShadowConfig": "runner",
    "ShadowReport": "report", "Principals": "corpus", "CorpusEntry": "corpus", "read_corpus": "corpus",
    "sample_corpus": "corpus", "load_rules": "rules", "ShadowRules": "rules", "DualRead": "dualread",
    "DualReadConfig": "dualread", "DualReadMiddleware": "dualread", "write_evidence": "store",
    "save_results": "store", "latest_results": "store",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rps_port.shadow' has no attribute {name!r}")
    return getattr(import_module(f"rps_port.shadow.{module}"), name)
