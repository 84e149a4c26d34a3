"""A Flask application served by cymongoose-wsgi.

``GET /`` -> JSON greeting; ``GET /items/<id>?q=...`` -> the item id and query;
``POST /items`` with a JSON body -> 201 and the body back.

Run: ``python -m cymongoose.wsgi examples.wsgi.flask_app:app --port 8000 --threads 8``
"""

from __future__ import annotations

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/")
def index():
    return jsonify(message="Hello from Flask on cymongoose!")


@app.get("/items/<int:item_id>")
def get_item(item_id: int):
    return jsonify(item_id=item_id, q=request.args.get("q", ""))


@app.post("/items")
def create_item():
    return jsonify(request.get_json(force=True)), 201
