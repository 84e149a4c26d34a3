"""Every build, test, lint and demo task of the cymongoose monorepo.

The core wheel (the only compiled package) is built once per source state and
installed into each session; the pure-Python packages are installed from their
directories.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import nox

ROOT = Path(__file__).parent
CORE = ROOT / "packages" / "cymongoose-core"
PACKAGES = {
    "core": CORE,
    "aio": ROOT / "packages" / "cymongoose-aio",
    "wsgi": ROOT / "packages" / "cymongoose-wsgi",
    "asgi": ROOT / "packages" / "cymongoose-asgi",
}
TEST_DEPS = ["pytest", "pytest-timeout", "httpx", "websockets", "cryptography", "trustme", "uvloop",
             "pyyaml", "python-dotenv"]  # the last two: --log-config .yaml, --env-file
FRAMEWORKS = ["fastapi", "starlette", "flask", "python-multipart", "gunicorn", "django", "quart",
              "bottle", "falcon", "watchfiles",
              "redbot", "uvicorn",
              "aiohttp"]  # aiohttp: a second WebSocket client
# redbot, uvicorn: tests-integration/test_redbot_lint.py lints ours against uvicorn
# ASGI over MQTT: the [mqtt] extra, and consumers written for mqttasgi (used as a library
# and, in the bench, as the peer server); paho-mqtt is the bench's publisher.
MQTT_DEPS = ["asgiref>=3.6,<4", "channels", "mqttasgi", "paho-mqtt"]

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True
# tests_pythons: run on the supported Pythons that are installed, skip the others.
SUPPORTED_PYTHONS = ["3.10", "3.11", "3.12", "3.13", "3.14"]
nox.options.error_on_missing_interpreters = False
nox.options.download_python = "never"
DOCS_DEPS = ["mkdocs", "mkdocs-material", "mkdocstrings[python]", "ruff", "gunicorn",
             "tomli; python_version < '3.11'", "asgiref>=3.6,<4"]  # asgiref: cymongoose.asgi.mqtt


def _core_wheel(session: nox.Session) -> Path:
    """Build the core wheel once per state of its sources; return its path."""
    digest = hashlib.sha256()
    for path in sorted(CORE.rglob("*")):
        if path.is_file() and "build" not in path.parts and path.suffix not in {".so", ".c"}:
            digest.update(path.relative_to(CORE).as_posix().encode())
            digest.update(path.read_bytes())
    out = ROOT / ".nox" / "_wheels" / digest.hexdigest()[:16]
    # One wheel per interpreter (tests_pythons runs several): match its cpXY tag.
    tag = session.run("python", "-c", "import sys; print('cp%d%d' % sys.version_info[:2])",
                      silent=True).strip()
    wheels = list(out.glob(f"cymongoose_core-*-{tag}-*.whl"))
    if not wheels:
        session.run("python", "-m", "pip", "wheel", "--no-deps", "-w", str(out), str(CORE))
        wheels = list(out.glob(f"cymongoose_core-*-{tag}-*.whl"))
    return wheels[0]


def _install(session: nox.Session, *names: str, extra: list[str] | None = None,
             test_deps: bool = True) -> None:
    # --force-reinstall: a reused venv would keep an older build of the same version.
    session.install("--force-reinstall", "--no-deps", str(_core_wheel(session)))
    pure = [str(PACKAGES[n]) for n in names if n != "core"]
    session.install("--force-reinstall", "--no-deps", *pure) if pure else None
    session.install(*(TEST_DEPS if test_deps else []), *(extra or []))


def _pytest(session: nox.Session, *paths: Path) -> None:
    session.run("pytest", "-p", "no:cacheprovider", "--timeout=120", *map(str, paths),
                *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """All packages' tests and tests-integration/."""
    _install(session, *PACKAGES, extra=[*FRAMEWORKS, *MQTT_DEPS])
    # One pytest run per suite: the suites share test module basenames.
    for path in [*(p / "tests" for p in PACKAGES.values()), ROOT / "tests-integration"]:
        _pytest(session, path)


@nox.session
def core(session: nox.Session) -> None:
    """cymongoose-core's tests."""
    _install(session, "core")
    _pytest(session, CORE / "tests")


