"""A minimal Django project in one module, served through ``django.core.asgi``.

`configure` sets up settings (in-memory SQLite shared between threads, the admin, sessions,
CSRF) and returns the ASGI application; it is also this project's ROOT_URLCONF.
Django runs the sync views in a thread through asgiref's ``sync_to_async``; the shared-cache
in-memory database is what lets that thread see the tables ``migrate`` made in the test's
thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import django
from django.conf import settings

urlpatterns: list[Any] = []


def configure() -> Any:
    """Configure Django once per process, migrate, and return the ASGI application."""
    if settings.configured and settings.ROOT_URLCONF != __name__:
        raise RuntimeError("Django is already configured for another project in this process; "
                           f"{__name__} needs its own (ROOT_URLCONF={settings.ROOT_URLCONF!r})")
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="tests-integration-only-not-secret",
            ALLOWED_HOSTS=["127.0.0.1", "localhost"],
            ROOT_URLCONF=__name__,
            INSTALLED_APPS=[
                "django.contrib.admin",
                "django.contrib.auth",
                "django.contrib.contenttypes",
                "django.contrib.sessions",
                "django.contrib.messages",
            ],
            MIDDLEWARE=[
                "django.contrib.sessions.middleware.SessionMiddleware",
                "django.middleware.common.CommonMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "django.contrib.messages.middleware.MessageMiddleware",
            ],
            TEMPLATES=[{
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {"context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                ]},
            }],
            DATABASES={"default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": "file:cymongoose_asgi_django?mode=memory&cache=shared",
            }},
            USE_TZ=True,
            STATIC_URL="/static/",
            DEFAULT_AUTO_FIELD="django.db.models.AutoField",
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],  # fast
        )
        django.setup()
        _install_urls()
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
    from django.core.asgi import get_asgi_application

    return get_asgi_application()


def _install_urls() -> None:
    from django.contrib import admin
    from django.contrib.auth.models import User
    from django.http import JsonResponse
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt

    def users(request):  # sync: Django runs it in a thread
        names = list(User.objects.order_by("username").values_list("username", flat=True))
        return JsonResponse({"users": names, "method": request.method,
                             "path": request.path, "q": request.GET.get("q", "")})

    async def hello(request):  # async: runs on the server's event loop
        await asyncio.sleep(0)
        return JsonResponse({"hello": request.GET.get("name", "world"),
                             "scheme": request.scheme,
                             "remote_addr": request.META.get("REMOTE_ADDR")})

    @csrf_exempt
    def echo(request):
        data = json.loads(request.body)
        return JsonResponse({"received": data, "content_type": request.content_type,
                             "length": len(request.body)})

    @csrf_exempt
    def upload(request):
        f = request.FILES["file"]
        digest = hashlib.sha256()
        for chunk in f.chunks():
            digest.update(chunk)
        return JsonResponse({"name": f.name, "size": f.size, "sha256": digest.hexdigest(),
                             "note": request.POST.get("note", "")})

    urlpatterns[:] = [
        path("admin/", admin.site.urls),
        path("api/users/", users),
        path("api/hello/", hello),
        path("api/echo/", echo),
        path("api/upload/", upload),
    ]
