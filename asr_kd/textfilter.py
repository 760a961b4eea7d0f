"""Rewrite rules applied to hypothesis text before LM scoring only.

A rules file maps recogniser output into the LM's conventions (e.g. a
PTB-style LM wants ``mr.`` for ``mister`` and ``N`` for spelled numbers);
WER is always computed on the original text.  Format, one rule per line,
applied in file order, ``#`` starts a comment::

    lowercase                    # or: uppercase
    mister => mr.                # word sequence => word sequence (whole words)
    re:\\b(one|two|three)\\b => N  # Python regular expression => replacement

Rules may also be given inline, separated by ``;`` (``"lowercase; mister => mr."``).
"""
from __future__ import annotations

import os
import re
from typing import Callable

from .errors import InputError
from .fileio import read_lines


def _compile(rule: str, path: str | None, line: int | None) -> Callable[[str], str]:
    if rule in ("lowercase", "lower"):
        return str.lower
    if rule in ("uppercase", "upper"):
        return str.upper
    if "=>" not in rule:
        raise InputError("expected 'lowercase', 'uppercase' or 'FROM => TO'", path, line)
    lhs, rhs = (x.strip() for x in rule.split("=>", 1))
    if not lhs:
        raise InputError("empty left side of '=>'", path, line)
    if lhs.startswith("re:"):
        try:
            pat = re.compile(lhs[3:])
        except re.error as e:
            raise InputError(f"bad regular expression ({e})", path, line) from None
    else:
        pat = re.compile(r"(?<!\S)" + r"\s+".join(map(re.escape, lhs.split())) + r"(?!\S)")
    return lambda s: " ".join(pat.sub(rhs, s).split())


class TextFilter:
    """Callable ``str -> str`` applying the rules in order; identity with no rules."""

    def __init__(self, rules: list[Callable[[str], str]] | None = None):
        self.rules = rules or []

    def __call__(self, text: str) -> str:
        for r in self.rules:
            text = r(text)
        return text

    @classmethod
    def from_spec(cls, spec: str | None) -> "TextFilter":
        """Rules from a file path, or inline rules separated by ``;``."""
        if not spec:
            return cls()
        if os.path.isfile(spec):
            rules = []
            for n, line in read_lines(spec):
                line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("re:") else line.strip()
                if line:
                    rules.append(_compile(line, spec, n))
            return cls(rules)
        return cls([_compile(r.strip(), None, None) for r in spec.split(";") if r.strip()])
