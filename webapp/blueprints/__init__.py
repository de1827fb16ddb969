"""One module per area; each exposes register(app)."""
from __future__ import annotations

import importlib
import pkgutil

from flask import Flask


def register_all(app: Flask) -> None:
    """Registers the blueprints; each lives in webapp/blueprints/ and stays thin."""
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        if hasattr(module, "register"):
            module.register(app)
