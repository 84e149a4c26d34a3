"""MkDocs hook: pages generated from the installed packages, so the docs cannot go stale.

- ``reference/<module>.md``: one page per public module of the ``cymongoose`` namespace
  (every installed distribution), rendered by mkdocstrings; added to the nav under
  "API reference".
- ``<!-- cli-reference: PROG -->`` in a page becomes a table of PROG's flags, read from the
  argparse parser of the console script (``[project.scripts]`` of each package's
  pyproject.toml names ``module:main``; the module provides ``build_parser()``).
- ``<!-- config-reference -->`` becomes a table of the ``ServerConfig`` fields (type,
  default, description from the class docstring, the CLI flags that set it).
- ``<!-- constructor: dotted.Name -->`` becomes a table of that callable's parameters.
- ``<!-- benchmarks-latest -->`` becomes the newest full run in ``benchmarks/results/``
  (``benchmarks/charts.py`` chooses it: 3+ rounds of the main workloads, newest by its
  date), its charts (SVG, copied into the site under ``assets/benchmarks/``) above its tables.

Anything missing (a parser, a field description, a results file) is logged as a warning,
which ``mkdocs build --strict`` turns into a failure.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import inspect
import logging
import pkgutil
import posixpath
import re
import sys
from pathlib import Path

from mkdocs.structure.files import File

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
# Sphinx roles in docstrings (":class:`X`") become Markdown code spans.
_ROLE = re.compile(r":(?:class|meth|func|attr|mod|obj|exc|data|const):`~?([^`]+)`")
log = logging.getLogger("mkdocs.hooks.reference")

DISTRIBUTIONS = {
    "cymongoose-core": "cymongoose",
    "cymongoose-aio": "cymongoose.aio",
    "cymongoose-wsgi": "cymongoose.wsgi",
    "cymongoose-asgi": "cymongoose.asgi",
}


def public_modules() -> list[str]:
    """Every importable public module of the ``cymongoose`` namespace, sorted.

    Public: no path component starts with ``_`` (``cymongoose._mongoose`` is documented
    through ``cymongoose``, which re-exports it).
    """
    import cymongoose

    names = ["cymongoose"]
    for info in pkgutil.walk_packages(cymongoose.__path__, "cymongoose."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(set(names))


def distribution_of(module: str) -> str:
    best = "cymongoose-core"
    for dist, prefix in DISTRIBUTIONS.items():
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(
            DISTRIBUTIONS[best]
        ):
            best = dist
    return best


def _page(module: str) -> str:
    return f"reference/{module}.md"


def _top_level_names() -> list[str]:
    """The public names of ``cymongoose``: classes, then functions, then constants."""
    import cymongoose

    names = [n for n in dir(cymongoose) if not n.startswith("_")
             and not inspect.ismodule(getattr(cymongoose, n))]
    if "AsyncManager" not in names and importlib.util.find_spec("cymongoose.aio"):
        names.append("AsyncManager")  # a lazy attribute (module __getattr__)

    def kind(name: str) -> int:
        obj = getattr(cymongoose, name)
        return 0 if inspect.isclass(obj) and not isinstance(obj, int) else (
            1 if callable(obj) else 2)

    return sorted(names, key=lambda n: (kind(n), n))


def _module_page(module: str) -> str:
    dist = distribution_of(module)
    first = (importlib.import_module(module).__doc__ or "").strip().splitlines()
    summary = first[0] if first else ""
    options = ""
    if module == "cymongoose":
        # The compiled API lives in cymongoose._mongoose and is re-exported here; griffe
        # counts explicitly imported names as private without __all__, so list them.
        options = "\n    options:\n      show_submodules: false\n      members:\n" + "".join(
            f"        - {name}\n" for name in _top_level_names())
    return (
        f"# `{module}`\n\n"
        f"Shipped by **{dist}** (`pip install {dist}`). {summary}\n\n"
        f"::: {module}{options}\n"
    )


def stage_namespace(target: Path) -> None:
    """Merge every installed part of the ``cymongoose`` namespace into ``target/cymongoose``.

    griffe (which mkdocstrings uses) stops at the first ``cymongoose/__init__.py`` it finds,
    so with editable installs (one directory per package) it would not see
    ``cymongoose.aio`` and friends. mkdocs.yml points the handler's ``paths`` at
    ``target``; this mirrors the installed files there as symlinks, the core's first.
    """
    import shutil

    import cymongoose

    root = target / "cymongoose"
    shutil.rmtree(root, ignore_errors=True)
    for part in map(Path, cymongoose.__path__):
        for source in sorted(part.rglob("*")):
            if not source.is_file() or "__pycache__" in source.parts:
                continue
            if source.suffix not in (".py", ".pyi", ".so", ".pyd") and source.name != "py.typed":
                continue
            link = root / source.relative_to(part)
            if not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(source)


# -- mkdocs events --------------------------------------------------------------------------

def on_startup(command, dirty, **kwargs):
    # Before on_config: mkdocstrings drops handler paths that do not exist yet.
    stage_namespace(ROOT / "build" / "docs-api")


def on_config(config, **kwargs):
    modules = public_modules()
    groups: dict[str, list[str]] = {}
    for module in modules:
        groups.setdefault(distribution_of(module), []).append(_page(module))
    entries: list = ["reference/index.md"]
    for dist in DISTRIBUTIONS:
        if dist in groups:
            entries.append({dist: groups[dist]})
    for i, item in enumerate(config.nav or []):
        if isinstance(item, dict) and "API reference" in item:
            config.nav[i] = {"API reference": entries}
    return config


def on_files(files, config, **kwargs):
    for module in public_modules():
        files.append(File.generated(config, _page(module), content=_module_page(module)))
    for chart in benchmark_charts():
        files.append(File.generated(config, f"{BENCH_ASSETS}/{chart.name}",
                                    abs_src_path=str(chart)))
    return files


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    def cli(match: re.Match) -> str:
        return cli_table(match.group(1).strip())

    def ctor(match: re.Match) -> str:
        return constructor_table(match.group(1).strip())

    markdown = re.sub(r"<!-- cli-reference: (.+?) -->", cli, markdown)
    markdown = re.sub(r"<!-- constructor: (.+?) -->", ctor, markdown)
    if "<!-- config-reference -->" in markdown:
        markdown = markdown.replace("<!-- config-reference -->", config_table())
    if "<!-- benchmarks-latest -->" in markdown:
        assets = posixpath.relpath(BENCH_ASSETS, posixpath.dirname(page.file.src_uri) or ".")
        markdown = markdown.replace("<!-- benchmarks-latest -->", latest_benchmark(assets))
    if "<!-- module-list -->" in markdown:
        markdown = markdown.replace("<!-- module-list -->", module_list())
    return markdown


# -- generated content ----------------------------------------------------------------------

def module_list() -> str:
    rows = ["| module | distribution | summary |", "|---|---|---|"]
    for module in public_modules():
        doc = (importlib.import_module(module).__doc__ or "").strip().splitlines()
        summary = _cell(doc[0]) if doc else ""
        rows.append(f"| [`{module}`]({module}.md) | {distribution_of(module)} | {summary} |")
    return "\n".join(rows)


def console_scripts() -> dict[str, str]:
    """``{prog: "module:function"}`` from every package's ``[project.scripts]``."""
    scripts = {}
    for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml")):
        data = tomllib.loads(pyproject.read_text())
        scripts.update(data.get("project", {}).get("scripts", {}))
    return scripts


