"""FastAPI app for the CLI, --workers and gunicorn tests (test_cli_workers.py)."""

import os

from fastapi import FastAPI, Request


def create_app() -> FastAPI:
    """Factory for ``--factory cli_fastapi_app:create_app``."""
    api = FastAPI()

    @api.get("/info")
    async def info(request: Request) -> dict:
        return {
            "server": "fastapi",
            "pid": os.getpid(),
            "client": request.client.host if request.client else None,
            "scheme": request.url.scheme,
            "root_path": request.scope.get("root_path", ""),
        }

    @api.post("/echo")
    async def echo(request: Request) -> dict:
        return {"size": len(await request.body())}

    return api


app = create_app()
