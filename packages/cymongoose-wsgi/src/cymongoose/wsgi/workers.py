"""gunicorn worker class: ``gunicorn -k cymongoose.wsgi.workers.WSGIWorker module:app``.

gunicorn manages the processes, binds the sockets and handles reloads and signals; each
worker process runs one cymongoose WSGI server (its app threads: ``--threads``) on
gunicorn's pre-bound socket. Which gunicorn settings apply is listed in
:mod:`cymongoose.serving.gunicorn`. Needs the ``gunicorn`` extra:
``pip install 'cymongoose-wsgi[gunicorn]'``.
"""

from __future__ import annotations

from cymongoose.serving.gunicorn import run_worker
from gunicorn.workers.base import Worker

from .main import ADAPTER


class WSGIWorker(Worker):  # type: ignore[misc]
    """Serve the WSGI app gunicorn loaded (``self.wsgi``) until gunicorn stops us.

    SIGTERM: graceful shutdown within ``--graceful-timeout``; SIGQUIT: immediate exit.
    """

    def run(self) -> None:
        run_worker(self, ADAPTER)
