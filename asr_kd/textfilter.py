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
template (``\\1`` refers to a group).  Every rule sees, and the filter returns,
text whose runs of whitespace are one space, without spaces at the ends.

Named patterns.  ``define NAME = PATTERN`` (``NAME`` in capitals, digits and
``_``) names a regular expression; ``{NAME}`` in the left side of a later
``re:`` rule (or ``define``) stands for ``(?:PATTERN)``.  A ``{NAME}`` that is
not defined above it is an error::

    define UNIT = one|two|three
    re:\\b{UNIT}( {UNIT})+\\b => N

Blocks.  A comment line of the form ``# [name] what the block is for`` starts
a named block; the rules up to the next such header belong to it (rules
above the first header belong to no block and always apply; a name may head
one block only; ``define`` lines are shared by all blocks).  A spec may
follow the file name with block switches, separated by whitespace, to
ablate or isolate parts of a file::

    --text-filter "conf/whisper_to_ptb.rules -numbers -abbrev"   # all but these blocks
    --text-filter "conf/whisper_to_ptb.rules +case +numbers"     # only these blocks

``-name`` leaves a block out, ``+name`` keeps only the ``+`` blocks (both
may be combined; an unknown name is an error that lists the blocks).
``python -m asr_kd.textfilter --list FILE`` lists a file's blocks;
``python -m asr_kd.textfilter SPEC < text`` prints each input line filtered.
"""
from __future__ import annotations

import os
import re
import sys
from typing import Callable, Iterable

from .errors import InputError
from .fileio import read_lines


_COMMENT = re.compile(r"(?:^|\s)#.*$")
_BLOCK = re.compile(r"^\s*#\s*\[([A-Za-z][\w.-]*)\](.*)$")
_DEFINE = re.compile(r"^define\s+([A-Za-z_]\w*)\s*=(?!>)\s*(.*)$")
_NAME_REF = re.compile(r"\{([A-Z][A-Z0-9_]*)\}")
_SWITCHES = re.compile(r"^(.*?)((?:\s+[+-][A-Za-z][\w.-]*)+)\s*$", re.S)


def _expand(pattern: str, defs: dict[str, str], rule: str, path, line) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in defs:
            raise InputError(f"undefined pattern name {{{name}}} in {rule!r}", path, line)
        return f"(?:{defs[name]})"
    return _NAME_REF.sub(sub, pattern)


def _define(rule: str, defs: dict[str, str], path, line) -> None:
    m = _DEFINE.match(rule)
    name, pattern = m.group(1), m.group(2).strip()
    if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
        raise InputError(f"a pattern name is capitals, digits and '_', got {name!r}", path, line)
    if not pattern:
        raise InputError(f"empty pattern in {rule!r}", path, line)
    pattern = _expand(pattern, defs, rule, path, line)
    try:
        re.compile(pattern)
    except re.error as e:
        raise InputError(f"bad regular expression in {rule!r} ({e})", path, line) from None
    defs[name] = pattern


def _compile(rule: str, path: str | None, line: int | None,
             defs: dict[str, str] | None = None) -> Callable[[str], str]:
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
        pattern = _expand(lhs[3:], defs or {}, rule, path, line)
        try:
            pat = re.compile(pattern)
            pat.sub(rhs, "")  # a bad template (e.g. unknown group) fails here, not mid-run
        except re.error as e:
            raise InputError(f"bad regular expression rule {rule!r} ({e})", path, line) from None
        repl = rhs
    else:
        pat = re.compile(r"(?<!\S)" + r"\s+".join(map(re.escape, lhs.split())) + r"(?!\S)")
        repl = lambda m: rhs  # noqa: E731 -- literal text, no backslash escapes

    def apply(s: str) -> str:
        out, n = pat.subn(repl, s)
        return " ".join(out.split()) if n else s  # input is already normalised (__call__)
    return apply


class _Block:
    __slots__ = ("name", "about", "line", "rules")

    def __init__(self, name: str | None, about: str = "", line: int | None = None):
        self.name, self.about, self.line = name, about, line
        self.rules: list[Callable[[str], str]] = []


def _parse_file(path: str) -> list[_Block]:
    blocks = [_Block(None)]
    defs: dict[str, str] = {}
    seen: dict[str, int] = {}
    for n, raw in read_lines(path):
        m = _BLOCK.match(raw)
        if m:
            name = m.group(1)
            if name in seen:
                raise InputError(f"block [{name}] already started at line {seen[name]}", path, n)
            seen[name] = n
            blocks.append(_Block(name, _COMMENT.sub("", m.group(2)).strip(" -:\t"), n))
            continue
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        if _DEFINE.match(line):
            _define(line, defs, path, n)
        else:
            blocks[-1].rules.append(_compile(line, path, n, defs))
    return blocks


def _parse_inline(spec: str) -> list[Callable[[str], str]]:
    rules: list[Callable[[str], str]] = []
    defs: dict[str, str] = {}
    for r in spec.split(";"):
        r = r.strip()
        if not r:
            continue
        if _DEFINE.match(r):
            _define(r, defs, None, None)
        else:
            rules.append(_compile(r, None, None, defs))
    return rules


def split_spec(spec: str) -> tuple[str, list[str]]:
    """``"FILE -a +b"`` -> ``("FILE", ["-a", "+b"])`` when FILE is a file; else ``(spec, [])``."""
    if os.path.isfile(spec):
        return spec, []
    m = _SWITCHES.match(spec)
    if m and m.group(1).strip() and os.path.isfile(m.group(1).strip()):
        return m.group(1).strip(), m.group(2).split()
    return spec, []


def list_blocks(path: str) -> list[tuple[str, int, str]]:
    """``(name, number of rules, description)`` of each named block of a rules file."""
    return [(b.name, len(b.rules), b.about) for b in _parse_file(path) if b.name is not None]


class TextFilter:
    """Callable ``str -> str`` applying the rules in order; identity with no rules.

    ``blocks`` names the blocks in use (file rules only), in file order.
    """

    def __init__(self, rules: list[Callable[[str], str]] | None = None,
                 blocks: list[str] | None = None):
        self.rules = rules or []
        self.blocks = blocks or []

    def __call__(self, text: str) -> str:
        if not self.rules:
            return text
        text = " ".join(text.split())
        for r in self.rules:
            text = r(text)
        return " ".join(text.split())

    @classmethod
    def from_file(cls, path: str, skip: Iterable[str] = (),
                  only: Iterable[str] | None = None) -> "TextFilter":
        """The rules of a file, without the blocks in ``skip`` and, when ``only`` is
        given, of the named blocks only those in ``only`` (unnamed rules always apply)."""
        blocks = _parse_file(path)
        names = [b.name for b in blocks if b.name is not None]
        skip, only = set(skip), (None if only is None else set(only))
        for name in sorted(skip | (only or set())):
            if name not in names:
                raise InputError(f"no block [{name}] (blocks: {', '.join(names) or 'none'})",
                                 path)
        keep = [b for b in blocks
                if b.name is None or (b.name not in skip and (only is None or b.name in only))]
        return cls([r for b in keep for r in b.rules],
                   [b.name for b in keep if b.name is not None])

    @classmethod
    def from_spec(cls, spec: str | None) -> "TextFilter":
        """Rules from a file path (optionally followed by ``-block``/``+block``
        switches), or inline rules separated by ``;``."""
        if not spec:
            return cls()
        path, switches = split_spec(spec)
        if os.path.isfile(path):
            skip = [s[1:] for s in switches if s[0] == "-"]
            only = [s[1:] for s in switches if s[0] == "+"] or None
            return cls.from_file(path, skip, only)
        return cls(_parse_inline(spec))


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m asr_kd.textfilter",
                                 description="List a rules file's blocks, or filter stdin.")
    ap.add_argument("spec", help="rules file [-block ...] [+block ...], or inline rules")
    ap.add_argument("--list", action="store_true", help="list the blocks of the rules file")
    args = ap.parse_args(argv)
    try:
        if args.list:
            path, _ = split_spec(args.spec)
            if not os.path.isfile(path):
                raise InputError("not a file", path)
            for name, n, about in list_blocks(path):
                print(f"{name}\t{n}\t{about}")
            return 0
        f = TextFilter.from_spec(args.spec)
        for line in sys.stdin:
            print(f(line.rstrip("\n")))
    except InputError as e:
        print(f"{ap.prog}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
