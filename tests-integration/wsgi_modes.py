"""The two ways cymongoose-wsgi runs an app, as a fixture for the WSGI integration tests:
``pooled`` (a thread pool, as each test asks) and ``inline`` (``threads=0``: the app on the
poll thread). A module that imports ``wsgi_mode`` runs every test once per mode.

    from wsgi_modes import wsgi_mode  # noqa: F401  (autouse, parametrized)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cymongoose.wsgi import WSGIServer

WSGI_MODES = ("pooled", "inline")


@pytest.fixture(scope="module", params=WSGI_MODES, autouse=True)
def wsgi_mode(request: pytest.FixtureRequest) -> Iterator[str]:
    """The mode's name; in ``inline`` every WSGIServer of the module is made with threads=0
    (whatever pool size the test asks for)."""
    if request.param == "pooled":
        yield "pooled"
        return
    original = WSGIServer.__init__

    def inline_init(self, app, workers=None, *args, threads=None, **kwargs):
        original(self, app, None, *args, threads=0, **kwargs)  # the pool size asked is ignored

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(WSGIServer, "__init__", inline_init)
        yield "inline"
