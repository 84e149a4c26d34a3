"""The core's mongoose patches apply to the pinned sources, and a build stops when they don't."""

import shutil
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(CORE))
fetch = pytest.importorskip("build_support.fetch_mongoose")
patching = pytest.importorskip("build_support.patch_mongoose")
PATCHES = CORE / "patches"


def test_every_patch_states_its_reason_before_the_diff():
    patches = patching.patch_files(PATCHES)
    assert [p.name for p in patches] == [
        "0001-quiet-connections.patch", "0002-poll-wait-hook.patch",
        "0003-tls-ecdsa-der-signature.patch", "0004-large-bodies.patch",
        "0005-half-close.patch"]
    for p in patches:
        reason, _, diff = p.read_text().partition("\n--- a/")
        assert "Why" in reason and diff, p.name


def test_patches_apply_to_the_verified_pristine_sources(tmp_path):
    pristine = fetch.locate(CORE)
    out = patching.apply_patches(pristine, PATCHES, tmp_path / "patched")
    header = (out / "mongoose.h").read_text()
    assert "void mg_attend(struct mg_connection *c);" in header
    assert "unsigned is_quiet : 1;" in header
    assert "void *(*wait_begin)(struct mg_mgr *);" in header
    source = (out / "mongoose.c").read_text()
    assert "mg_attend" in source and "mgr->wait_end(mgr, token);" in source
    assert "cymongoose patch 0003" in source and "neg1" not in source
    assert "iogrow(io->size)" in source and "while (len--) *buf++ = 0;\n#endif" in source
    assert "cymongoose patch 0005" in source and "if (!(c)->is_full) ev.events" in header
    fetch.verify(pristine)  # the pristine files themselves are left untouched


def test_a_source_the_patch_no_longer_fits_stops_the_build(tmp_path):
    pristine = fetch.locate(CORE)
    changed = tmp_path / "changed"
    changed.mkdir()
    for name in ("mongoose.c", "mongoose.h"):
        shutil.copy(pristine / name, changed / name)
    source = (changed / "mongoose.c").read_text()
    marker = "    if (c->recv.len >= sizeof(*id)) {\n"  # a line the patch changes
    assert source.count(marker) == 1
    (changed / "mongoose.c").write_text(source.replace(marker, marker.replace("(*id)", "(id)")))
    dest = tmp_path / "dest"
    with pytest.raises(patching.MongoosePatchError) as err:
        patching.apply_patches(changed, PATCHES, dest)
    assert "0001-quiet-connections.patch does not apply" in str(err.value)
    assert "mongoose.c" in str(err.value)
    assert not (dest / "mongoose.c").exists()  # nothing half-patched is left to compile


def test_a_patch_for_an_unknown_file_is_refused(tmp_path):
    patches = tmp_path / "patches"
    patches.mkdir()
    (patches / "0001-x.patch").write_text("Why: test\n--- a/other.c\n+++ b/other.c\n"
                                         "@@ -1 +1 @@\n-a\n+b\n")
    with pytest.raises(patching.MongoosePatchError, match="unknown file 'other.c'"):
        patching.apply_patches(fetch.locate(CORE), patches, tmp_path / "dest")


def test_sdist_carries_the_patches():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((CORE / "pyproject.toml").read_text())
    assert "patches" in config["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]
