"""``mrcohort qc-gallery``: one HTML page of the store's QC pictures, a card per
participant-visit (current rows: the newest model and measurement version), flagged first.
Registered in :mod:`mrcohort.cli.app`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer

from mrcohort.cli.common import fail

#: The page's name in the store when ``--out`` is not given.
GALLERY_NAME = "qc_gallery.html"
_COLUMNS = [
    "cohort", "participant_id", "visit", "model_key", "label_id", "label_name",
    "qc_pass", "qc_flags", "picture_path",
]  # fmt: skip


def _href(store: Path, page_dir: Path):
    """Store-relative picture path -> URL relative to the page, None when not on disk."""

    def href(picture: str) -> str | None:
        path = store / picture
        if not path.is_file():
            return None
        return quote(Path(os.path.relpath(path, page_dir)).as_posix(), safe="/=")

    return href


def qc_gallery(
    store: Annotated[Path, typer.Option(help="The store (its qc table and qc_pictures/).")],
    only_flagged: Annotated[
        bool,
        typer.Option("--only-flagged", help="Only participant-visits with a QC flag raised."),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help=f"HTML file to write (default: <store>/{GALLERY_NAME})."),
    ] = None,
    cohort: Annotated[str | None, typer.Option(help="Only this cohort.")] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Only this model: a model_key or a model name of the models table."),
    ] = None,
) -> None:
    """Write one HTML page of the QC pictures: a card per participant-visit, flagged first."""
    from mrcohort.io.files import atomic_target
    from mrcohort.qc.gallery import gallery_cards, gallery_html
    from mrcohort.readers import open_table

    if not store.is_dir():
        raise fail(f"store {store} does not exist")
    rows = open_table(
        "qc", store, cohort=cohort, model=model, columns=_COLUMNS, to="arrow"
    ).to_pylist()
    if not rows:
        which = "".join(f" {k} {v!r}" for k, v in (("cohort", cohort), ("model", model)) if v)
        raise fail(f"no qc rows in {store}{' for' + which if which else ''}")
    models = open_table("models", store, columns=["model_key", "model_name"], to="arrow")
    names = dict(zip(*(models.column(c).to_pylist() for c in models.column_names), strict=True))
    cards = gallery_cards(rows, names)
    note = ""
    if only_flagged:
        note = f"{sum(c.passed for c in cards)} passing left out"
        cards = [c for c in cards if not c.passed]
    page = (out if out is not None else store / GALLERY_NAME).absolute()
    text = gallery_html(
        cards, heading=f"QC gallery of {store.absolute()}", href=_href(store, page.parent),
        note=note,
    )  # fmt: skip
    with atomic_target(page) as tmp:
        tmp.write_text(text, encoding="utf-8")
    flagged = sum(not c.passed for c in cards)
    typer.echo(f"{page}: {len(cards)} participant-visits, {flagged} flagged")
