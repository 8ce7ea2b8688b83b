"""UK bank-holiday lookup table by day number (built with the `holidays` package at training time)."""

from __future__ import annotations

import numpy as np

FIRST_YEAR, LAST_YEAR = 2005, 2035


def holiday_table(country: str = "GB", subdiv: str = "ENG") -> tuple[int, np.ndarray]:
    """(day0, flags): flags[d - day0] = 1.0 when day d is a bank holiday, for 2005..2035."""
    import holidays

    cal = holidays.country_holidays(country, subdiv=subdiv, years=range(FIRST_YEAR, LAST_YEAR + 1))
    day0 = int(np.datetime64(f"{FIRST_YEAR}-01-01", "D").astype(np.int64))
    day1 = int(np.datetime64(f"{LAST_YEAR + 1}-01-01", "D").astype(np.int64))
    flags = np.zeros(day1 - day0, np.float32)
    for d in cal:
        flags[int(np.datetime64(d, "D").astype(np.int64)) - day0] = 1.0
    return day0, flags
