"""Griffe extension used by mkdocstrings: tidy docstrings written for ``help()``.

- Cython's ``embedsignature`` puts ``Name.method(self, a, b=1) -> T`` as the first line of
  every docstring of the compiled module; the rendered signature (from the ``.pyi`` stubs)
  already says that, so the line is dropped.
- Sphinx roles (``:class:`X```, ``:meth:`y```) become Markdown code spans.
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:class|meth|func|attr|mod|obj|exc|data|const):`~?([^`]+)`")


class Cleanup(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        docstring = obj.docstring
        if docstring is None:
            return
        text = docstring.value
        first, _, rest = text.partition("\n")
        # "Manager.listen(self, url, ...) -> Connection" or "Manager(handler=None, ...)"
        if re.match(rf"^[\w.]*\b{re.escape(obj.name)}\(.*\)( -> .+)?$", first.strip()):
            text = rest.lstrip("\n")
        text = _ROLE.sub(r"`\1`", text)
        docstring.value = text
