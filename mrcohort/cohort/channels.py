"""Dixon channel names."""

from __future__ import annotations

#: In-phase, opposed-phase, water, fat — the four Dixon channels, in this canonical order.
CHANNELS: tuple[str, ...] = ("in", "opp", "w", "f")
