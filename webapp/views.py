"""Registers the blueprints; each lives in webapp/blueprints/ and stays thin."""
from __future__ import annotations

import importlib
import pkgutil

from flask import Flask

from . import blueprints


def register(app: Flask) -> None:
    for module_info in sorted(pkgutil.iter_modules(blueprints.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{blueprints.__name__}.{module_info.name}")
        if hasattr(module, "register"):
            module.register(app)
