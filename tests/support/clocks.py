"""A clock for job store tests: it moves only when told to."""

from __future__ import annotations

import datetime

T0 = datetime.datetime(2024, 5, 1, 8, 0, 0, tzinfo=datetime.UTC)


class FakeClock:
    """Timezone-aware UTC time, starting at T0, advanced by the test."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)
