"""Raw WSGI callable (no framework): the same HTTP routes as raw_asgi.py.

GET / -> 13-byte plain text; GET /big -> 1 MiB; POST /echo -> the request body.
"""

HELLO = b"Hello, World!"
BIG = b"x" * (1024 * 1024)


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        ctype = "application/octet-stream"
    elif path == "/big":
        body, ctype = BIG, "application/octet-stream"
    else:
        body, ctype = HELLO, "text/plain"
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]
