"""``"module:attribute"`` loading, shared by the cymongoose-asgi and cymongoose-wsgi CLIs."""

from __future__ import annotations

import importlib
from typing import Any


def import_app(spec: str, *, factory: bool = False) -> Any:
    """Load ``"package.module:attribute"`` (the attribute may be dotted), as uvicorn does.

    ``factory=True`` calls the loaded object and returns its result. Raises ValueError
    naming ``spec`` when it is not of the form ``module:attribute`` or the attribute is
    missing; ImportError from the module itself propagates.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"app must be given as 'module:attribute', got {spec!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"attribute {attr!r} not found in module {module_name!r}") from None
    return obj() if factory else obj
