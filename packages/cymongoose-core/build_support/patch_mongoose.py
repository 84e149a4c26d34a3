"""Apply the core's own patches (``patches/*.patch``) to a copy of the verified mongoose sources.

The pristine files stay as fetched and hash-checked (fetch_mongoose.py); the build
compiles a patched copy. Each patch file starts with its reason, then a unified diff
of ``mongoose.c``/``mongoose.h`` (paths ``a/...`` and ``b/...``, applied with
``patch -p1`` and no fuzz). A patch that no longer applies stops the build.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FILES = ("mongoose.c", "mongoose.h", "LICENSE")


class MongoosePatchError(RuntimeError):
    """A patch in ``patches/`` does not apply to the pinned mongoose sources."""


def patch_files(patches_dir: Path) -> list[Path]:
    """The ``*.patch`` files of ``patches_dir`` in the order they apply (by name)."""
    if not patches_dir.is_dir():
        return []
    return sorted(patches_dir.glob("*.patch"))


def _run_patch(patch: Path, directory: Path, dry_run: bool) -> None:
    exe = shutil.which("patch")
    if exe is None:
        raise MongoosePatchError(
            "the 'patch' program is needed to build cymongoose-core "
            "(Debian/Ubuntu: apt-get install patch)"
        )
    argv = [exe, "-p1", "--forward", "--batch", "--fuzz=0", "--no-backup-if-mismatch",
            "--reject-file=-", "-d", str(directory), "-i", str(patch)]
    if dry_run:
        argv.append("--dry-run")
    out = subprocess.run(argv, capture_output=True, text=True)
    if out.returncode != 0:
        raise MongoosePatchError(
            f"{patch.name} does not apply to the mongoose sources; refusing to build. "
            f"Update the patch for this mongoose version. patch said:\n"
            f"{(out.stdout + out.stderr).strip()}"
        )


def apply_patches(pristine_dir: Path, patches_dir: Path, dest_dir: Path) -> Path:
    """Return ``dest_dir`` holding ``pristine_dir``'s files with every patch applied.

    Files in ``dest_dir`` are rewritten only when their content changes, so an
    unchanged source is not recompiled. Raises MongoosePatchError naming the patch
    (and quoting ``patch``'s output) when one does not apply; ``dest_dir`` is then
    left as it was.
    """
    patches = patch_files(patches_dir)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in FILES:
            if (pristine_dir / name).is_file():
                shutil.copyfile(pristine_dir / name, work / name)
        for patch in patches:
            _run_patch(patch, work, dry_run=True)
            _run_patch(patch, work, dry_run=False)
        dest_dir.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            src = work / name
            if not src.is_file():
                continue
            target = dest_dir / name
            data = src.read_bytes()
            if not target.is_file() or target.read_bytes() != data:
                target.write_bytes(data)
    return dest_dir
