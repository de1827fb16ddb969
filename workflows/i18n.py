"""Translatable messages without Flask: a `Message` is the formatted Chinese text (a plain str
to everything else) that also keeps its msgid template and parameters, so the web layer can
look the template up in its catalogue and format the translation with the same parameters."""
from __future__ import annotations

from typing import Any


class Message(str):
    """Formatted Chinese text; `.template` is the msgid with {name} placeholders."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, params: dict[str, Any] | None = None) -> Message:
        params = dict(params or {})
        self = super().__new__(cls, template.format(**params) if params else template)
        self.template, self.params = template, params
        return self


def msg(template: str, **params: Any) -> Message:
    """msg("文件不得超过{size}MB", size=10) == "文件不得超过10MB", translatable by template."""
    return Message(template, params)
