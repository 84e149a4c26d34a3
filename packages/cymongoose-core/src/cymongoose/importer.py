"""``"module:attribute"`` loading, shared by the cymongoose-asgi and cymongoose-wsgi CLIs."""

from __future__ import annotations

import importlib
from typing import Any


def import_app(spec: str, *, factory: bool = False) -> Any:
    """Load ``"package.module:attribute"`` (the attribute may be dotted), as uvicorn does.

    ``factory=True`` calls the loaded object and returns its result. Raises ValueError
    naming ``spec`` when it is not of the form ``module:attribute`` or the attribute is
    missing; ImportError (ModuleNotFoundError when a module is missing) naming ``spec``
    when importing the module fails, the original chained as ``__cause__``.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"app must be given as 'module:attribute', got {spec!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        kind = ModuleNotFoundError if isinstance(exc, ModuleNotFoundError) else ImportError
        raise kind(f"cannot import app {spec!r}: {exc}", name=exc.name,
                   path=exc.path) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"cannot load app {spec!r}: attribute {attr!r} not found in "
                             f"module {module_name!r}") from None
    return obj() if factory else obj