def parser_for(prog: str) -> argparse.ArgumentParser | None:
    target = console_scripts().get(prog)
    if target is None:
        log.warning("cli-reference: no console script %r in packages/*/pyproject.toml", prog)
        return None
    module = importlib.import_module(target.partition(":")[0])
    build = getattr(module, "build_parser", None)
    if build is None:
        log.warning("cli-reference: %s has no build_parser() for %r", module.__name__, prog)
        return None
    return build()


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _actions(parser: argparse.ArgumentParser):
    # Flags hidden from --help (help=SUPPRESS, e.g. --worker-process) are not for users.
    return [a for a in parser._actions
            if not isinstance(a, argparse._HelpAction) and a.help != argparse.SUPPRESS]


def cli_table(prog: str) -> str:
    parser = parser_for(prog)
    if parser is None:
        return f"*(no parser found for `{prog}`)*"
    rows = [f"`{parser.format_usage().strip().removeprefix('usage: ')}`", "",
            "| flag | value | default | description |", "|---|---|---|---|"]
    for action in _actions(parser):
        if action.option_strings:
            flag = ", ".join(f"`{s}`" for s in action.option_strings)
        else:
            flag = f"`{action.metavar or action.dest}` (positional)"
        if action.choices:
            value = " \\| ".join(f"`{c}`" for c in action.choices)
        elif action.nargs == 0:
            value = ""
        else:
            value = f"`{action.metavar or (action.type.__name__ if action.type else 'str')}`"
            value = value.replace("`<lambda>`", "`value`")
        default = action.default
        if action.nargs == 0 or default in (None, argparse.SUPPRESS):
            default_text = ""
        else:
            default_text = f"`{default}`"
        help_text = _cell((action.help or "") % {"default": default, "prog": prog}
                          if action.help and "%(" in action.help else action.help or "")
        field = _field_of_dest(action.dest)
        if not help_text and field is None:
            log.warning("cli-reference: %s %s has no help text", prog, flag)
        if field is not None:
            help_text += f" (`ServerConfig.{field}`)"
        rows.append(f"| {flag} | {value} | {default_text} | {help_text.strip()} |")
    return "\n".join(rows)


