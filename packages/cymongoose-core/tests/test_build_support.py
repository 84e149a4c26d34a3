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
