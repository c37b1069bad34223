"""The wall clock, injected: cores take ``now`` as an argument, edges take a ``Clock``.

Kernel module: stages, the runtime and connectors all need "now", and none of them should
import another layer for it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)
