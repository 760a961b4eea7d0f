"""The compact model-size syntax of a size frontier (``run.sh --frontier SIZES``).

SIZES is a comma-separated list; each size is one or more fields, each at most once:

* ``LxH``  layers x hidden units (only as the first field): ``1x16``, ``2x64``;
* ``lN``   layers (default 1);
* ``hN``   hidden units of the LSTM (required, here or in ``LxH``);
* ``eN``   embedding size (default: the output size, so input and output embeddings tie);
* ``pN``   projection (LSTMP ``proj_dim``, smaller than hidden): the recurrent and
  output state has N units, so the output layer is N x V instead of H x V.

``1x16`` = ``h16`` = ``l1h16e16``; ``e64h64`` = ``1x64``; ``1x512p64`` is a 512-cell
LSTM projected to 64, with a tied 64-dimensional embedding (what lets a V = 10k model
go small); ``h128e32`` unties (an embedding of 32, an output layer of 128).
The size's name (its folder under ``exp/frontier/``) is the text as given; two
spellings of one architecture are refused.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

TRUST_MODES = ("none", "prob", "rank", "margin")
_SIZE = re.compile(r"(?:(\d+)x(\d+))?((?:[lhep]\d+)*)")
_FIELD = re.compile(r"([lhep])(\d+)")


@dataclass(frozen=True)
class Size:
    """One architecture of the frontier: ``name`` as given, and the model config
    keys it sets (``num_layers``, ``hidden_dim``, ``embed_dim``, ``proj_dim``; 0 =
    no projection)."""

    name: str
    num_layers: int
    hidden_dim: int
    embed_dim: int
    proj_dim: int

    def overrides(self) -> list[str]:
        """The ``--key value`` words that set this size on train-lm / distill."""
        return ["--num-layers", str(self.num_layers), "--hidden-dim", str(self.hidden_dim),
                "--embed-dim", str(self.embed_dim), "--proj-dim", str(self.proj_dim)]

    def arch(self) -> tuple[int, int, int, int]:
        return self.num_layers, self.hidden_dim, self.embed_dim, self.proj_dim


def parse_size(text: str, where: str = "size") -> Size:
    """One size (see the module docstring); ValueError naming ``where`` when malformed."""
    bad = (f"{where} {text!r}: expected LxH and/or fields lN hN eN pN "
           "(e.g. 1x16, e64h64, 1x512p64)")
    m = _SIZE.fullmatch(text)
    if not text or m is None:
        raise ValueError(bad)
    fields: dict[str, int] = {}
    if m.group(1):
        fields["l"], fields["h"] = int(m.group(1)), int(m.group(2))
    for key, num in _FIELD.findall(m.group(3)):
        if key in fields:
            raise ValueError(f"{where} {text!r}: {key} given twice")
        fields[key] = int(num)
    if "h" not in fields:
        raise ValueError(f"{where} {text!r}: no hidden size (LxH or hN)")
    layers, hidden, proj = fields.get("l", 1), fields["h"], fields.get("p", 0)
    if layers < 1 or hidden < 1 or fields.get("e", 1) < 1:
        raise ValueError(f"{where} {text!r}: layers, hidden and embedding must be at least 1")
    if "p" in fields and not 0 < proj < hidden:
        raise ValueError(f"{where} {text!r}: the projection must be between 1 and hidden - 1 "
                         f"(got p{proj} with h{hidden})")
    return Size(text, layers, hidden, fields.get("e", proj or hidden), proj)


def parse_sizes(text: str) -> list[Size]:
    """SIZES (comma-separated) in the order given; ValueError on a malformed, empty
    or repeated size (the same architecture under two spellings included)."""
    parts = text.split(",")
    sizes: list[Size] = []
    for k, part in enumerate(parts, 1):
        size = parse_size(part.strip(), f"--frontier: size {k}")
        same = next((s for s in sizes if s.arch() == size.arch()), None)
        if same is not None:
            raise ValueError(f"--frontier: {size.name!r} is the same size as {same.name!r}")
        sizes.append(size)
    return sizes


def pick_sizes(text: str, sizes: list[Size], option: str) -> list[str]:
    """The names in ``text`` (comma-separated; ``all`` or empty: every size), each
    one of ``sizes``; ValueError naming ``option`` otherwise."""
    names = [s.name for s in sizes]
    if text in ("", "all"):
        return names
    picked = [t.strip() for t in text.split(",")]
    for t in picked:
        if t not in names:
            raise ValueError(f"{option}: {t!r} is not one of the --frontier sizes "
                             f"({', '.join(names)})")
    return picked


def parse_trust_modes(text: str, option: str = "--frontier-trust") -> list[str]:
    """Comma-separated trust modes, each once; ValueError on an unknown one."""
    modes = [t.strip() for t in text.split(",")]
    for t in modes:
        if t not in TRUST_MODES:
            raise ValueError(f"{option}: unknown trust mode {t!r} ({' | '.join(TRUST_MODES)})")
    if len(set(modes)) != len(modes):
        raise ValueError(f"{option}: a trust mode is given twice ({text})")
    return modes
