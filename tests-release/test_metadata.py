"""Release metadata of the four packages, checked against the tree.

- Versions are independent per package; every dependency on another cymongoose package is
  a range (never an exact pin) that admits the version of that package in the tree.
- Each package's ``__version__`` equals its pyproject version.
- Supported Pythons (3.10 to 3.14) are declared the same way everywhere.
- Each CHANGELOG.md follows Keep a Changelog 1.1.0.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())
SUPPORTED = ["3.10", "3.11", "3.12", "3.13", "3.14"]
CHANGE_TYPES = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def _project(path: Path) -> dict:
    return tomllib.loads((path / "pyproject.toml").read_text())["project"]


TREE_VERSIONS = {_project(p)["name"]: Version(_project(p)["version"]) for p in PACKAGES}


def test_four_packages():
    assert sorted(TREE_VERSIONS) == [
        "cymongoose-aio", "cymongoose-asgi", "cymongoose-core", "cymongoose-wsgi"]


def _internal_requirements(project: dict) -> list[tuple[str, Requirement]]:
    found = []
    for req in project.get("dependencies", []):
        found.append(("dependencies", Requirement(req)))
    for extra, reqs in project.get("optional-dependencies", {}).items():
        found.extend((f"optional-dependencies.{extra}", Requirement(r)) for r in reqs)
    return [(where, r) for where, r in found if r.name in TREE_VERSIONS]


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_internal_ranges_admit_tree_versions(package):
    project = _project(package)
    for where, req in _internal_requirements(project):
        spec = req.specifier
        assert not any(s.operator in ("==", "===") for s in spec), (
            f"{project['name']} {where}: {req} pins an exact version; use a range")
        assert any(s.operator == "<" for s in spec), (
            f"{project['name']} {where}: {req} has no upper bound (next breaking release)")
        assert spec.contains(TREE_VERSIONS[req.name], prereleases=True), (
            f"{project['name']} {where}: {req} does not admit {req.name} "
            f"{TREE_VERSIONS[req.name]} from the tree")


def test_range_check_catches_a_stale_range():
    # The check above must be able to fail: a range written for an older core.
    assert not SpecifierSet(">=0.2,<0.3").contains(TREE_VERSIONS["cymongoose-core"])


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_dunder_version_matches_pyproject(package):
    project = _project(package)
    name = project["name"].removeprefix("cymongoose-")
    init = package / "src" / "cymongoose" / ("" if name == "core" else name) / "__init__.py"
    match = re.search(r'^__version__ = "([^"]+)"', init.read_text(), re.M)
    assert match, f"{init} has no __version__"
    assert Version(match.group(1)) == TREE_VERSIONS[project["name"]]


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_supported_pythons_declared(package):
    project = _project(package)
    assert project["requires-python"] == f">={SUPPORTED[0]}"
    classifiers = set(project["classifiers"])
    for version in SUPPORTED:
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert "License :: OSI Approved :: GNU General Public License v2 or later (GPLv2+)" \
        not in classifiers, "the SPDX license expression replaces license classifiers"
    assert project["license"] == "GPL-2.0-or-later"
    assert project["readme"] == "README.md"


# -- Keep a Changelog ------------------------------------------------------------------------

_RELEASE = re.compile(r"^## \[(\d+\.\d+\.\d+(?:[-.]?\w+)?)\] - (\d{4}-\d{2}-\d{2})$")


def changelog_problems(text: str, tree_version: Version) -> list[str]:
    """Everything in ``text`` that breaks Keep a Changelog 1.1.0, as messages."""
    problems = []
    lines = text.splitlines()
    if not lines or lines[0] != "# Changelog":
        problems.append("the first line must be '# Changelog'")
    if "keepachangelog.com" not in text:
        problems.append("the introduction must link to https://keepachangelog.com/")
    releases: list[Version] = []
    seen_unreleased = False
    section: str | None = None
    change_type: str | None = None
    entries = 0
    for number, line in enumerate(lines, 1):
        if line.startswith("## "):
            if change_type is not None and entries == 0:
                problems.append(f"line {number}: '### {change_type}' above has no entries")
            change_type, entries = None, 0
            if line == "## [Unreleased]":
                if seen_unreleased or releases:
                    problems.append(f"line {number}: [Unreleased] must come once, first")
                seen_unreleased = True
                section = "Unreleased"
                continue
            match = _RELEASE.match(line)
            if not match:
                problems.append(f"line {number}: {line!r} is neither '## [Unreleased]' nor "
                                "'## [X.Y.Z] - YYYY-MM-DD'")
                continue
            version = Version(match.group(1))
            if releases and version >= releases[-1]:
                problems.append(f"line {number}: {version} is not older than {releases[-1]}")
            if version > tree_version:
                problems.append(f"line {number}: {version} is newer than the tree's "
                                f"{tree_version}")
            releases.append(version)
            section = str(version)
        elif line.startswith("### "):
            if change_type is not None and entries == 0:
                problems.append(f"line {number}: '### {change_type}' above has no entries")
            change_type, entries = line[4:].strip(), 0
            if section is None:
                problems.append(f"line {number}: '{line}' outside a version section")
            if change_type not in CHANGE_TYPES:
                problems.append(f"line {number}: '{change_type}' is not one of "
                                f"{', '.join(sorted(CHANGE_TYPES))}")
        elif line.startswith("- "):
            if change_type is None:
                problems.append(f"line {number}: entry outside a '### <type>' section")
            entries += 1
        elif line.startswith("#"):
            if number != 1:
                problems.append(f"line {number}: unexpected heading {line!r}")
    if change_type is not None and entries == 0:
        problems.append(f"'### {change_type}' at the end has no entries")
    if tree_version not in releases and not seen_unreleased:
        problems.append(f"version {tree_version} is neither released in the changelog nor "
                        "covered by an [Unreleased] section")
    return problems


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_changelog_keeps_a_changelog(package):
    text = (package / "CHANGELOG.md").read_text()
    assert changelog_problems(text, TREE_VERSIONS[_project(package)["name"]]) == []


GOOD = """# Changelog

All notable changes are documented here ([Keep a Changelog](https://keepachangelog.com/)).

## [Unreleased]

### Added
- a thing

## [0.2.0] - 2026-01-02

### Fixed
- a bug
"""


def test_changelog_checker_accepts_a_good_file():
    assert changelog_problems(GOOD, Version("0.3.0")) == []


@pytest.mark.parametrize("mutation, message", [
    (("## [Unreleased]", "## [0.3.0] - Unreleased"), "neither"),
    (("### Fixed", "### Bugfixes"), "not one of"),
    (("## [0.2.0] - 2026-01-02", "## [0.4.0] - 2026-01-02"), "newer than the tree"),
    (("- a thing\n", ""), "has no entries"),
])
def test_changelog_checker_rejects(mutation, message):
    bad = GOOD.replace(*mutation)
    assert any(message in p for p in changelog_problems(bad, Version("0.3.0")))
