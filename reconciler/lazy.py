"""A package's names imported on first use (PEP 562): `config` and `args` keep their
heavy modules (pydantic models, each command's arguments) out of a command that does not
use them, while `from reconciler.config import X` works as before."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from importlib import import_module
from typing import Any


def lazy_names(package: str, homes: Mapping[str, Iterable[str]]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: each name in `homes` (module -> names) is
    imported from `package.module` when first asked for."""
    home = {name: module for module, names in homes.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = home.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{module}"), name)

    return __getattr__
