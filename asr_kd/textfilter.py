"""Rewrite rules applied to hypothesis text before LM scoring only.

A rules file maps recogniser output into the LM's conventions (e.g. a
PTB-style LM wants ``mr.`` for ``mister`` and ``N`` for spelled numbers);
WER is always computed on the original text.  Format, one rule per line,
applied in file order, ``#`` starts a comment::

    lowercase                    # or: uppercase
    mister => mr.                # word sequence => word sequence (whole words)
    re:\\b(one|two|three)\\b => N  # Python regular expression => replacement

Rules may also be given inline, separated by ``;`` (``"lowercase; mister => mr."``).
In a file, ``#`` starts a comment at the start of a line or after whitespace
(so ``[#]`` inside a regular expression is kept).  The right side of a word
rule is literal text; the right side of a ``re:`` rule is a ``re.sub``
template (``\\1`` refers to a group).
"""
from __future__ import annotations

import os
import re
from typing import Callable

from .errors import InputError
from .fileio import read_lines


_COMMENT = re.compile(r"(?:^|\s)#.*$")


def _compile(rule: str, path: str | None, line: int | None) -> Callable[[str], str]:
    if rule in ("lowercase", "lower"):
        return str.lower
    if rule in ("uppercase", "upper"):
        return str.upper
    if "=>" not in rule:
        raise InputError(f"expected 'lowercase', 'uppercase' or 'FROM => TO', got {rule!r}",
                         path, line)
    lhs, rhs = (x.strip() for x in rule.split("=>", 1))
    if not lhs or lhs == "re:":
        raise InputError(f"empty left side of '=>' in {rule!r}", path, line)
    if lhs.startswith("re:"):
        try:
            pat = re.compile(lhs[3:])
            pat.sub(rhs, "")  # a bad template (e.g. unknown group) fails here, not mid-run
        except re.error as e:
            raise InputError(f"bad regular expression rule {rule!r} ({e})", path, line) from None
        repl = rhs
    else:
        pat = re.compile(r"(?<!\S)" + r"\s+".join(map(re.escape, lhs.split())) + r"(?!\S)")
        repl = lambda m: rhs  # noqa: E731 -- literal text, no backslash escapes
    return lambda s: " ".join(pat.sub(repl, s).split())


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
                line = _COMMENT.sub("", line).strip()
                if line:
                    rules.append(_compile(line, spec, n))
            return cls(rules)
        return cls([_compile(r.strip(), None, None) for r in spec.split(";") if r.strip()])
