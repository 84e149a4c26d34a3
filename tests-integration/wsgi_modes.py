"""The two ways cymongoose-wsgi runs an app, as a fixture for the WSGI integration tests.

A module that imports ``wsgi_threads`` runs every test once per mode; its servers take the
mode from the fixture ``threads``: 4 ("pooled", a pool of 4 app threads) or 0 ("inline",
the app on the poll thread). A test that needs a pool of N threads passes
``workers=threads and N``: N in pooled mode, 0 in inline mode.

    from wsgi_modes import wsgi_threads  # noqa: F401  (autouse, parametrized: `threads`)
"""

from __future__ import annotations

import pytest

#: The mode's name (the test id) and its pool size.
WSGI_MODES = {"pooled": 4, "inline": 0}


# Registered as "threads"; the function has another name so that a test's `threads`
# argument does not shadow the import (ruff F811).
@pytest.fixture(scope="module", params=list(WSGI_MODES.values()), ids=list(WSGI_MODES),
                autouse=True, name="threads")
def wsgi_threads(request: pytest.FixtureRequest) -> int:
    """The pool size a test passes to the server: 4 (pooled) or 0 (inline, threads=0)."""
    return request.param
