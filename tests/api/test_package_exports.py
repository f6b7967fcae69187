"""`rps_port.api` exports the portal's names on first use, so loading the tables does not import FastAPI."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rps_port.api


@pytest.mark.parametrize("name", rps_port.api.__all__)
def test_each_exported_name_is_the_object_its_module_defines(name: str) -> None:
    module = rps_port.api._EXPORTS[name]
    exported = getattr(rps_port.api, name)
    assert exported is getattr(sys.modules[module], name)


def test_an_unknown_name_is_an_attribute_error_and_submodules_still_import() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rps_port.api.nope
    from rps_port.api import app as app_module

    assert app_module.__name__ == "rps_port.api.app"


def test_the_etl_and_the_table_registry_do_not_import_fastapi() -> None:
    code = (
        "import sys\n"
        "from rps_port.domain.registry import load_metadata\n"
        "from rps_port.etl.backfill import process_range\n"
        "from rps_port.etl.executors import run_range\n"
        "assert 'idempotency_keys' in load_metadata().tables\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
