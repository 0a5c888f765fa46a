"""Run a callback right after a given module is imported.

verl loads plugins while ``import verl`` is still running, before most of its
submodules exist. Importing those submodules eagerly from the plugin would add
seconds to every process that imports verl (drivers, Ray workers, reward
workers), so registrations and patches are deferred until verl itself imports
the module they touch.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from types import ModuleType
from typing import Callable

Callback = Callable[[ModuleType], None]


class _AfterImportFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder that wraps the real loader of selected modules."""

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callback]] = {}
        self._lock = threading.Lock()

    def add(self, name: str, callback: Callback) -> None:
        with self._lock:
            self._callbacks.setdefault(name, []).append(callback)

    def find_spec(self, fullname, path, target=None):
        with self._lock:
            callbacks = self._callbacks.pop(fullname, None)
        if not callbacks:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            # Not a plain source module: fall back to running callbacks lazily is impossible,
            # so fail loudly rather than silently skip a registration.
            raise ImportError(f"verl_backend cannot hook the import of {fullname!r}")
        real_exec = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            real_exec(module)
            for callback in callbacks:
                callback(module)

        spec.loader.exec_module = exec_module
        return spec


_finder = _AfterImportFinder()
sys.meta_path.insert(0, _finder)


def when_imported(name: str, callback: Callback) -> None:
    """Call ``callback(module)`` once ``name`` is imported (now, if it already is)."""
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
    else:
        _finder.add(name, callback)
