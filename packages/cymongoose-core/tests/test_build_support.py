"""The build refuses mongoose sources whose sha256 does not match the pins."""

import shutil
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(CORE))
fetch = pytest.importorskip("build_support.fetch_mongoose")


def test_tampered_source_is_refused_with_file_and_expected_hash(tmp_path, monkeypatch):
    good = fetch.locate(CORE)
    for name in ("mongoose.c", "mongoose.h"):
        shutil.copy(good / name, tmp_path / name)
    with open(tmp_path / "mongoose.c", "ab") as f:
        f.write(b"/* tampered */\n")
    monkeypatch.setenv("CYMONGOOSE_MONGOOSE_DIR", str(tmp_path))
    with pytest.raises(fetch.MongooseSourceError) as err:
        fetch.locate(CORE)
    assert "mongoose.c" in str(err.value)
    assert fetch.SHA256["mongoose.c"] in str(err.value)


def test_override_directory_with_pristine_files_is_used(tmp_path, monkeypatch):
    good = fetch.locate(CORE)
    for name in ("mongoose.c", "mongoose.h"):
        shutil.copy(good / name, tmp_path / name)
    monkeypatch.setenv("CYMONGOOSE_MONGOOSE_DIR", str(tmp_path))
    assert fetch.locate(CORE) == tmp_path


def test_index_lookup_imports_no_pip_internals_nor_distutils(tmp_path):
    """With no index configured the fetch uses pip's default index, read without
    importing pip (whose internals import the stdlib distutils and break a setuptools
    imported after them in the same build)."""
    import os
    import subprocess

    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    env.pop("PIP_INDEX_URL", None)
    probe = ("import sys; sys.path.insert(0, sys.argv[1]);"
             "from build_support import fetch_mongoose as f;"
             "print(f._index_url());"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pip', 'distutils')))")
    out = subprocess.run([sys.executable, "-c", probe, str(CORE)], env=env,
                         capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "https://pypi.org/simple"
    assert out[1] == "[]"


def test_cache_directory_follows_cymongoose_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CYMONGOOSE_CACHE_DIR", str(tmp_path))
    assert fetch.cache_dir() == tmp_path / fetch.MONGOOSE_VERSION


tls_choice = pytest.importorskip("build_support.tls_choice")


def _found():
    return tls_choice.TlsChoice("openssl", "MG_TLS_CUSTOM", [], [], ["ssl", "crypto"]), ""


def _missing():
    return None, "fatal error: openssl/ssl.h: No such file or directory"


def test_tls_openssl_when_found_builtin_with_a_warning_otherwise():
    assert tls_choice.choose_tls("", probe=_found).mg_tls == "MG_TLS_CUSTOM"
    fallback = tls_choice.choose_tls("", probe=_missing)
    assert fallback.mg_tls == "MG_TLS_BUILTIN"
    assert "openssl/ssl.h" in fallback.warning and "libssl-dev" in fallback.warning


def test_tls_forced_by_environment(monkeypatch):
    monkeypatch.setenv("CYMONGOOSE_TLS", "builtin")
    assert tls_choice.choose_tls(probe=_found).library == "builtin"
    monkeypatch.setenv("CYMONGOOSE_TLS", "openssl")
    with pytest.raises(tls_choice.TlsBuildError, match="CYMONGOOSE_TLS=openssl .*libssl-dev"):
        tls_choice.choose_tls(probe=_missing)
    monkeypatch.setenv("CYMONGOOSE_TLS", "gnutls")
    with pytest.raises(tls_choice.TlsBuildError, match="'gnutls': expected one of"):
        tls_choice.choose_tls(probe=_found)


def test_tls_probe_finds_this_machines_openssl_or_says_why():
    found, why = tls_choice.probe_openssl()
    assert (found is not None and "ssl" in found.libraries) or why
