"""`cymongoose.importer.import_app`: the ``module:attribute`` loader both CLIs use."""

import json

import pytest
from cymongoose.importer import import_app


def test_dotted_attribute_is_loaded():
    assert import_app("json:JSONDecoder.decode") is json.JSONDecoder.decode


def test_factory_is_called():
    assert import_app("builtins:dict", factory=True) == {}


@pytest.mark.parametrize("spec", ["json", ":loads", "json:"])
def test_malformed_spec_is_a_value_error_naming_it(spec):
    with pytest.raises(ValueError, match="module:attribute"):
        import_app(spec)


def test_missing_attribute_is_a_value_error():
    with pytest.raises(ValueError, match="no_such"):
        import_app("json:no_such")
