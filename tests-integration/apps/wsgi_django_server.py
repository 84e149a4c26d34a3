"""Serve the Django project of ``apps.wsgi_django`` with cymongoose-wsgi, in its own process.

Django's settings can be configured once per process, and the ASGI tests configure their own
project, so tests-integration/test_wsgi_django.py runs this as a child process::

    python -m apps.wsgi_django_server '<settings as JSON>' [--validate] [--threads N]

It configures Django with the given settings, creates the tables and an ``admin`` user
(password ``s3cret-pass``), prints ``PORT <n>`` and serves until SIGTERM. ``--validate``
wraps the application in ``wsgiref.validate.validator`` and turns every warning into an
error, so that any PEP 3333 violation fails the request. ``--threads N`` sizes the app's
thread pool (default 4; 0: the app on the poll thread).
"""

from __future__ import annotations

import json
import sys
import warnings
from wsgiref.validate import validator


def main(argv: list[str]) -> int:
    import django
    from django.conf import settings

    settings.configure(**json.loads(argv[0]))
    django.setup()

    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", verbosity=0, interactive=False)
    User.objects.create_superuser("admin", "admin@example.com", "s3cret-pass")
    app = get_wsgi_application()
    if "--validate" in argv:
        warnings.simplefilter("error")
        app = validator(app)

    from cymongoose.wsgi import WSGIServer

    threads = int(argv[argv.index("--threads") + 1]) if "--threads" in argv else 4
    server = WSGIServer(app, threads=threads, access_log=False, graceful_timeout_s=5)
    port = server.listen("http://127.0.0.1:0").local_addr[1]
    print(f"PORT {port}", flush=True)
    server.run(poll_ms=50)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
