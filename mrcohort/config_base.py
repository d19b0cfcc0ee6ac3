"""What every section of the job configuration shares: frozen pydantic models that refuse
unknown keys, and one way to report a bad value (``bad``)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

__all__ = ["MEMORY", "Section", "bad"]

#: A size such as "16GB", "8GiB" or "auto".
MEMORY = re.compile(r"auto|\d+(\.\d+)?\s*([kKMGTP]i?)?B")


def bad(problem: str, key: str = "") -> PydanticCustomError:
    """A validation error whose message is ``problem`` (``key``: sub-key of the field)."""
    return PydanticCustomError("bad_value", "{problem}", {"problem": problem, "key": key})


class Section(BaseModel):
    """A configuration section: frozen, unknown keys are errors, no NaN or infinity."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
