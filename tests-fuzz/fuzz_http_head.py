"""Fuzz target: the core's one-pass request head parser against mongoose's mg_http_parse.

    python tests-fuzz/fuzz_http_head.py CORPUS_DIR... [libFuzzer flags]

The core's HTTP server parses the common request head itself (httpparse.pyx
``_parse_head``) and leaves every other head to mongoose's ``mg_http_parse``, whose
rules decide what is accepted or refused. Each input is given to both (through the
module's private ``_http_head_agrees``): where the fast parser takes a head, it must
give the same head length and the same method, target, query, protocol, headers, body
length and spans as mongoose, else the target raises and atheris reports the input.
Inputs are mutated from the core_http seeds (complete request heads) and ``http.dict``.
"""

from __future__ import annotations

import sys

import atheris
import feedback
from cymongoose import _mongoose

agrees = _mongoose._http_head_agrees


def test_one_input(data: bytes) -> None:
    if not agrees(data):
        raise AssertionError(f"_parse_head and mg_http_parse disagree on {data[:300]!r}")
    # Coverage for what the C side did: which of the head's ends the input reached.
    feedback.observe("shape", (data.count(b"\r\n"), b"\r\n\r\n" in data, len(data) // 64))


def main() -> None:
    atheris.Setup(sys.argv, atheris.instrument_func(test_one_input))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
