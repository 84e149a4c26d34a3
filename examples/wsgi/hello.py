"""A plain PEP 3333 application: no framework, just ``environ`` and ``start_response``.

``GET /`` -> a greeting; ``GET /environ`` -> the CGI-style keys of the request's environ;
``POST /upper`` -> the request body in upper case.

Run: ``python -m cymongoose.wsgi examples.wsgi.hello:app --port 8000``
"""

from __future__ import annotations


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/environ":
        keys = sorted(k for k in environ if k.isupper())
        body = "".join(f"{k}={environ[k]}\n" for k in keys).encode()
    elif path == "/upper" and environ["REQUEST_METHOD"] == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length).upper()
    else:
        body = b"Hello from cymongoose-wsgi\n"
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
