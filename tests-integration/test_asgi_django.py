"""Django's ASGI application on cymongoose-asgi: JSON views (sync in asgiref's thread and
async), a JSON request body, and the admin login page and login flow (CSRF, sessions)."""

from __future__ import annotations

import hashlib
import os
import re

import httpx
import pytest

pytest.importorskip("django")
from apps import asgi_django_site  # noqa: E402
from cymongoose.asgi.testing import ServerThread  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server():
    application = asgi_django_site.configure()
    from django.contrib.auth.models import User

    if not User.objects.filter(username="admin").exists():
        User.objects.create_superuser("admin", "admin@example.com", "s3cret-pass")
    # Django does not speak lifespan: the server must notice and serve anyway.
    with ServerThread(application) as srv:
        yield srv


def test_sync_view_reads_the_database(server):
    r = httpx.get(server.url + "/api/users/", params={"q": "ünï"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"users": ["admin"], "method": "GET", "path": "/api/users/", "q": "ünï"}


def test_async_view(server):
    r = httpx.get(server.url + "/api/hello/", params={"name": "django"})
    assert r.json() == {"hello": "django", "scheme": "http", "remote_addr": "127.0.0.1"}


def test_json_request_body(server):
    payload = {"items": list(range(1000)), "text": "héllo"}
    r = httpx.post(server.url + "/api/echo/", json=payload)
    assert r.status_code == 200
    assert r.json()["received"] == payload
    assert r.json()["content_type"] == "application/json"


def test_multipart_file_upload(server):
    data = os.urandom(8 * 1024 * 1024)
    r = httpx.post(server.url + "/api/upload/", data={"note": "größe"},
                   files={"file": ("blob.bin", data, "application/octet-stream")}, timeout=60)
    assert r.status_code == 200
    assert r.json() == {"name": "blob.bin", "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(), "note": "größe"}


def test_404_from_django(server):
    r = httpx.get(server.url + "/no/such/page/")
    assert r.status_code == 404


def test_admin_redirects_to_login(server):
    r = httpx.get(server.url + "/admin/")
    assert r.status_code == 302
    assert r.headers["location"] == "/admin/login/?next=/admin/"


def test_admin_login_page(server):
    r = httpx.get(server.url + "/admin/login/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert 'name="csrfmiddlewaretoken"' in r.text
    assert "csrftoken" in r.cookies


def test_admin_login_flow(server):
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/admin/login/?next=/admin/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        r = client.post("/admin/login/?next=/admin/", data={
            "csrfmiddlewaretoken": token, "username": "admin", "password": "s3cret-pass",
            "next": "/admin/",
        })
        assert r.status_code == 302, r.text
        assert r.headers["location"] == "/admin/"
        assert "sessionid" in client.cookies
        home = client.get("/admin/")
        assert home.status_code == 200
        assert "Site administration" in home.text


def test_admin_login_rejected_without_csrf_token(server):
    r = httpx.post(server.url + "/admin/login/", data={"username": "admin", "password": "x"})
    assert r.status_code == 403
