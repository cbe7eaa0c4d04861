"""How many examples each hypothesis property draws, by profile.

`full` (the default, and always under CI=true) draws what each test asks for.
`dev` (`HYPOTHESIS_PROFILE=dev pytest`) draws a twentieth of it, at least 3, for the
edit-test loop: it still runs every property, it just proves less.
"""

from __future__ import annotations

import os

from hypothesis import settings

PROFILES = ("full", "dev")


def profile() -> str:
    """The profile this session runs: CI=true always runs `full`."""
    if os.environ.get("CI") == "true":
        return "full"
    name = os.environ.get("HYPOTHESIS_PROFILE", "full")
    if name not in PROFILES:
        raise ValueError(f"HYPOTHESIS_PROFILE={name!r}: expected one of {', '.join(PROFILES)}")
    return name


def load_profile() -> None:
    settings.register_profile("full", deadline=None)
    settings.register_profile("dev", deadline=None, max_examples=5)
    settings.load_profile(profile())


def examples(n: int) -> int:
    """`n` examples under the full profile, a twentieth of them (at least 3) under dev."""
    return n if profile() == "full" else max(3, n // 20)
