"""A Falcon app for tests-integration/test_wsgi_frameworks.py."""

from __future__ import annotations

import hashlib

import falcon


class Items:
    def __init__(self) -> None:
        self.items: dict[int, dict] = {}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"items": [self.items[k] for k in sorted(self.items)]}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        item = req.get_media()
        item_id = len(self.items) + 1
        self.items[item_id] = {"id": item_id, **item}
        resp.status = falcon.HTTP_201
        resp.location = f"/items/{item_id}"
        resp.media = self.items[item_id]


class Item:
    def __init__(self, items: Items) -> None:
        self.items = items

    def on_get(self, req: falcon.Request, resp: falcon.Response, item_id: int) -> None:
        if item_id not in self.items.items:
            raise falcon.HTTPNotFound(title="no such item")
        resp.media = self.items.items[item_id]


class Upload:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        digest = hashlib.sha256()
        size = 0
        # A chunked body has no Content-Length, so bounded_stream would read nothing;
        # cymongoose's wsgi.input ends where the body ends, so the raw stream is safe.
        stream = req.bounded_stream if req.content_length is not None else req.stream
        while True:
            block = stream.read(1 << 16)
            if not block:
                break
            digest.update(block)
            size += len(block)
        resp.media = {"size": size, "sha256": digest.hexdigest()}


def make_app() -> falcon.App:
    app = falcon.App()
    items = Items()
    app.add_route("/items", items)
    app.add_route("/items/{item_id:int}", Item(items))
    app.add_route("/upload", Upload())
    return app
