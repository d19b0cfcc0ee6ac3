"""What every command shares: the two consoles, the one ``fail`` helper, the layout enum, the
model options, the progress bar and the failure listing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from mrcohort import ids

__all__ = [
    "BodyCompOption",
    "CpuOption",
    "Layout",
    "ModelOption",
    "WorkersOption",
    "check_cohort",
    "console",
    "device_for",
    "fail",
    "model_folder",
    "out_console",
    "print_failures",
    "progress_bar",
    "store_locked",
    "warn",
]

#: Messages, warnings and progress bars (stderr); never wraps, so one message is one line.
console = Console(stderr=True, soft_wrap=True)
#: Results (stdout).
out_console = Console(soft_wrap=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one red ``error:`` line on stderr; return the Exit to raise (code 2)."""
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)


@contextmanager
def store_locked(store: Path, *, wait: bool, command: str, failed: str) -> Iterator[None]:
    """A maintenance command's hold on ``store`` (its lock, ``--wait`` or ``STORE_BUSY``);
    coded and OS errors inside end as one line (``failed: reason`` for an OS error)."""
    from mrcohort.errors import MrcohortError
    from mrcohort.jobs.lock import StoreLock

    if not Path(store, "ledger").is_dir():
        raise fail(f"{store} is not a store (no ledger table)")
    try:
        with StoreLock(store, wait=wait, command=command):
            yield
    except MrcohortError as err:
        raise fail(str(err)) from err
    except OSError as err:
        raise fail(f"{failed}: {err}") from err


def warn(message: str) -> None:
    """Print one yellow ``warning:`` line on stderr."""
    console.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False)


class Layout(str, Enum):
    """Cohort layouts (docs/layouts.md): UK Biobank zips, NAKO folders, a manifest CSV."""

    ukbb = "ukbb"
    nako = "nako"
    manifest = "manifest"


class Backend(str, Enum):
    """Where the participant-visits run (README, "Running on a cluster")."""

    local = "local"
    slurm = "slurm"
    pbs = "pbs"
    scheduler = "scheduler"


_MODEL_HELP = (
    "'demo', 'mrsegmentator' (its weights root: $MRSEG_WEIGHTS_PATH or ~/.mrsegmentator), "
    "an MRSegmentator weights root (base/, body_comp/) or an nnU-Net v2 model folder."
)
_BODY_COMP_HELP = "Use the body_comp model of an MRSegmentator 2.0 weights root (10 classes)."

ModelOption = Annotated[str, typer.Option(help=_MODEL_HELP)]
BodyCompOption = Annotated[bool, typer.Option("--body-comp", help=_BODY_COMP_HELP)]
CpuOption = Annotated[bool, typer.Option("--cpu", help="Never use a GPU.")]
WorkersOption = Annotated[int | None, typer.Option(help="Dask worker processes.")]


def model_folder(model: str, body_comp: bool) -> str:
    """The ``--model`` value, with ``--body-comp`` resolved to the weights root's body_comp/."""
    if not body_comp:
        return model
    from mrcohort.segmentation.model import resolve_model_folder

    return str(resolve_model_folder(model, variant="body_comp"))


def device_for(cpu: bool) -> str:
    """The device setting for ``--cpu``: ``cpu``, else ``auto`` (a GPU when there is one)."""
    return "cpu" if cpu else "auto"


def check_cohort(cohort: str) -> str:
    """Return ``cohort`` if it is a valid cohort name (a partition value), else fail."""
    if not ids.is_partition_value(cohort):
        raise fail(f"cohort name {cohort!r} must match {ids.PARTITION_PATTERN} without '..'")
    return cohort


def progress_bar() -> Progress:
    """A progress bar on stderr: description, bar, done/total, elapsed time."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def print_failures(
    headline: str,
    where: str,
    failures: Iterable[Mapping[str, object]],
    who: Callable[[Mapping[str, object]], str],
) -> None:
    """A yellow ``WARNING: <headline>`` line naming ``where`` the rows are, then one line per
    failure row: who, stage, code, message."""
    console.print(f"[yellow]WARNING: {escape(headline)}[/yellow] {escape(where)}:", highlight=False)
    for f in failures:
        line = f"  {who(f)} [{f['stage']}] {f['code']}: {f['message']}"
        console.print(escape(line), highlight=False)
