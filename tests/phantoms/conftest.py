"""Shared phantom participants of the phantom tests (built once per session)."""

from __future__ import annotations

import pytest

from mrcohort.phantoms import PhantomParticipant, make_participant


@pytest.fixture(scope="session")
def participant() -> PhantomParticipant:
    """Participant 1 of the mini cohort drawn with seed 3."""
    return make_participant(3, 1, "mini")
