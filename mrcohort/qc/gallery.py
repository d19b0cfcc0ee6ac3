"""The QC gallery: one HTML page with a card per participant-visit (its QC picture, ids,
model, pass/fail and the flags raised per label), flagged ones first.

Pure: ``qc`` rows in, cards, then HTML text out (every text value escaped); the command
(``mrcohort qc-gallery``) reads the rows and writes the page.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

__all__ = ["Card", "gallery_cards", "gallery_html"]


@dataclass(frozen=True)
class Card:
    """One participant-visit of the gallery.

    Attributes
    ----------
    picture
        Store-relative path of its QC picture (``picture_path``), None when it has none.
    flags
        ``(label_name, "flag, flag")`` for every label with a QC flag raised, by label id.
    """

    cohort: str
    participant_id: str
    visit: str
    model_key: str
    model_name: str
    picture: str | None
    flags: tuple[tuple[str, str], ...]

    @property
    def passed(self) -> bool:
        """No label of the participant-visit raised a QC flag."""
        return not self.flags


def gallery_cards(
    rows: Iterable[Mapping[str, object]], model_names: Mapping[str, str] | None = None
) -> list[Card]:
    """One card per (cohort, participant, visit, model_key) of ``qc`` rows, flagged first,
    then by cohort, participant id, visit and model name.

    Parameters
    ----------
    rows
        ``qc`` rows (dicts with the declared columns; ``label_id``, ``label_name``,
        ``qc_pass``, ``qc_flags`` and ``picture_path`` are used).
    model_names
        model_key -> model name (the ``models`` registry); the key's first 12 characters
        where it has none.
    """
    names = model_names or {}
    groups: dict[tuple[str, str, str, str], list[Mapping[str, object]]] = {}
    for row in rows:
        key = tuple(str(row[k]) for k in ("cohort", "participant_id", "visit", "model_key"))
        groups.setdefault(key, []).append(row)  # type: ignore[arg-type]
    cards = []
    for (cohort, pid, visit, model_key), members in groups.items():
        by_label = sorted(members, key=lambda r: int(r["label_id"]))  # type: ignore[call-overload]
        flags = tuple(
            (str(r["label_name"]), str(r["qc_flags"]) or "flagged")
            for r in by_label
            if not r["qc_pass"]
        )
        picture = next((str(r["picture_path"]) for r in members if r.get("picture_path")), None)
        name = names.get(model_key) or model_key[:12]
        cards.append(Card(cohort, pid, visit, model_key, name, picture, flags))
    return sorted(
        cards, key=lambda c: (c.passed, c.cohort, c.participant_id, c.visit, c.model_name)
    )


_STYLE = """
body { background: #101010; color: #e8e8e8; font: 14px/1.4 system-ui, sans-serif; margin: 1em; }
h1 { font-size: 1.3em; margin: 0 0 .3em; }
.summary { color: #aaa; margin-bottom: 1em; }
.cards { display: flex; flex-wrap: wrap; gap: 14px; }
.card { background: #1c1c1c; border: 2px solid #2f6f3f; border-radius: 6px; width: 460px;
        padding: 8px; }
.card.fail { border-color: #b33; }
.card img { width: 100%; display: block; background: #000; }
.card h2 { font-size: 1em; margin: .4em 0 .2em; }
.badge { display: inline-block; padding: 0 .5em; border-radius: 3px; font-weight: bold; }
.pass .badge { background: #2f6f3f; } .fail .badge { background: #b33; }
.meta { color: #aaa; font-size: .9em; }
.nopic { padding: 3em 1em; text-align: center; color: #888; background: #000; }
ul.flags { margin: .3em 0 0; padding-left: 1.2em; }
code { color: #ffd27a; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _by_flag(flags: tuple[tuple[str, str], ...]) -> dict[str, list[str]]:
    """Flag -> the labels that raised it (in label order): one line per flag reads better
    than one per label when a scan misses a dozen labels."""
    out: dict[str, list[str]] = {}
    for label, raised in flags:
        for flag in raised.split(","):
            out.setdefault(flag.strip(), []).append(label)
    return out


def _card_html(card: Card, href: Callable[[str], str | None]) -> str:
    src = href(card.picture) if card.picture else None
    if src is None:
        why = "no QC picture" if card.picture is None else "QC picture missing from the store"
        figure = f'<div class="nopic">{_e(why)}</div>'
    else:
        alt = f"QC picture of {card.participant_id} visit {card.visit}"
        figure = f'<a href="{_e(src)}"><img src="{_e(src)}" alt="{_e(alt)}" loading="lazy"></a>'
    state, badge = ("pass", "PASS") if card.passed else ("fail", "FAIL")
    flags = "".join(
        f"<li><code>{_e(flag)}</code> ({len(labels)}): {_e(', '.join(labels))}</li>"
        for flag, labels in _by_flag(card.flags).items()
    )
    return (
        f'<div class="card {state}">{figure}'
        f'<h2><span class="badge">{badge}</span> {_e(card.participant_id)} '
        f"visit {_e(card.visit)}</h2>"
        f'<div class="meta">cohort {_e(card.cohort)} · model {_e(card.model_name)} '
        f'<span title="model_key">({_e(card.model_key[:12])})</span></div>'
        + (f'<ul class="flags">{flags}</ul>' if flags else "")
        + "</div>"
    )


def gallery_html(
    cards: list[Card], *, heading: str, href: Callable[[str], str | None], note: str = ""
) -> str:
    """The gallery page.

    Parameters
    ----------
    cards
        In the order shown (`gallery_cards` puts flagged ones first).
    heading
        The page's title and heading (escaped here).
    href
        Store-relative picture path -> the ``src`` to use from the page (a relative URL),
        or None when the file is not there.
    note
        A line under the heading, e.g. what was left out (escaped here).
    """
    flagged = sum(not c.passed for c in cards)
    summary = f"{len(cards)} participant-visits, {flagged} flagged"
    if note:
        summary += f" · {note}"
    body = "\n".join(_card_html(c, href) for c in cards) or "<p>Nothing to show.</p>"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(heading)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f'<h1>{_e(heading)}</h1>\n<div class="summary">{_e(summary)}</div>\n'
        f'<div class="cards">\n{body}\n</div>\n</body>\n</html>\n'
    )
