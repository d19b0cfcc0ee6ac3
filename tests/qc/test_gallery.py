"""The gallery's cards and page (`mrcohort.qc.gallery`) from ``qc`` rows."""

from __future__ import annotations

from mrcohort.qc.gallery import gallery_cards, gallery_html


def _row(pid: str, label_id: int, flags: str = "", model_key: str = "k" * 64, **over):
    return {
        "cohort": "c",
        "participant_id": pid,
        "visit": "0",
        "model_key": model_key,
        "label_id": label_id,
        "label_name": f"label{label_id}",
        "qc_pass": not flags,
        "qc_flags": flags,
        "picture_path": f"qc_pictures/{pid}.0.png",
        **over,
    }


def test_one_card_per_participant_visit_and_model_flagged_first() -> None:
    rows = [
        _row("a", 2),
        _row("b", 7, "truncated"),
        _row("b", 3, "missing,fragmented"),
        _row("a", 1),
        _row("a", 1, "missing", model_key="other", picture_path=None),
    ]
    cards = gallery_cards(rows, {"k" * 64: "demo"})
    assert [(c.participant_id, c.model_name, c.passed) for c in cards] == [
        ("a", "other", False),  # no registry name: the key's start
        ("b", "demo", False),
        ("a", "demo", True),
    ]
    assert cards[1].flags == (("label3", "missing,fragmented"), ("label7", "truncated"))
    assert cards[0].picture is None and cards[2].picture == "qc_pictures/a.0.png"


def test_the_page_links_each_picture_through_href() -> None:
    cards = gallery_cards([_row("a", 1), _row("b", 1, "missing")])
    page = gallery_html(cards, heading="QC & more", href=lambda p: None if "b" in p else "x/" + p)
    assert page.count('class="card ') == 2
    assert '<img src="x/qc_pictures/a.0.png"' in page
    assert "QC picture missing from the store" in page  # b's file is not there
    assert "<title>QC &amp; more</title>" in page
    assert "2 participant-visits, 1 flagged" in page
    assert "Nothing to show." in gallery_html([], heading="h", href=str)


def test_the_page_lists_the_labels_behind_each_flag() -> None:
    rows = [_row("a", 3, "missing,fragmented"), _row("a", 7, "missing"), _row("a", 9)]
    page = gallery_html(gallery_cards(rows), heading="h", href=str)
    assert "<li><code>missing</code> (2): label3, label7</li>" in page
    assert "<li><code>fragmented</code> (1): label3</li>" in page
    assert "label9" not in page
