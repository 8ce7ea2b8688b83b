"""Public-holiday lookup table by day number, built with the `holidays` package at training time
and stored inside the model's feature graph.

The calendar is the training run's choice (`train.py --holidays`): a country code with an optional
subdivision (`GB-ENG`, `US`, `DE-BY`), or `none` (the default: every day is a working day, so a
model trained on a log from an unknown country learns nothing from a wrong calendar). `use`
sets it once, before any feature graph is built; the manifest records it.
"""

from __future__ import annotations

import numpy as np

FIRST_YEAR, LAST_YEAR = 2005, 2035
_CURRENT = "none"


class UnknownCalendar(ValueError):
    """The `holidays` package has no such country or subdivision."""


def use(spec: str) -> str:
    """Set the calendar for every feature graph built after this call; returns it normalised."""
    global _CURRENT
    spec = (spec or "none").strip()
    if spec.lower() != "none":
        _table(spec)  # fail now, with the package's own list, rather than deep in the export
    _CURRENT = "none" if spec.lower() == "none" else spec
    return _CURRENT


def current() -> str:
    return _CURRENT


def holiday_table() -> tuple[int, np.ndarray]:
    """(day0, flags): flags[d - day0] = 1.0 when day d is a public holiday of the current
    calendar, for FIRST_YEAR..LAST_YEAR; all zero for `none`."""
    if _CURRENT == "none":
        day0, day1 = _bounds()
        return day0, np.zeros(day1 - day0, np.float32)
    return _table(_CURRENT)


def _bounds() -> tuple[int, int]:
    day0 = int(np.datetime64(f"{FIRST_YEAR}-01-01", "D").astype(np.int64))
    day1 = int(np.datetime64(f"{LAST_YEAR + 1}-01-01", "D").astype(np.int64))
    return day0, day1


def _table(spec: str) -> tuple[int, np.ndarray]:
    import holidays

    country, _, subdiv = spec.partition("-")
    try:
        cal = holidays.country_holidays(country.upper(), subdiv=subdiv.upper() or None,
                                        years=range(FIRST_YEAR, LAST_YEAR + 1))
    except NotImplementedError as e:  # the package's error for an unknown country or subdivision
        raise UnknownCalendar(f"holiday calendar {spec!r}: {e}") from e
    day0, day1 = _bounds()
    flags = np.zeros(day1 - day0, np.float32)
    for d in cal:
        flags[int(np.datetime64(d, "D").astype(np.int64)) - day0] = 1.0
    return day0, flags
