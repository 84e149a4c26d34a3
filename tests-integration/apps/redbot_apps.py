"""The apps of the redbot comparison (test_redbot_lint.py): a Flask app (a JSON route, a
stream without a length, its 404) and a FastAPI app (a JSON route, a Starlette static
file, its 404), each served by ours and by gunicorn or uvicorn."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from flask import Flask, Response, jsonify
from starlette.staticfiles import StaticFiles

STATIC = Path(os.environ.get("REDBOT_STATIC_DIR", Path(__file__).parent / "static"))

flask_app = Flask(__name__)


@flask_app.route("/json")
def flask_json():
    return jsonify(hello="world", items=[1, 2, 3])


@flask_app.route("/stream")
def flask_stream():
    return Response((f"line {i}\n" for i in range(20)), mimetype="text/plain")


fastapi_app = FastAPI()


@fastapi_app.get("/json")
def fastapi_json():
    return {"hello": "world", "items": [1, 2, 3]}


fastapi_app.mount("/static", StaticFiles(directory=STATIC), name="static")
