"""`cymongoose.serving.reload.ReloadConfig`: which changed files make ``--reload`` restart
the server (the reloader itself runs in tests-integration, with watchfiles)."""

import os

import pytest
from cymongoose.serving.reload import ReloadConfig


@pytest.fixture
def root(tmp_path):
    (tmp_path / "pkg").mkdir()
    return tmp_path


def watches(config, root, *names):
    return [config.watches(os.path.join(root, name)) for name in names]


def test_defaults_watch_python_files_only(root):
    config = ReloadConfig.from_flags([str(root)])
    assert watches(config, root, "app.py", "pkg/views.py", "README.md", "app.pyc",
                   "pkg/__pycache__/views.cpython-311.pyc") == [True, True, False, False, False]


def test_hidden_files_and_directories_and_editor_files_are_excluded(root):
    config = ReloadConfig.from_flags([str(root)])
    assert watches(config, root, ".venv/lib/site.py", ".git/hooks/x.py", ".app.py",
                   "pkg/.#views.py", "~app.py", "app.py~", "app.swp") == [False] * 7


def test_include_and_exclude_patterns_add_to_the_defaults(root):
    config = ReloadConfig.from_flags([str(root)], ["*.html", "templates/*.txt"],
                                     ["skip_*.py", "build"])
    assert watches(config, root, "app.py", "pkg/page.html", "templates/a.txt",
                   "other/a.txt") == [True, True, True, False]
    assert watches(config, root, "skip_me.py", "build/gen.py", "pkg/build/x.html",
                   "builder.py") == [False, False, False, True]


def test_a_file_named_by_an_include_is_watched_despite_the_hidden_rule(root):
    config = ReloadConfig.from_flags([str(root)], [".env"])
    assert watches(config, root, ".env", "pkg/.env", ".other", ".venv/.env") == \
        [True, True, False, False]


def test_a_default_exclude_given_as_an_include_is_no_longer_excluded(root):
    config = ReloadConfig.from_flags([str(root)], ["*.py[cod]"])
    assert "*.py[cod]" not in config.excludes and config.watches(str(root / "app.pyc"))


def test_directories_are_made_absolute_and_checked(root, monkeypatch):
    monkeypatch.chdir(root)
    assert ReloadConfig.from_flags(["pkg", "."]).dirs == (str(root / "pkg"), str(root))
    assert ReloadConfig.from_flags().dirs == (str(root),)
    with pytest.raises(ValueError, match="--reload-dir 'nope' is not a directory"):
        ReloadConfig.from_flags(["nope"])
    with pytest.raises(ValueError, match="--reload-include must not be empty"):
        ReloadConfig.from_flags(None, [" "])
    with pytest.raises(TypeError, match="--reload-exclude takes a str"):
        ReloadConfig.from_flags(None, None, [3])


def test_the_deepest_watched_directory_decides_what_is_hidden(root):
    (root / ".hidden" / "src").mkdir(parents=True)
    # Watching a directory inside a hidden one: its files are not hidden.
    config = ReloadConfig.from_flags([str(root / ".hidden" / "src")])
    assert config.watches(str(root / ".hidden" / "src" / "app.py"))
