"""The four distributions share one `cymongoose` import namespace."""

import importlib

import cymongoose
import pytest


@pytest.mark.parametrize("sub", ["aio", "wsgi", "asgi"])
def test_subpackages_import_beside_the_core(sub):
    module = importlib.import_module(f"cymongoose.{sub}")
    assert module.__name__ == f"cymongoose.{sub}"


def test_async_manager_is_reachable_from_the_top_level():
    from cymongoose.aio import AsyncManager

    assert cymongoose.AsyncManager is AsyncManager


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        cymongoose.no_such_thing  # noqa: B018
