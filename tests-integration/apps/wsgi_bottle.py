"""A Bottle app for tests-integration/test_wsgi_frameworks.py."""

from __future__ import annotations

import hashlib

import bottle


def make_app() -> bottle.Bottle:
    app = bottle.Bottle()

    @app.get("/hello/<name>")
    def hello(name):
        return {"hello": name, "q": bottle.request.query.get("q", "")}

    @app.post("/echo")
    def echo():
        return {"got": bottle.request.json}

    @app.post("/form")
    def form():
        return {"name": bottle.request.forms.get("name")}

    @app.post("/upload")
    def upload():
        stream = bottle.request.body  # Bottle spools a large body to a temporary file
        body = stream.read()
        stream.close()
        return {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}

    @app.get("/stream")
    def stream():
        bottle.response.content_type = "text/plain"
        for i in range(5):
            yield f"part {i}\n"

    @app.error(404)
    def not_found(error):
        bottle.response.content_type = "text/plain"
        return "no such page"

    return app