def _config_class():
    try:
        from cymongoose.serving.config import ServerConfig
    except ImportError as exc:
        log.warning("config-reference: cannot import ServerConfig: %s", exc)
        return None
    return ServerConfig


def _field_of_dest(dest: str) -> str | None:
    """The ServerConfig field an argparse ``dest`` sets (``timeout_keep_alive`` ->
    ``keep_alive_timeout_s``), from the CLI module's own mapping where it has one."""
    try:
        from cymongoose.serving import cli
    except ImportError:
        mapping: dict[str, str] = {}
    else:
        mapping = cli.FIELD_OF_DEST
    field = mapping.get(dest, dest)
    return field if field in _config_fields() else None


def _config_fields() -> dict[str, dataclasses.Field]:
    cls = _config_class()
    return {f.name: f for f in dataclasses.fields(cls)} if cls else {}


def _field_docs(cls) -> dict[str, str]:
    """Parse the ``Fields:`` (or ``Attributes:``) block: ``name[, name]: text`` entries."""
    doc = inspect.getdoc(cls) or ""
    match = re.search(r"^(?:Fields|Attributes):\n((?:[ \t]+.*\n?|\n)+)", doc, re.M)
    out: dict[str, str] = {}
    if not match:
        return out
    current: list[str] = []
    for line in match.group(1).splitlines():
        entry = re.match(r"^ {4}([\w, ]+):\s*(.*)$", line)
        if entry:
            current = [n.strip() for n in entry.group(1).split(",")]
            for name in current:
                out[name] = entry.group(2)
        elif line.strip() and current:
            for name in current:
                out[name] += " " + line.strip()
    return out


