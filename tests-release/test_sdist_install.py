"""Each package installs from its built sdist into a fresh virtualenv, offline, and imports.

Run by ``nox -s build`` after it has filled ``dist/`` (``$CYMONGOOSE_DIST``). The installs use
``pip --no-index``: the other cymongoose packages come from ``dist/``, build tools (hatchling,
Cython, ...) from a wheelhouse downloaded once beforehand (``$CYMONGOOSE_WHEELHOUSE`` to
reuse one) — the only network step. ``HOME``/``XDG_CACHE_HOME`` point to empty directories,
``CYMONGOOSE_MONGOOSE_DIR`` is unset and the package index URL is unreachable, so the core's
wheel can only build from the mongoose sources its sdist carries.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
DIST = Path(os.environ.get("CYMONGOOSE_DIST", ROOT / "dist"))
PACKAGES = {
    "cymongoose-core": "cymongoose",
    "cymongoose-aio": "cymongoose.aio",
    "cymongoose-wsgi": "cymongoose.wsgi",
    "cymongoose-asgi": "cymongoose.asgi",
}
# A port nothing listens on: any attempt to reach an index fails at once.
UNREACHABLE_INDEX = "http://127.0.0.1:9/simple"


def _version(dist_name: str) -> str:
    path = ROOT / "packages" / dist_name / "pyproject.toml"
    return tomllib.loads(path.read_text())["project"]["version"]


def _sdist(dist_name: str) -> Path:
    path = DIST / f"{dist_name.replace('-', '_')}-{_version(dist_name)}.tar.gz"
    if not path.is_file():
        pytest.fail(f"{path} is missing: build the artifacts first with `nox -s build`")
    return path


def _build_requirements() -> list[str]:
    reqs: list[str] = []
    for dist_name in PACKAGES:
        path = ROOT / "packages" / dist_name / "pyproject.toml"
        reqs += tomllib.loads(path.read_text())["build-system"]["requires"]
    return sorted(set(reqs))


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    given = os.environ.get("CYMONGOOSE_WHEELHOUSE")
    if given:
        return Path(given)
    house = tmp_path_factory.mktemp("wheelhouse")
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                    "-d", str(house), *_build_requirements()], check=True)
    return house


def _offline_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CYMONGOOSE_", "PIP_", "VIRTUAL_ENV", "PYTHON"))}
    (tmp / "home").mkdir()
    env.update(HOME=str(tmp / "home"), XDG_CACHE_HOME=str(tmp / "home" / ".cache"),
               PIP_CONFIG_FILE=os.devnull, PIP_NO_CACHE_DIR="1",
               PIP_INDEX_URL=UNREACHABLE_INDEX, PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def _fresh_venv(tmp: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True)
    return tmp / "venv" / "bin" / "python"


def test_core_sdist_carries_mongoose():
    with tarfile.open(_sdist("cymongoose-core")) as tar:
        names = {name.partition("/")[2] for name in tar.getnames()}
    assert {"mongoose/mongoose.c", "mongoose/mongoose.h", "mongoose/LICENSE"} <= names
    assert "hatch_build.py" in names and "build_support/fetch_mongoose.py" in names


@pytest.mark.parametrize("dist_name", [n for n in PACKAGES if n != "cymongoose-core"])
def test_pure_sdists_ship_only_their_subpackage(dist_name):
    sub = PACKAGES[dist_name].rpartition(".")[2]
    with tarfile.open(_sdist(dist_name)) as tar:
        names = {name.partition("/")[2] for name in tar.getnames()}
    assert f"src/cymongoose/{sub}/__init__.py" in names
    assert "src/cymongoose/__init__.py" not in names  # cymongoose-core owns the namespace


def _install_offline(dist_name: str, tmp_path: Path, wheelhouse: Path) -> tuple[Path, dict]:
    python = _fresh_venv(tmp_path)
    env = _offline_env(tmp_path)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", "--find-links", str(DIST),
         "--find-links", str(wheelhouse), str(_sdist(dist_name))],
        env=env, capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stdout[-4000:] + install.stderr[-4000:]
    assert not list((tmp_path / "home").rglob("mongoose.c")), "the build used a user cache"
    return python, env


def _check_import(dist_name: str, python: Path, env: dict, tmp_path: Path) -> None:
    module = PACKAGES[dist_name]
    check = subprocess.run(
        [str(python), "-c",
         "import importlib, importlib.metadata as md, sys\n"
         f"m = importlib.import_module({module!r})\n"
         f"print(md.version({dist_name!r}), getattr(m, '__version__', ''))\n"],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    installed, dunder = check.stdout.split()
    assert installed == dunder == _version(dist_name)
    # Its cymongoose dependencies resolved to the versions built from the tree.
    tree_names = set(PACKAGES)
    requires = tomllib.loads(
        (ROOT / "packages" / dist_name / "pyproject.toml").read_text())["project"].get(
        "dependencies", [])
    for req in map(Requirement, requires):
        if req.name in tree_names:
            got = subprocess.run(
                [str(python), "-c", f"import importlib.metadata as md; "
                                    f"print(md.version({req.name!r}))"],
                env=env, capture_output=True, text=True, check=True).stdout.strip()
            assert got == _version(req.name)


@pytest.mark.parametrize("dist_name", [n for n in PACKAGES if n != "cymongoose-core"])
def test_sdist_installs_offline_and_imports(dist_name, tmp_path, wheelhouse):
    python, env = _install_offline(dist_name, tmp_path, wheelhouse)
    _check_import(dist_name, python, env, tmp_path)


def test_core_sdist_builds_offline_and_serves_http(tmp_path, wheelhouse):
    """The core's wheel compiles from its sdist alone and works: an HTTP round trip."""
    python, env = _install_offline("cymongoose-core", tmp_path, wheelhouse)
    _check_import("cymongoose-core", python, env, tmp_path)
    program = """
import socket
from cymongoose import Manager, MG_EV_HTTP_MSG

def handler(conn, ev, data):
    if ev == MG_EV_HTTP_MSG:
        conn.reply(200, b"built offline")

with Manager(handler) as mgr:
    port = mgr.listen("http://127.0.0.1:0").local_addr[1]
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    client.setblocking(False)
    reply = b""
    while not reply.endswith(b"built offline"):
        mgr.poll(50)
        try:
            reply += client.recv(4096)
        except BlockingIOError:
            pass
    print(reply.split(b"\\r\\n", 1)[0].decode())
"""
    out = subprocess.run([str(python), "-c", program], env=env, capture_output=True,
                         text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "HTTP/1.1 200 OK"


def test_core_first_build_in_a_fresh_virtualenv_with_pip_upgraded(tmp_path):
    """What a new user runs first: ``pip install packages/cymongoose-core`` into a new
    virtualenv whose pip was upgraded, with empty caches and pip's own configuration, so
    that the build fetches mongoose from the index, verifies it and compiles."""
    python = _fresh_venv(tmp_path)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CYMONGOOSE_", "VIRTUAL_ENV", "PYTHON"))}
    (tmp_path / "home").mkdir()
    env.update(XDG_CACHE_HOME=str(tmp_path / "home" / ".cache"),
               CYMONGOOSE_CACHE_DIR=str(tmp_path / "cache"), PIP_NO_CACHE_DIR="1")
    for args in (["install", "--quiet", "--upgrade", "pip"],
                 ["install", str(ROOT / "packages" / "cymongoose-core")]):
        run = subprocess.run([str(python), "-m", "pip", *args], env=env,
                             capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert (tmp_path / "cache" / "7.23" / "mongoose.c").is_file(), "the build did not fetch"
    out = subprocess.run([str(python), "-c", "import cymongoose; print(cymongoose.__version__)"],
                         env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.stdout.strip() == _version("cymongoose-core"), out.stderr
