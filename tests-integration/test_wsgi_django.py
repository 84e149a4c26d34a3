"""Django's WSGI application on cymongoose-wsgi: a view, a form POST with CSRF, the admin
login page and login flow; plain and wrapped in ``wsgiref.validate`` (warnings as errors).

The server runs in a child process (``apps/wsgi_django_server.py``) because Django's settings
are per process and the ASGI tests configure a project of their own; the settings are made
here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from wsgi_modes import wsgi_threads  # noqa: F401  (each test: pooled and inline)

pytest.importorskip("django")

pytestmark = pytest.mark.timeout(120)

HERE = Path(__file__).resolve().parent

SETTINGS = {
    "DEBUG": False,
    "SECRET_KEY": "tests-integration-only-not-secret",
    "ALLOWED_HOSTS": ["127.0.0.1", "localhost"],
    "ROOT_URLCONF": "apps.wsgi_django",
    "INSTALLED_APPS": [
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
    ],
    "MIDDLEWARE": [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ],
    "TEMPLATES": [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                ]
            },
        }
    ],
    # In memory, shared by the worker threads (each has its own connection).
    "DATABASES": {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": "file:cymongoose_wsgi_django?mode=memory&cache=shared",
        }
    },
    "USE_TZ": True,
    "STATIC_URL": "/static/",
    "DEFAULT_AUTO_FIELD": "django.db.models.AutoField",
    "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],  # fast
}


@pytest.fixture(scope="module", params=["plain", "validated"])
def base_url(request, threads):
    args = [sys.executable, "-m", "apps.wsgi_django_server", json.dumps(SETTINGS)]
    if request.param == "validated":
        args.append("--validate")
    args += ["--threads", str(threads)]
    proc = subprocess.Popen(args, cwd=HERE, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("PORT "), f"server did not start: {line!r}"
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        try:
            assert proc.wait(30) == 0, "server did not stop cleanly"
        finally:
            if proc.poll() is None:
                proc.kill()


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def test_view(base_url):
    r = httpx.get(base_url + "/hello/", params={"name": "Zoë"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "hello": "Zoë",
        "method": "GET",
        "path": "/hello/",
        "script_name": "",
        "secure": False,
    }


def test_common_middleware_redirects_to_slash(base_url):
    r = httpx.get(base_url + "/hello")
    assert r.status_code == 301
    assert r.headers["location"] == "/hello/"


def test_404(base_url):
    assert httpx.get(base_url + "/no/such/page/").status_code == 404


def test_form_post_with_csrf(base_url):
    with httpx.Client(base_url=base_url) as client:
        page = client.get("/form/")
        assert page.status_code == 200
        token = csrf_token(page.text)
        assert "csrftoken" in client.cookies
        r = client.post("/form/", data={"csrfmiddlewaretoken": token, "name": "Ada"})
        assert r.status_code == 200, r.text
        assert r.text == "thanks, Ada"


def test_form_post_without_csrf_token_is_refused(base_url):
    with httpx.Client(base_url=base_url) as client:
        client.get("/form/")
        r = client.post("/form/", data={"name": "Mallory"})
        assert r.status_code == 403


def test_upload_streamed_to_django(base_url):
    data = b"0123456789abcdef" * 65536  # 1 MiB: arrives in pieces, read through LimitedStream
    with httpx.Client(base_url=base_url) as client:
        page = client.get("/form/")
        r = client.post(
            "/upload/",
            content=data,
            headers={"Content-Type": "application/octet-stream",
                     "X-CSRFToken": csrf_token(page.text)},
        )
    assert r.status_code == 200, r.text
    assert r.json() == {"size": len(data), "content_type": "application/octet-stream"}


def test_admin_redirects_to_login(base_url):
    r = httpx.get(base_url + "/admin/")
    assert r.status_code == 302
    assert r.headers["location"] == "/admin/login/?next=/admin/"


def test_admin_login_page(base_url):
    r = httpx.get(base_url + "/admin/login/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "Django administration" in r.text
    assert 'name="csrfmiddlewaretoken"' in r.text
    assert "csrftoken" in r.cookies


def test_admin_login_flow(base_url):
    with httpx.Client(base_url=base_url) as client:
        page = client.get("/admin/login/?next=/admin/")
        r = client.post(
            "/admin/login/?next=/admin/",
            data={
                "csrfmiddlewaretoken": csrf_token(page.text),
                "username": "admin",
                "password": "s3cret-pass",
                "next": "/admin/",
            },
        )
        assert r.status_code == 302, r.text
        assert r.headers["location"] == "/admin/"
        assert "sessionid" in client.cookies
        home = client.get("/admin/")
        assert home.status_code == 200
        assert "Site administration" in home.text


def test_admin_login_with_wrong_password(base_url):
    with httpx.Client(base_url=base_url) as client:
        page = client.get("/admin/login/")
        r = client.post(
            "/admin/login/",
            data={
                "csrfmiddlewaretoken": csrf_token(page.text),
                "username": "admin",
                "password": "wrong",
            },
        )
        assert r.status_code == 200
        assert "Please enter the correct username and password" in r.text
