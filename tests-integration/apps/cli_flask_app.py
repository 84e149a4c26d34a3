"""Flask app for the CLI, --workers and gunicorn tests (test_cli_workers.py)."""

import os

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/info")
def info():
    return jsonify(
        server="flask",
        pid=os.getpid(),
        client=request.remote_addr,
        scheme=request.scheme,
        root_path=request.environ.get("SCRIPT_NAME", ""),
    )


@app.post("/echo")
def echo():
    return jsonify(size=len(request.get_data()))