def _default_text(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        return f"`{field.default!r}`"
    factory = field.default_factory
    if factory is not dataclasses.MISSING:
        return f"`{factory.__name__}()`"
    return "required"


def config_table() -> str:
    cls = _config_class()
    if cls is None:
        return "*(ServerConfig is not available)*"
    docs = _field_docs(cls)
    flags: dict[str, list[str]] = {}
    for prog in console_scripts():
        parser = parser_for(prog)
        for action in _actions(parser) if parser else []:
            if action.option_strings:
                flags.setdefault(_field_of_dest(action.dest) or "", []).extend(
                    f"`{s}` ({prog.removeprefix('cymongoose-')})" for s in action.option_strings)
    rows = ["| field | type | default | CLI | description |", "|---|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        if f.name not in docs:
            log.warning("config-reference: ServerConfig.%s is not described in the "
                        "class docstring's Fields: section", f.name)
        cli = "<br>".join(dict.fromkeys(flags.get(f.name, [])))
        rows.append(f"| `{f.name}` | `{_cell(f.type)}` | {_default_text(f)} | {cli} | "
                    f"{_cell(docs.get(f.name, ''))} |")
    return "\n".join(rows)


def constructor_table(dotted: str) -> str:
    """Parameters of a class constructor or function, with the docstring's descriptions."""
    import griffe

    module_name, _, attr = dotted.rpartition(".")
    obj = getattr(importlib.import_module(module_name), attr)
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        log.warning("constructor: no signature for %s", dotted)
        return ""
    described: dict[str, str] = {}
    doc = inspect.getdoc(obj) or ""
    parsed = griffe.Docstring(doc, parser="google").parse(warnings=False)
    for section in parsed:
        if section.kind.value in ("parameters", "attributes"):
            for item in section.value:
                for name in item.name.split(","):  # "workers, threads: ..." describes both
                    described[name.strip()] = _ROLE.sub(r"`\1`", item.description)
    rows = [f"`{dotted}{_plain_signature(signature)}`", "",
            "| parameter | type | default | description |", "|---|---|---|---|"]
    for name, param in signature.parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) and (
            name not in described
        ):
            continue
        annotation = "" if param.annotation is param.empty else f"`{_cell(param.annotation)}`"
        default = "required" if param.default is param.empty else f"`{param.default!r}`"
        rows.append(f"| `{name}` | {annotation} | {default} | {_cell(described.get(name, ''))} |")
    return "\n".join(rows)


def _plain_signature(signature: inspect.Signature) -> str:
    params = [p.replace(annotation=p.empty) for n, p in signature.parameters.items()
              if n != "self"]
    return str(signature.replace(parameters=params, return_annotation=signature.empty))


BENCH_RESULTS = ROOT / "benchmarks" / "results"
BENCH_ASSETS = "assets/benchmarks"  # where the charts go in the site


def _bench_charts_module():
    """benchmarks/charts.py (a script, not a package; matplotlib is not needed to import it)."""
    spec = importlib.util.spec_from_file_location("bench_charts",
                                                  ROOT / "benchmarks" / "charts.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def latest_run() -> Path | None:
    """The JSON of the run the benchmarks page shows (charts.latest_run), or None."""
    return _bench_charts_module().latest_run(BENCH_RESULTS)


def benchmark_charts() -> list[Path]:
    """The chart images that exist of the run the page shows (``<stem>-<workload>.svg``
    and ``.png`` for each of its workloads)."""
    charts = _bench_charts_module()
    run = charts.latest_run(BENCH_RESULTS)
    if run is None:
        return []
    workloads = charts.bars_by_workload(charts.load(run))
    return [p for w in workloads for p in charts.chart_paths(run, w) if p.exists()]


def latest_benchmark(assets: str) -> str:
    """The chosen run's .md, headings demoted, its chart links pointing at ``assets``."""
    run = latest_run()
    md = run.with_suffix(".md") if run else None
    if md is None or not md.exists():
        log.warning("benchmarks-latest: no run (JSON and .md) in benchmarks/results/")
        return "*(no results yet)*"
    text = md.read_text()
    charts = {p.name for p in benchmark_charts()}
    if not any(name.endswith(".svg") for name in charts):
        log.warning("benchmarks-latest: %s has no charts: python benchmarks/charts.py %s",
                    run.name, run.relative_to(ROOT))
    text = re.sub(r"\]\(([^)/]+)\)", lambda m: f"]({assets}/{m.group(1)})"
                  if m.group(1) in charts else m.group(0), text)
    # Demote the file's headings below the page's own "Latest results" heading.
    text = re.sub(r"^(#+) ", lambda m: "#" * min(len(m.group(1)) + 2, 6) + " ", text,
                  flags=re.M)
    return f"From `benchmarks/results/{md.name}`:\n\n{text}"
