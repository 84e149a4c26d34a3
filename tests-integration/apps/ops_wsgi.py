"""Bare WSGI app for the gunicorn, Unix socket and max-requests tests (test_operations.py).

``/``: JSON with the process id and the environ's address keys; ``/stuck`` blocks (with
``--threads 0`` that is the event loop), as a buggy app does.
"""

import json
import os
import time


def app(environ, start_response):
    if environ["PATH_INFO"] == "/stuck":
        time.sleep(120)
    keys = ("REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT")
    body = json.dumps({"pid": os.getpid(), **{k: environ.get(k, "absent") for k in keys}})
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body.encode()]
