"""Flask workload: GET /api/greet/<name> returns JSON."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/api/greet/<name>")
def greet(name):
    return jsonify(message=f"Hello, {name}!")
