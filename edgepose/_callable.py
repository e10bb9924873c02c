"""Subpackages that double as API functions: ``ep.export(...)`` while ``edgepose.export`` is a package.

Python binds an imported submodule as an attribute of its parent package, so a top-level
function named like a subpackage (``export``, ``bench``, ``report``, ``doctor``) would be replaced
by the module the moment anything imports it. Instead the module itself is made callable: calling
it calls the function of the same name in :mod:`edgepose.api`, and the module's own names
(``edgepose.export.ExportRequest``…) stay where they are.
"""

from __future__ import annotations

import importlib
import sys
import types


class _CallableModule(types.ModuleType):
    """A module whose call is forwarded to ``edgepose.api.<last name component>``."""

    def __call__(self, *args, **kwargs):
        api = importlib.import_module("edgepose.api")
        return getattr(api, self.__name__.rsplit(".", 1)[1])(*args, **kwargs)


def make_callable(module_name: str) -> None:
    """Turn the (already imported) module ``module_name`` into a callable module."""
    sys.modules[module_name].__class__ = _CallableModule
