"""How long, as people read it: the one place that writes a duration (review D-9).

Three styles, because the places differ in what they need (a leaf: anything may use it):

- `compact`: `2.5s`, `42s`, `3m05s`, `1h02m`: fixed shapes for tables, progress and
  summary lines, where columns and lines must stay short.
- `spelled`: `90s` -> `1m30s`, `1h30m`, `23h`: a setting or a window as reconcile.yaml and
  the flags spell durations (`windows.parse_duration` reads it back), exact.
- `words`: `2s`, `45s`, `10 min`, `2 min 5s`: in a sentence; `rough` rounds to whole
  minutes past one, for an estimate that should not look precise.
"""

from __future__ import annotations

_UNITS = (("d", 86400), ("h", 3600), ("m", 60))


def compact(seconds: float) -> str:
    """12s, 3m05s, 1h02m; tenths under ten seconds (2.5s, but 2s), where they still mean
    something: round an estimate first."""
    n = round(seconds)
    if n < 60:
        return f"{seconds:.1f}".removesuffix(".0") + "s" if seconds < 10 else f"{n}s"
    if n < 3600:
        return f"{n // 60}m{n % 60:02d}s"
    return f"{n // 3600}h{n % 3600 // 60:02d}m"


def spelled(seconds: float) -> str:
    """A duration the way it is written in reconcile.yaml and flags: 90 -> 1m30s, 5400 ->
    1h30m, 0.2 -> 0.2s; whole units first, any rest in seconds."""
    whole, rest = divmod(seconds, 1)
    left = int(whole)
    parts = []
    for unit, size in _UNITS:
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    if left or rest or not parts:
        parts.append(f"{left + rest:g}s")
    return "".join(parts)


def words(seconds: float) -> str:
    """600 -> 10 min, 125 -> 2 min 5s, 45 -> 45s, 2.0076 -> 2s, 0.25 -> 0.2s."""
    if seconds >= 120:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min" if rest == 0 else f"{minutes} min {rest}s"
    return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}".removesuffix(".0") + "s"


def rough(seconds: float) -> str:
    """An estimate: whole seconds under a minute (at least 1s), whole minutes past it."""
    if seconds < 60:
        return f"{max(1, round(seconds))}s"
    return f"{round(seconds / 60)} min"
