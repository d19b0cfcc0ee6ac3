"""Input folders walked safely: every file below a folder, with what cannot be read told
rather than skipped.

``Path.rglob`` passes over a folder it may not list and a symbolic link that loops, without
a word, and follows a link out of the folder it walks. :func:`walk_files` reports each of
these as a coded :class:`~mrcohort.errors.IngestError` (``PERMISSION_DENIED``,
``SYMLINK_LOOP``, ``SYMLINK_OUTSIDE_SOURCE``, ``FILE_NOT_FOUND`` for a broken link) naming
the entry relative to the source. Hidden entries (names starting with ``.``) are not
visited; a link to a folder inside the source is not followed (its files are reached
through the folder itself).
"""

from __future__ import annotations

import errno
import os
import pwd
from dataclasses import dataclass, field
from pathlib import Path

from mrcohort.errors import IngestError

__all__ = ["Walk", "permission_denied", "walk_files"]


@dataclass
class Walk:
    """What :func:`walk_files` found: the readable ``files`` (sorted) and the ``problems``
    (one coded error per entry that cannot be read safely, in walk order)."""

    files: list[Path] = field(default_factory=list)
    problems: list[tuple[Path, IngestError]] = field(default_factory=list)

    def raise_first(self) -> None:
        """Raise the first problem, if any."""
        if self.problems:
            raise self.problems[0][1]


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid without a passwd entry (containers)
        return f"uid {os.geteuid()}"


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def permission_denied(path: Path, root: Path, *, folder: bool) -> IngestError:
    """``PERMISSION_DENIED`` for ``path`` (named relative to ``root``)."""
    what, mode = ("folder", "a+rx") if folder else ("file", "a+r")
    return IngestError(
        "PERMISSION_DENIED",
        f"{_rel(path, root)}: {what} not readable by {_user()} (permission denied); "
        f"make it readable (e.g. chmod {mode}) and run again",
    )


def _link_problem(path: Path, root: Path, inside: Path | None) -> IngestError | None:
    """Why the symbolic link ``path`` cannot be followed; ``None`` when it can."""
    rel = _rel(path, root)
    try:
        target = path.resolve(strict=True)
    except RuntimeError:  # pathlib's "Symlink loop from ..." (Python < 3.13)
        target = None
    except FileNotFoundError:
        return IngestError(
            "FILE_NOT_FOUND", f"{rel}: broken symbolic link to {os.readlink(path)!r}"
        )
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        target = None
    if target is None:
        return IngestError(
            "SYMLINK_LOOP",
            f"{rel}: symbolic link loop (it leads back to itself); remove or replace the link",
        )
    if inside is not None and not target.is_relative_to(inside):
        return IngestError(
            "SYMLINK_OUTSIDE_SOURCE",
            f"{rel}: symbolic link leads out of the source folder (to {target}); copy the "
            "file into the source, or point the source at the folder holding it",
        )
    return None


def walk_files(folder: Path, root: Path, *, contain: bool = True) -> Walk:
    """Every visible regular file below ``folder`` (itself a file: just it), and the
    problems met on the way.

    Parameters
    ----------
    folder
        Where to start.
    root
        The source folder: names in messages are relative to it; with ``contain`` a
        symbolic link whose target lies outside it is a problem.
    contain
        Refuse links leading out of ``root`` (``SYMLINK_OUTSIDE_SOURCE``).
    """
    inside = root.resolve() if contain else None
    walk = Walk()

    def visit(path: Path, is_dir: bool, *, top: bool = False) -> None:
        if path.is_symlink() and not top:
            problem = _link_problem(path, root, inside)
            if problem is not None:
                walk.problems.append((path, problem))
                return
            if path.is_dir():
                return  # a link to a folder inside the source: reached through the folder
        if not is_dir:
            if not path.is_file():
                return  # a socket, a pipe, a device: not an input
            if os.access(path, os.R_OK):
                walk.files.append(path)
            else:
                walk.problems.append((path, permission_denied(path, root, folder=False)))
            return
        try:
            with os.scandir(path) as it:
                entries = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in it)
        except PermissionError:
            walk.problems.append((path, permission_denied(path, root, folder=True)))
            return
        for name, sub_is_dir in entries:
            if not name.startswith("."):
                visit(path / name, sub_is_dir)

    if folder.exists():
        visit(folder, folder.is_dir(), top=True)
    elif folder.is_symlink():  # a link that loops or leads nowhere
        problem = _link_problem(folder, root, None)
        if problem is not None:
            walk.problems.append((folder, problem))
    walk.files.sort()
    return walk
