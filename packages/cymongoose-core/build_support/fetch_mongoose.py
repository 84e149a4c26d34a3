"""Locate, fetch and verify the pinned mongoose 7.23 sources.

The sources are a dependency, never committed. Search order (design.md):
``$CYMONGOOSE_MONGOOSE_DIR``; ``mongoose/`` inside an unpacked sdist; the user cache
(``~/.cache/cymongoose/7.23``, or ``$CYMONGOOSE_CACHE_DIR/7.23``); otherwise the sdist of
``cymongoose==0.2.5`` from the package index pip is configured to use, of which only
``mongoose.c``, ``mongoose.h`` and ``LICENSE`` are extracted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

MONGOOSE_VERSION = "7.23"
SHA256 = {
    "mongoose.c": "651d514ee52761c26af774d74e91346bf150c915120d967ec4332a69ea1600f5",
    "mongoose.h": "0ee23157099964b7ca1c7bf3e02b1b8250cbd7838a6938fed63726e720f70b0b",
}
CARRIER = ("cymongoose", "0.2.5")
CARRIER_DIR = "thirdparty/mongoose/"
FILES = ("mongoose.c", "mongoose.h", "LICENSE")
# pip's default index (pip documents it as the default of --index-url).
PYPI_SIMPLE_URL = "https://pypi.org/simple"


class MongooseSourceError(RuntimeError):
    """The mongoose sources are missing or do not match the pinned hashes."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify(directory: Path) -> None:
    """Raise MongooseSourceError unless both files in ``directory`` match the pins."""
    for name, expected in SHA256.items():
        path = directory / name
        if not path.is_file():
            raise MongooseSourceError(f"{path} is missing")
        actual = _sha256(path)
        if actual != expected:
            raise MongooseSourceError(
                f"{path}: sha256 {actual} does not match the pinned mongoose "
                f"{MONGOOSE_VERSION} hash {expected}; refusing to build"
            )


def cache_dir() -> Path:
    """Where fetched sources are kept between builds.

    ``$CYMONGOOSE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/cymongoose`` (CI points
    ``XDG_CACHE_HOME`` at an empty directory so that every run fetches and verifies),
    else ``~/.cache/cymongoose``; the version is a subdirectory.
    """
    base = os.environ.get("CYMONGOOSE_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
        base = os.path.join(xdg, "cymongoose")
    return Path(base) / MONGOOSE_VERSION


def _index_url() -> str:
    """The index pip would use: ``$PIP_INDEX_URL``, pip's configured ``global.index-url``,
    else pip's default.

    pip's configuration is read by running pip, never by importing its internals: they
    import the stdlib ``distutils``, which breaks a setuptools imported after them in the
    same build process.
    """
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
            capture_output=True,
            text=True,
        )
        url = out.stdout.strip() if out.returncode == 0 else ""
    return (url or PYPI_SIMPLE_URL).rstrip("/")


def _download_carrier(dest: Path) -> Path:
    """Download the carrier sdist through the package index's JSON simple API (PEP 691).

    ``pip download`` of an sdist would build its metadata (and its build
    dependencies) first, which takes far longer than the download itself.
    """
    name, version = CARRIER
    filename = f"{name}-{version}.tar.gz"
    req = urllib.request.Request(
        f"{_index_url()}/{name}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        listing = json.load(resp)
    for entry in listing.get("files", []):
        if entry["filename"] == filename:
            break
    else:
        raise MongooseSourceError(f"{filename} not found on the package index")
    target = dest / filename
    with urllib.request.urlopen(entry["url"], timeout=300) as resp, open(target, "wb") as f:
        shutil.copyfileobj(resp, f)
    want = entry.get("hashes", {}).get("sha256")
    if want and _sha256(target) != want:
        raise MongooseSourceError(f"{filename}: download does not match the index's sha256")
    return target


def _extract(sdist: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            head, _, rest = member.name.partition("/")
            if rest.startswith(CARRIER_DIR) and rest[len(CARRIER_DIR):] in FILES:
                data = tar.extractfile(member)
                assert data is not None
                (dest / rest[len(CARRIER_DIR):]).write_bytes(data.read())


def locate(package_root: Path) -> Path:
    """Return a directory holding verified ``mongoose.c`` and ``mongoose.h``.

    Raises MongooseSourceError naming the file and the expected hash on a mismatch.
    """
    override = os.environ.get("CYMONGOOSE_MONGOOSE_DIR")
    if override:
        verify(Path(override))
        return Path(override)
    bundled = package_root / "mongoose"
    if (bundled / "mongoose.c").is_file():
        verify(bundled)
        return bundled
    cached = cache_dir()
    if (cached / "mongoose.c").is_file():
        verify(cached)
        return cached
    with tempfile.TemporaryDirectory() as tmp:
        sdist = _download_carrier(Path(tmp))
        staging = Path(tmp) / "extracted"
        _extract(sdist, staging)
        verify(staging)
        cached.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            if (staging / name).is_file():
                shutil.copy2(staging / name, cached / name)
    verify(cached)
    return cached


if __name__ == "__main__":
    print(locate(Path(__file__).resolve().parent.parent))
