"""URLs and views of the Django project in tests-integration/test_wsgi_django.py.

The settings are made by the test (``settings.configure``) with ``ROOT_URLCONF`` naming this
module; nothing here touches settings at import time.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpResponse, JsonResponse
from django.template import engines
from django.urls import path

FORM_TEMPLATE = """<!doctype html>
<form method="post" action="/form/">{% csrf_token %}
<input name="name"><button>send</button></form>"""


def hello(request):
    return JsonResponse(
        {
            "hello": request.GET.get("name", "world"),
            "method": request.method,
            "path": request.path,
            "script_name": request.META.get("SCRIPT_NAME", ""),
            "secure": request.is_secure(),
        }
    )


def form(request):
    if request.method == "POST":
        return HttpResponse(f"thanks, {request.POST['name']}", content_type="text/plain")
    template = engines["django"].from_string(FORM_TEMPLATE)
    return HttpResponse(template.render({}, request))


def upload(request):
    data = request.body
    return JsonResponse({"size": len(data), "content_type": request.content_type})


urlpatterns = [
    path("hello/", hello),
    path("form/", form),
    path("upload/", upload),
    path("admin/", admin.site.urls),
]