@nox.session
def aio(session: nox.Session) -> None:
    """cymongoose-aio's tests (both modes; uvloop too)."""
    _install(session, "core", "aio", extra=["uvloop"])
    _pytest(session, PACKAGES["aio"] / "tests")


@nox.session
def wsgi(session: nox.Session) -> None:
    """cymongoose-wsgi's tests."""
    _install(session, "core", "wsgi")
    _pytest(session, PACKAGES["wsgi"] / "tests")


@nox.session
def asgi(session: nox.Session) -> None:
    """cymongoose-asgi's tests."""
    _install(session, "core", "aio", "asgi", extra=["asgiref>=3.6,<4"])  # the [mqtt] extra
    _pytest(session, PACKAGES["asgi"] / "tests")


@nox.session
def integration(session: nox.Session) -> None:
    """Real frameworks over real sockets with real clients (MQTT ones need mosquitto)."""
    _install(session, *PACKAGES, extra=[*FRAMEWORKS, *MQTT_DEPS])
    _pytest(session, ROOT / "tests-integration")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session
def demo(session: nox.Session) -> None:
    """Serve examples/demo_app.py (FastAPI routes + WebSocket chat) on http://127.0.0.1:8000."""
    _install(session, "core", "aio", "asgi", extra=["fastapi"], test_deps=False)
    session.run("python", str(ROOT / "examples" / "demo_app.py"), *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over a program using the core API, against the shipped stubs."""
    # --force-reinstall: a reused venv would keep an older build (and stubs) of 0.3.0.
    session.install("--force-reinstall", "--no-deps", str(_core_wheel(session)))
    session.install("mypy")
    session.run("mypy", "--strict", str(CORE / "tests" / "typecheck" / "sample.py"))


@nox.session
def asan(session: nox.Session) -> None:
    """The core built with AddressSanitizer under every package's tests and tests-integration/.

    Servers started by the tests as subprocesses inherit LD_PRELOAD, so they run
    instrumented too. ``nox -s asan -- -k chunked`` narrows every pytest run.
    """
    import shutil
    from xml.etree import ElementTree

    libasan = session.run("gcc", "-print-file-name=libasan.so", silent=True,
                          external=True).strip()
    flags = {"CYMONGOOSE_CFLAGS": "-fsanitize=address -fno-omit-frame-pointer -g -O1",
             "CYMONGOOSE_LDFLAGS": "-fsanitize=address"}
    session.install("--no-cache-dir", "--force-reinstall", "--no-deps", str(CORE), env=flags)
    pure = [str(PACKAGES[n]) for n in ("aio", "wsgi", "asgi")]
    session.install("--force-reinstall", "--no-deps", *pure)
    session.install(*TEST_DEPS, *FRAMEWORKS)
    # Python's own allocations are not instrumented; leaks are reported by the soak test.
    # A report aborts the process and is written to reports/asan.<pid>: also when it
    # comes from a server subprocess whose test would not notice.
    reports = Path(session.create_tmp()) / "asan-reports"
    shutil.rmtree(reports, ignore_errors=True)
    reports.mkdir()
    env = {"LD_PRELOAD": libasan, "PYTHONMALLOC": "malloc",
           "ASAN_OPTIONS": f"detect_leaks=0:abort_on_error=1:log_path={reports}/asan"}
    failed = []
    try:
        # Every suite runs even when one fails: a failure must not hide a later report.
        for path in [*(p / "tests" for p in PACKAGES.values()), ROOT / "tests-integration"]:
            junit = reports.parent / f"{path.parent.name}-{path.name}.xml"
            session.run("pytest", "-p", "no:cacheprovider", "--timeout=600",
                        f"--junitxml={junit}", str(path), *session.posargs, env=env,
                        success_codes=[0, 1, 5])
            suite = ElementTree.parse(junit).getroot().find("testsuite")
            if suite is None or int(suite.get("failures", 0)) + int(suite.get("errors", 0)):
                failed.append(str(path.relative_to(ROOT)))
    finally:  # pytest itself aborted by a report: show it all the same
        found = sorted(reports.iterdir())
        for report in found:
            session.log(f"{report}:\n{report.read_text(errors='replace')}")
    if found:
        session.error(f"AddressSanitizer reported {len(found)} error(s): see above")
    if failed:
        session.error(f"tests failed under AddressSanitizer in: {', '.join(failed)}")


@nox.session
def bench(session: nox.Session) -> None:
    """benchmarks/run.py: cymongoose vs uvicorn, granian, gunicorn, bjoern, fastwsgi and raw C
    mongoose (wrk).

    ``nox -s bench -- --baseline REF`` also measures the cymongoose servers of git commit REF
    (e.g. ``HEAD~1``), built into a virtualenv of their own, in the same rounds: rows
    ``<server>@<hash>`` and a ``vs base`` ratio per current cymongoose row.
    """
    import shutil

    if not shutil.which("wrk"):
        session.error("wrk is not installed: apt-get install wrk")
    _install(session, *PACKAGES, extra=[*FRAMEWORKS, *MQTT_DEPS, "uvicorn", "uvloop", "httptools",
                                        "granian", "gunicorn", "bjoern-binary", "fastwsgi",
                                        "setuptools<81",  # fastwsgi imports pkg_resources
                                        "psutil", "matplotlib"])  # matplotlib: charts.py
    # The bench tools' own tests first (a few seconds): a run must not fail at its end.
    session.run("pytest", "-p", "no:cacheprovider", "-q", str(ROOT / "benchmarks" / "tests"))
    session.run("python", str(ROOT / "benchmarks" / "run.py"), *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """tests-soak/soak.py: 1,000,000 checked requests per server (wrk), RSS growth <= 10%.

    Not part of ``tests``: it takes many minutes. ``nox -s soak -- --requests 50000``.
    """
    import shutil

    if not shutil.which("wrk"):
        session.error("wrk is not installed: apt-get install wrk")
    _install(session, *PACKAGES, extra=["psutil"])
    session.run("python", str(ROOT / "tests-soak" / "soak.py"), *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """tests-fuzz/run.py: atheris on the core's HTTP parsing and the adapters' translation.

    10 minutes in all by default (``nox -s fuzz -- --seconds 60``); fails on any crash,
    hang or broken invariant, leaving the input in .nox/fuzz/<target>/.
    """
    _install(session, *PACKAGES, extra=["atheris"])
    session.run("python", str(ROOT / "tests-fuzz" / "run.py"), *session.posargs)


def _pyenv_pythons() -> None:
    """Let nox find every pyenv-installed Python: pyenv's shims answer only for the versions
    PYENV_VERSION lists (a shim sets it to the active one), so append the others."""
    import os
    import subprocess

    try:
        active = subprocess.run(["pyenv", "version-name"], capture_output=True, text=True,
                                check=True).stdout.strip()
        names = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True,
                               text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return
    first = os.environ.get("PYENV_VERSION", active).split(":")
    os.environ["PYENV_VERSION"] = ":".join(dict.fromkeys([*first, *names]))


_pyenv_pythons()


@nox.session(python=SUPPORTED_PYTHONS)
def tests_pythons(session: nox.Session) -> None:
    """Each package's tests on every supported Python that is installed (others skipped)."""
    _install(session, *PACKAGES)
    for path in (p / "tests" for p in PACKAGES.values()):
        _pytest(session, path)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site: mkdocs build --strict into build/site (warnings fail)."""
    # --force-reinstall: a reused venv would keep an older build of the same version.
    session.install("--force-reinstall", "--no-deps", str(_core_wheel(session)))
    session.install("--force-reinstall", "--no-deps",
                    *(str(PACKAGES[n]) for n in ("aio", "wsgi", "asgi")))
    session.install(*DOCS_DEPS)
    session.run("mkdocs", "build", "--strict", *session.posargs,
                env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def build(session: nox.Session) -> None:
    """sdist + wheel of each package into dist/, twine check, tests-release/ (offline installs).

    tests-release/ installs every sdist into a fresh virtualenv with --no-index (the core's
    wheel compiles from its sdist), and checks versions, ranges and CHANGELOGs.
    """
    import shutil

    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.install("build", "twine", "pytest", "packaging", "tomli; python_version < '3.11'")
    for path in PACKAGES.values():
        # python -m build makes the sdist, then the wheel from that sdist.
        session.run("python", "-m", "build", "--outdir", str(dist), str(path))
    session.run("twine", "check", "--strict", *map(str, sorted(dist.iterdir())))
    session.run("pytest", "-p", "no:cacheprovider", str(ROOT / "tests-release"),
                *session.posargs, env={"CYMONGOOSE_DIST": str(dist)})

