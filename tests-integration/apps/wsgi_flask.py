"""A Flask app for tests-integration/test_wsgi_flask.py: JSON, forms, uploads hashed while
they stream in, a streamed response and a ``send_file`` download."""

from __future__ import annotations

import hashlib

from flask import Flask, Response, jsonify, request, send_file, stream_with_context


def make_app(download_path: str | None = None) -> Flask:
    """The app; ``download_path`` is the file served by ``GET /download``."""
    app = Flask(__name__)

    @app.route("/")
    def index():
        return "Hello from Flask on cymongoose!"

    @app.route("/api/echo", methods=["POST"])
    def echo():
        return jsonify(request.json)

    @app.route("/api/greet/<name>")
    def greet(name):
        return jsonify({"greeting": f"Hello, {name}!"})

    @app.route("/form", methods=["POST"])
    def form():
        files = {
            name: {"filename": f.filename, "size": len(f.read())}
            for name, f in request.files.items()
        }
        return jsonify(form=request.form.to_dict(flat=False), files=files)

    @app.route("/api/upload", methods=["POST"])
    def upload():
        # Read the body in blocks as it arrives: the server never holds all of it.
        digest = hashlib.sha256()
        size = 0
        while True:
            block = request.stream.read(1 << 16)
            if not block:
                break
            digest.update(block)
            size += len(block)
        return jsonify(size=size, sha256=digest.hexdigest())

    @app.route("/api/upload-echo", methods=["POST"])
    def upload_echo():
        return request.get_data(), 200, {"Content-Type": "application/octet-stream"}

    @app.route("/stream/<int:count>")
    def stream(count):
        def lines():
            for i in range(count):
                yield f"line {i} of {request.args.get('tag', '-')}\n"

        return Response(stream_with_context(lines()), mimetype="text/plain")

    @app.route("/download")
    def download():
        return send_file(download_path, as_attachment=True, download_name="data.bin")

    return app
