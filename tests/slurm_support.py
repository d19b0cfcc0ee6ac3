"""The one-node SLURM of ``.ci/slurm-local`` for the tests marked ``slurm``.

Start it with ``.ci/slurm-local start`` (CI does, see ``.ci/run``) and export the
``SLURM_CONF`` it prints; a test calls :func:`require_slurm` first and runs SLURM's commands
with the environment it returns. Without SLURM the test is skipped, except under ``CI=true``,
where it fails: CI never skips the SLURM tests silently.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

#: The state folder of ``.ci/slurm-local`` (``MRCOHORT_SLURM_DIR``, as the script reads it).
DEFAULT_DIR = Path(os.environ.get("MRCOHORT_SLURM_DIR") or "/tmp/mrcohort-slurm")
#: The script's only node.
NODE = "localhost"
#: ``sinfo`` states of a node that takes jobs.
UP_STATES = frozenset({"idle", "mixed", "allocated", "completing"})


def slurm_conf() -> Path | None:
    """``$SLURM_CONF``, else the script's ``slurm.conf`` when it exists, else None."""
    conf = os.environ.get("SLURM_CONF")
    if conf:
        return Path(conf)
    default = DEFAULT_DIR / "slurm.conf"
    return default if default.is_file() else None


def slurm_env() -> dict[str, str]:
    """``os.environ`` with ``SLURM_CONF`` set (when a configuration is known)."""
    env = dict(os.environ)
    conf = slurm_conf()
    if conf is not None:
        env["SLURM_CONF"] = str(conf)
    return env


def _controller_reachable(conf: Path) -> bool:
    """False when the configuration's munge socket is missing or its controller's port refuses
    connections: ``sinfo`` would retry for ~10 s before saying so. True otherwise."""
    try:
        text = conf.read_text(errors="replace")
    except OSError:
        return True  # sinfo will tell
    settings: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.split("#", 1)[0].strip().partition("=")
        if sep:
            settings.setdefault(key.strip().lower(), value.strip())
    socket_path = re.search(r"socket=([^,\s]+)", settings.get("authinfo", ""))
    if socket_path and not Path(socket_path[1]).is_socket():
        return False
    host = settings.get("slurmctldhost") or settings.get("controlmachine")
    if not host:
        return True
    address = re.fullmatch(r"[^(]*\(([^)]+)\)", host)
    try:
        port = int(settings.get("slurmctldport", "6817").split("-")[0])
        with socket.create_connection((address[1] if address else host, port), timeout=2):
            return True
    except (OSError, ValueError):
        return False


def slurm_running(timeout: float = 5.0) -> bool:
    """True when ``sinfo`` answers within ``timeout`` seconds and node ``localhost`` is up
    (idle, mixed, allocated or completing)."""
    conf = slurm_conf()
    if conf is None or not conf.is_file() or shutil.which("sinfo") is None:
        return False
    if not _controller_reachable(conf):
        return False
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-n", NODE, "-o", "%T"],
            env=slurm_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.strip() in UP_STATES for line in out.splitlines())


def require_slurm() -> dict[str, str]:
    """The environment for SLURM's commands (``os.environ`` + ``SLURM_CONF``); skips the
    calling test when SLURM is not running, or fails it when ``CI=true``."""
    if not slurm_running():
        message = "SLURM is not running (start it with .ci/slurm-local start)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI=true: SLURM tests may not be skipped", pytrace=False)
        pytest.skip(message)
    return slurm_env()
