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


def test_missing_module_is_a_module_not_found_error_naming_the_app():
    with pytest.raises(ModuleNotFoundError) as info:
        import_app("no_such_module_xyz:app")
    assert info.value.name == "no_such_module_xyz"
    assert str(info.value) == ("cannot import app 'no_such_module_xyz:app': "
                               "No module named 'no_such_module_xyz'")
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_import_error_inside_the_module_names_the_app(tmp_path, monkeypatch):
    (tmp_path / "importer_probe_app.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match="cannot import app 'importer_probe_app:app': "
                                          "No module named 'no_such_dependency_xyz'"):
        import_app("importer_probe_app:app")
