"""Mutation fuzzing of every input reader: bad input must end in one clean InputError.

Each *target* is one reader fed one real on-disk layout.  A case writes the
target's valid fixture into a fresh folder, mutates one of its files with 1-3
random byte/line edits (lines deleted, doubled or swapped, a random truncation,
NUL / 0xFF / broken UTF-8 / lone CR / CRLF / a BOM in the middle / tabs,
1 MB lines, numbers turned into ``nan``/``inf``/``1e999``/``-``, ids doubled or
removed, JSON brackets dropped or values of the wrong type, gzip bytes
damaged...) or, rarely, deletes one file of a multi-file layout, calls the
public reader and consumes the whole result.

Outcomes:

- ``ok``: the reader returned, and what it returned is well formed (finite
  float scores, unique non-empty utterance ids, string texts...);
- ``input error``: an :class:`InputError` whose message is one non-empty line
  naming the file (for folder layouts: a path inside the case folder);
- ``crash``: anything else (another exception, a malformed error message, a
  malformed result).  Each crash keeps its exception, traceback and a repro
  folder, shrunk by deleting lines while the same exception type persists.

Usable as a module (:func:`run_fuzz`) and as a script::

    python tests/reliability/fuzz_readers.py --cases 20000 --seed 0

prints a table (target, cases, ok, input errors, crashes, slowest case) and
exits 1 on any crash.  A case is reproducible from its seed, target and index
(``--only TARGET --first I --cases 1``).
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import random
import re
import shutil
import struct
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:          # nbest_fixtures lives in tests/
    sys.path.insert(0, str(_TESTS))
if str(_TESTS.parent) not in sys.path:   # run as a script from anywhere
    sys.path.insert(0, str(_TESTS.parent))

import kaldiio  # noqa: E402
import numpy as np  # noqa: E402

from asr_kd.corpus import read_sentences  # noqa: E402
from asr_kd.errors import InputError  # noqa: E402
from asr_kd.nbest import NBest, read_nbest, read_refs  # noqa: E402
from asr_kd.vocab import WordVocab  # noqa: E402
from nbest_fixtures import UTTS, espnet_folder, kaldi_folder, write_text  # noqa: E402

LONG_LINE = 1 << 20     # bytes in a "very long line" mutation


# ------------------------------------------------------------- fixtures --
# Each builder writes a valid fixture into an empty folder and returns the
# path (relative to that folder) that the reader is given.

def _corpus_plain(d: Path) -> str:
    write_text(d / "corpus.txt", "the cat sat on the mat\na dog ran\n\n  spaced   words \n"
                                 "numbers 3 and 4\nthe end\n")
    return "corpus.txt"


def _corpus_kaldi(d: Path) -> str:
    write_text(d / "text", "utt001 the cat sat\nutt002 a dog\nutt003\nutt004 numbers 3 4\n"
                           "utt005 the end\n")
    return "text"


def _vocab(d: Path) -> str:
    write_text(d / "words.txt", "<eps> 0\n<s> 1\n</s> 2\n<unk> 3\nthe 4\ncat 5\nsat 7\n#0 8\n")
    return "words.txt"


def _refs_text(d: Path) -> str:
    write_text(d / "text", "1272-128104-0000 A B\n1272-128104-0001 [noise] X\n"
                           "1272-128104-0002\n1272-128104-0003 Y Z\n")
    return "text"


def _refs_trn(d: Path) -> str:
    write_text(d / "ref.trn", "A B\t(1272-1272-128104-0000)\n[noise] X (1272-1272-128104-0001)\n"
                              "(1272-1272-128104-0002)\nY Z (1272-1272-128104-0003)\n")
    return "ref.trn"


def _refs_trn_detected(d: Path) -> str:
    write_text(d / "ref_wer", "A B (spk_u1)\nC (spk_u2)\n(spk_u3)\n")
    return "ref_wer"


def _kaldi_text(d: Path) -> str:
    kaldi_folder(d / "nb")          # words_text + kaldiio "key [ cost ]" archives
    return "nb"


def _kaldi_int_jobs(d: Path) -> str:
    """Two ``archives.<job>/`` folders, integer ``words`` + words.txt, ``key cost`` lines."""
    symbols = ["<eps>", "hello", "world", "word", "a", "b", "c"]
    write_text(d / "words.txt", "".join(f"{w} {i}\n" for i, w in enumerate(symbols)))
    for job, utts in ((1, UTTS[:1]), (2, UTTS[1:])):
        f = d / "nb" / f"archives.{job}"
        words, ac, lm, nolm = [], [], [], []
        for utt, hyps in utts:
            for i, (text, am, lm0) in enumerate(hyps, 1):
                ids = [str(symbols.index(w)) for w in text.split()]
                words.append(" ".join([f"{utt}-{i}"] + ids) + "\n")
                ac.append(f"{utt}-{i} {-am}\n")
                lm.append(f"{utt}-{i} {-lm0}\n")
                nolm.append(f"{utt}-{i} {-lm0 / 2}\n")
        write_text(f / "words", "".join(words))
        write_text(f / "acwt", "".join(ac))
        write_text(f / "lmwt.withlm", "".join(lm))
        write_text(f / "lmwt.nolm", "".join(nolm))
    return "nb"


def _kaldi_binary(d: Path) -> str:
    """kaldiio binary vectors for ``acwt``, Kaldi binary BaseFloat for ``lmwt.withlm``."""
    f = kaldi_folder(d / "nb")
    with kaldiio.WriteHelper(f"ark:{f / 'acwt'}") as w:
        for utt, hyps in UTTS:
            for i, h in enumerate(hyps, 1):
                w[f"{utt}-{i}"] = np.array([-h[1]], dtype=np.float32)
    (f / "lmwt.withlm").write_bytes(b"".join(
        f"{utt}-{i} ".encode() + b"\0B\x04" + struct.pack("<f", -h[2])
        for utt, hyps in UTTS for i, h in enumerate(hyps, 1)))
    return "nb"


_ESPNET_UTTS = [
    ("1272-128104-0000", [("A B", -46.6314, -0.3654, -0.0041), ("A C", -47.0, -0.5, -1.0),
                          ("", -60.0, -9.0, -8.0)]),
    ("1272-128104-0001", [("X", -10.0, -1.0, -2.0)]),
]


def _espnet(d: Path) -> str:
    espnet_folder(d / "dec", _ESPNET_UTTS)
    return "dec"


def _srilm1(d: Path) -> str:
    write_text(d / "nb" / "utt-1.score.gz",
               "NBestList1.0\n(-2048) <s> hello world </s>\n(-3072)\n")
    write_text(d / "nb" / "utt-2.score", "NBestList1.0\n(-100.5) a b c\n")
    return "nb"


def _srilm2(d: Path) -> str:
    write_text(d / "nb" / "a.nbest", (
        "NBestList2.0\n"
        "(-300) <s> ( st: 0.00 et: 0.05 g: 0 a: -10 ) hello ( st: 0.06 et: 0.50 g: -100 a: -90 )"
        " hh ( st: 0.06 et: 0.20 g: 0 a: -40 ) world ( st: 0.51 et: 0.90 g: -50 a: -50 )\n"
        "(-400) <s> ( st: 0.00 et: 0.05 g: 0 a: -10 )"
        " hello ( st: 0.06 et: 0.90 g: -120 a: -95 )\n"))
    return "nb"


def _srilm3(d: Path) -> str:
    write_text(d / "n" / "u1.txt", "-12.5 -3 2 <s> a b </s>\n-13 -4 0\n")
    write_text(d / "n" / "u2", "-1 -2 1 c\n")
    write_text(d / "list", "n/u2\nn/u1.txt\n")
    return "list"


def _json_hyporadise(d: Path) -> str:
    write_text(d / "hp.json", json.dumps([
        {"input": ["a b", "a c", ""], "output": "a b", "score": [-1, -2.5, -9],
         "am_score": [-0.5, -1, -3], "id": "utt-1"},
        {"input": ["x"], "output": "y"},
        {"input": [], "output": "z"},
    ], indent=1))
    return "hp.json"


def _json_mlm(d: Path) -> str:
    hyps = {f"hyp_{i}": {"score": -float(i), "text": f"w{i}", "am": -2.0 * i} for i in (10, 2, 1)}
    write_text(d / "mlm.json.gz", json.dumps({"u1": {"ref": "w1", **hyps}, "u2": {}}, indent=1))
    return "mlm.json.gz"


def _nemo(d: Path) -> str:
    write_text(d / "preds.tsv", "hello world\t-1.5\nhello word\t-2\n\t-9.25\na b\t-3\n")
    write_text(d / "manifest.json", "".join(
        json.dumps({"audio_filepath": p, "duration": 1.0, "text": f"ref {i}"}) + "\n"
        for i, p in enumerate(("/data/x/1272-0001.wav", "/data/y/1272-0002.flac"))))
    return "preds.tsv"


def _jsonl_lines() -> str:
    rows = [{"utt": "u-1", "ref": "a b", "hyps": [
                {"text": "a b", "scores": {"am": -1.5, "lm0": -2.0}},
                {"text": "", "scores": {"am": -9.0, "lm0": -0.5}}]},
            {"utt": "u-2", "hyps": []},
            {"utt": "u-3", "ref": None, "hyps": [{"text": "c", "scores": {"am": -3.25}}]}]
    return "".join(json.dumps(r) + "\n" for r in rows)


def _jsonl(d: Path) -> str:
    write_text(d / "nb.jsonl", _jsonl_lines())
    return "nb.jsonl"


def _jsonl_gz(d: Path) -> str:
    write_text(d / "nb.jsonl.gz", _jsonl_lines())
    return "nb.jsonl.gz"


# --------------------------------------------------------------- readers --
# Each reader fully consumes what it reads, checks it is well formed (a
# malformed result raises BadResult, which counts as a crash) and returns it as
# plain data, so tests can compare two reads.

class BadResult(AssertionError):
    """A reader returned without error but its result breaks the data model."""


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise BadResult(what)


def _finite(x) -> bool:
    return isinstance(x, float) and math.isfinite(x)


def check_nbest(nb) -> list:
    """Walk an NBest; return it as ``[(utt, ref, [(text, scores)])]``."""
    _check(isinstance(nb, NBest), f"expected an NBest, got {type(nb).__name__}")
    ids = [u.utt for u in nb]
    _check(all(isinstance(u, str) and u for u in ids), "an utterance id is not a non-empty str")
    _check(len(set(ids)) == len(ids), "utterance ids repeat")
    for u in nb:
        _check(u.ref is None or isinstance(u.ref, str), f"ref of {u.utt!r} is not a str")
        for h in u.hyps:
            _check(isinstance(h.text, str), f"a hyp text of {u.utt!r} is not a str")
            _check(all(isinstance(k, str) and _finite(v) for k, v in h.scores.items()),
                   f"a score of {u.utt!r} is not a finite float: {h.scores!r}"[:300])
    return [(u.utt, u.ref, [(h.text, dict(h.scores)) for h in u.hyps]) for u in nb]


def _nbest(fmt: str, **opts) -> Callable[[Path, Path], object]:
    def read(entry: Path, root: Path) -> list:
        extra = {k: root / v for k, v in opts.items()}
        return check_nbest(read_nbest(entry, fmt=fmt, **extra))
    return read


def _read_corpus(text_format: str) -> Callable[[Path, Path], object]:
    def read(entry: Path, root: Path) -> list:
        sents = read_sentences(entry, text_format)
        _check(bool(sents) and all(isinstance(s, str) and s.strip() for s in sents),
               "a sentence is empty")
        return sents
    return read


def _read_vocab(entry: Path, root: Path) -> list:
    v = WordVocab.load(entry)
    _check(v.itos[v.bos] == "<s>" and v.itos[v.eos] == "</s>" and v.itos[v.unk] == "<unk>",
           "special symbols map to the wrong ids")
    _check(all(0 <= i < v.size for i in v.encode("the cat never")), "encode left the vocab")
    return v.itos


def _read_refs(entry: Path, root: Path) -> dict:
    refs = read_refs(entry)
    _check(isinstance(refs, dict), "refs is not a dict")
    _check(all(isinstance(k, str) and k and isinstance(v, str) for k, v in refs.items()),
           "a reference id or text is not a str")
    return refs


@dataclass
class Target:
    """One reader on one real layout.

    build: writes the valid fixture into an empty folder, returns the path (in
    that folder) the reader is given; read: ``(that path, the folder) -> data``;
    main: the fixture's principal text file (where policy tests edit lines).
    """

    name: str
    build: Callable[[Path], str]
    read: Callable[[Path, Path], object]
    main: str


TARGETS = [
    Target("corpus-plain", _corpus_plain, _read_corpus("auto"), "corpus.txt"),
    Target("corpus-kaldi", _corpus_kaldi, _read_corpus("kaldi"), "text"),
    Target("vocab-words.txt", _vocab, _read_vocab, "words.txt"),
    Target("refs-kaldi-text", _refs_text, _read_refs, "text"),
    Target("refs-trn", _refs_trn, _read_refs, "ref.trn"),
    Target("refs-trn-detected", _refs_trn_detected, _read_refs, "ref_wer"),
    Target("kaldi-text-ark", _kaldi_text, _nbest("kaldi"), "nb/words_text"),
    Target("kaldi-int-jobs", _kaldi_int_jobs, _nbest("kaldi", words_txt="words.txt"),
           "nb/archives.1/words"),
    Target("kaldi-binary-ark", _kaldi_binary, _nbest("kaldi"), "nb/words_text"),
    Target("espnet", _espnet, _nbest("espnet"), "dec/1best_recog/text"),
    Target("srilm-v1", _srilm1, _nbest("srilm"), "nb/utt-1.score.gz"),
    Target("srilm-v2", _srilm2, _nbest("srilm"), "nb/a.nbest"),
    Target("srilm-v3-list", _srilm3, _nbest("srilm"), "n/u1.txt"),
    Target("json-hyporadise", _json_hyporadise, _nbest("json"), "hp.json"),
    Target("json-mlm.gz", _json_mlm, _nbest("json"), "mlm.json.gz"),
    Target("nemo-tsv+manifest", _nemo, _nbest("nemo", manifest="manifest.json"), "preds.tsv"),
    Target("jsonl", _jsonl, _nbest("jsonl"), "nb.jsonl"),
    Target("jsonl.gz", _jsonl_gz, _nbest("jsonl"), "nb.jsonl.gz"),
]
TARGET = {t.name: t for t in TARGETS}


def build_fixture(target: Target, folder: Path) -> tuple[str, dict[str, bytes]]:
    """Write ``target``'s valid fixture into ``folder`` (emptied first); return the
    reader's entry path and ``{relative path: bytes}`` of every file."""
    _materialize(folder, {})
    entry = target.build(folder)
    return entry, _snapshot(folder)


# ------------------------------------------------------------- mutations --

_ODD_BYTES = [b"\x00", b"\xff", b"\xfe", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf",
              b"\r", b"\r\n", b"\n", b"\t", b" ", b"\xef\xbb\xbf", b"\x0b", b"\x0c", b"\x1c",
              b"\xc2\x85", b"\xe2\x80\xa8", b"\xc2\xa0", b"\xe3\x80\x80", b'"', b"\\", b"(", b")",
              b"[", b"]", b"{", b"}", b":", b",", b"-", b"#", b"\xc2\xb2", b"\xd9\xa3"]
_ODD_NUMBERS = [b"nan", b"NaN", b"inf", b"-inf", b"Infinity", b"-Infinity", b"1e999",
                b"-1e999", b"-", b"+", b"", b".", b"1e", b"0x10", b"1_0", b"\xc2\xb2",
                b"\xd9\xa3", b"-0", b"+1", b"1" * 5000, b"9" * 400, b"1e-400", b"0",
                b"-1", b"2147483648", b"99999999999999999999", b"tensor(nan)", b"tensor()",
                b"tensor(1, 2)", b"(-1)", b"[", b"]", b"null", b"true", b"[]", b"{}", b'"x"',
                b'"-1"', b'"tensor(-2)"', b'""', b"-1.5", b"1e308", b"-1e308"]
_JSON_VALUES = [b"null", b"true", b"false", b"0", b"-1", b"1e999", b"NaN", b"Infinity", b'""',
                b'"x"', b"[]", b"{}", b'[""]', b"[1]", b'{"a": 1}', b'{"text": 1}',
                b'{"text": "x", "scores": []}', b"1" * 5000, b"[" * 5000, b'{"a":' * 3000]
_TOKEN = re.compile(rb"[^\s\"{}\[\],:()]+")
_JSON_STRING = re.compile(rb'"(?:[^"\\\n]|\\.)*"')


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _pos(rng: random.Random, data: bytes) -> int:
    return rng.randint(0, len(data))


def m_delete_line(rng, data):
    lines = _lines(data)
    del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def m_duplicate_line(rng, data):
    lines = _lines(data)
    i = rng.randrange(len(lines))
    lines.insert(rng.randint(0, len(lines)), lines[i])
    return b"\n".join(lines)


def m_swap_lines(rng, data):
    lines = _lines(data)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def m_truncate(rng, data):
    return data[:_pos(rng, data)]


def m_insert_bytes(rng, data):
    p = _pos(rng, data)
    junk = b"".join(rng.choice(_ODD_BYTES) for _ in range(rng.randint(1, 4)))
    return data[:p] + junk + data[p:]


def m_random_bytes(rng, data):
    p = _pos(rng, data)
    return data[:p] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))) + data[p:]


def m_flip_byte(rng, data):
    if not data:
        return data
    p = rng.randrange(len(data))
    return data[:p] + bytes([data[p] ^ (1 << rng.randrange(8))]) + data[p + 1:]


def m_odd_number(rng, data):
    """Replace a token (a number, an id, a word) by an odd number-like token."""
    spans = list(_TOKEN.finditer(data))
    if not spans:
        return data
    m = rng.choice(spans)
    return data[:m.start()] + rng.choice(_ODD_NUMBERS) + data[m.end():]


def m_long_line(rng, data):
    """Insert a ~1 MB line: words, or a run of blanks, or one huge token."""
    kind = rng.randrange(3)
    if kind == 0:
        body = b" ".join(b"w%d" % (i % 97) for i in range(LONG_LINE // 4))
    elif kind == 1:
        body = b" \t" * (LONG_LINE // 2)
    else:
        body = b"x" * LONG_LINE
    lines = _lines(data)
    i = rng.randrange(len(lines))
    if rng.random() < 0.5:
        lines.insert(i, body)
    else:
        lines[i] = lines[i] + body
    return b"\n".join(lines)


def m_empty_lines(rng, data):
    lines = _lines(data)
    for _ in range(rng.randint(1, 3)):
        lines.insert(rng.randint(0, len(lines)), rng.choice([b"", b" ", b"\t", b"\r"]))
    return b"\n".join(lines)


def m_duplicate_id(rng, data):
    """Give line j the first field of line i."""
    lines = _lines(data)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    a, b = lines[i].split(None, 1), lines[j].split(None, 1)
    if a and b:
        lines[j] = a[0] + (b" " + b[1] if len(b) > 1 else b"")
    return b"\n".join(lines)


def m_remove_id(rng, data):
    lines = _lines(data)
    i = rng.randrange(len(lines))
    parts = lines[i].split(None, 1)
    lines[i] = parts[1] if len(parts) > 1 else b""
    return b"\n".join(lines)


def m_crlf(rng, data):
    return data.replace(b"\n", b"\r\n")


def m_lone_cr(rng, data):
    lines = _lines(data)
    i = rng.randrange(len(lines))
    lines[i] = lines[i] + b"\r" + (lines.pop(i + 1) if i + 1 < len(lines) else b"")
    return b"\n".join(lines)


def m_bom_middle(rng, data):
    lines = _lines(data)
    i = rng.randrange(len(lines))
    lines[i] = b"\xef\xbb\xbf" + lines[i]
    return b"\n".join(lines)


def m_tabs(rng, data):
    spaces = [m.start() for m in re.finditer(rb" ", data)]
    if not spaces:
        return data
    p = rng.choice(spaces)
    return data[:p] + b"\t" + data[p + 1:]


def m_json_break(rng, data):
    """Drop or add one structural JSON character."""
    marks = [m.start() for m in re.finditer(rb'[{}\[\],:"]', data)]
    if marks and rng.random() < 0.6:
        p = rng.choice(marks)
        return data[:p] + data[p + 1:]
    p = _pos(rng, data)
    return data[:p] + rng.choice([b"{", b"}", b"[", b"]", b",", b":", b'"']) + data[p:]


def m_json_wrong_type(rng, data):
    """Replace a JSON value (a string, or a number-like token) by one of another type."""
    spans = list(_JSON_STRING.finditer(data)) + list(_TOKEN.finditer(data))
    if not spans:
        return data
    m = rng.choice(spans)
    return data[:m.start()] + rng.choice(_JSON_VALUES) + data[m.end():]


def m_empty_file(rng, data):
    return rng.choice([b"", b"\n", b"\xef\xbb\xbf", b"\r\n", b" "])


def m_garbage_file(rng, data):
    return bytes(rng.randrange(256) for _ in range(rng.randint(1, 200)))


# (mutation, weight): cheap, common ones weigh more; whole-file ones rarely.
MUTATIONS = [
    (m_delete_line, 8), (m_duplicate_line, 8), (m_swap_lines, 6), (m_truncate, 6),
    (m_insert_bytes, 10), (m_random_bytes, 4), (m_flip_byte, 4), (m_odd_number, 12),
    (m_long_line, 1), (m_empty_lines, 4), (m_duplicate_id, 6), (m_remove_id, 4),
    (m_crlf, 2), (m_lone_cr, 2), (m_bom_middle, 3), (m_tabs, 3), (m_json_break, 5),
    (m_json_wrong_type, 8), (m_empty_file, 1), (m_garbage_file, 1),
]


def mutate(rng: random.Random, data: bytes) -> tuple[bytes, list[str]]:
    """1-3 random mutations of ``data``; returns the bytes and the mutation names."""
    funcs, weights = zip(*MUTATIONS)
    names = []
    for f in rng.choices(funcs, weights, k=rng.choice([1, 1, 2, 3])):
        data = f(rng, data)
        names.append(f.__name__[2:])
    return data, names


def mutate_file(rng: random.Random, rel: str, data: bytes,
                raw_gzip: bool = True) -> tuple[bytes, list[str]]:
    """Mutate a file's content; a ``.gz`` file is mostly mutated inside, else its
    compressed bytes are damaged (never, with ``raw_gzip=False``)."""
    if rel.endswith(".gz") and (rng.random() < 0.8 or not raw_gzip):
        inner, names = mutate(rng, gzip.decompress(data))
        return gzip.compress(inner, mtime=0), names
    return mutate(rng, data)


# --------------------------------------------------------------- running --

@dataclass
class Crash:
    """One crashing case: what was raised, and where the repro lies."""

    target: str
    case: int
    mutations: list[str]
    error: str
    trace: str
    repro: str = ""


@dataclass
class Stats:
    """Per-target counts."""

    target: str
    cases: int = 0
    ok: int = 0
    input_errors: int = 0
    crashes: list[Crash] = field(default_factory=list)
    slowest: float = 0.0
    seconds: float = 0.0


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _materialize(folder: Path, files: dict[str, bytes]) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    for rel, data in files.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def bad_error_message(e: InputError, root: Path, mutated: Path) -> str | None:
    """Why ``e`` breaks the one-line, file-naming convention (None if it keeps it)."""
    msg = str(e)
    if not msg.strip():
        return "empty message"
    if len(msg.splitlines()) != 1 or "\n" in msg or "\r" in msg:
        return "message spans several lines"
    # folder layouts may name any file of the case folder (or the folder itself)
    if mutated.name not in msg and root.name not in msg:
        return "message names no input file"
    return None


def classify(target: Target, root: Path, entry: str, mutated: str) -> tuple[str, str, str]:
    """Run the reader once: ``('ok'|'input'|'crash', error text, traceback)``."""
    try:
        target.read(root / entry, root)
    except InputError as e:
        why = bad_error_message(e, root, root / mutated)
        if why is None:
            return "input", "", ""
        return "crash", f"InputError with a bad message ({why}): {str(e)[:500]!r}", ""
    except Exception as e:  # noqa: BLE001 -- every other exception is what we hunt
        return ("crash", f"{type(e).__name__}: {str(e)[:500]}",
                "".join(traceback.format_exception(e)[-6:]))
    return "ok", "", ""


def _crash_key(error: str) -> str:
    return error.split(":", 1)[0]


def shrink(target: Target, root: Path, entry: str, files: dict[str, bytes], rel: str,
           error: str, budget: int = 200) -> dict[str, bytes]:
    """Delete chunks of lines of ``rel`` while the crash keeps its exception type."""
    key = _crash_key(error)
    lines = files[rel].split(b"\n")
    chunk = max(1, len(lines) // 2)
    tries = 0
    while chunk >= 1 and tries < budget:
        i, changed = 0, False
        while i < len(lines) and tries < budget:
            trial = lines[:i] + lines[i + chunk:]
            candidate = dict(files, **{rel: b"\n".join(trial)})
            _materialize(root, candidate)
            tries += 1
            outcome, err, _ = classify(target, root, entry, rel)
            if outcome == "crash" and _crash_key(err) == key:
                lines, changed = trial, True
            else:
                i += chunk
        if not changed:
            chunk //= 2
    return dict(files, **{rel: b"\n".join(lines)})


def _save_repro(out: Path, crash: Crash, files: dict[str, bytes], entry: str) -> str:
    folder = out / f"{crash.target}-case{crash.case}"
    _materialize(folder / "input", files)
    (folder / "README.txt").write_text(
        f"target: {crash.target}\ncase: {crash.case}\nreader path: input/{entry}\n"
        f"mutations: {', '.join(crash.mutations)}\nerror: {crash.error}\n\n{crash.trace}",
        encoding="utf-8")
    return os.fspath(folder)


def fuzz_target(target: Target, cases: int, seed: int, workdir: Path, first: int = 0,
                crash_dir: Path | None = None, raw_gzip: bool = True) -> Stats:
    """Run ``cases`` cases (indices ``first ...``) of one target."""
    entry, files = build_fixture(target, workdir / "template" / target.name)
    names = sorted(files)
    root = workdir / "case" / target.name
    stats = Stats(target.name)
    start = time.perf_counter()
    for i in range(first, first + cases):
        rng = random.Random(f"{seed}:{target.name}:{i}")
        rel = rng.choice(names)
        if len(names) > 1 and rng.random() < 0.02:    # a file of the layout is missing
            case_files = {k: v for k, v in files.items() if k != rel}
            muts = ["delete_file"]
        else:
            data, muts = mutate_file(rng, rel, files[rel], raw_gzip)
            case_files = dict(files, **{rel: data})
        _materialize(root, case_files)
        t0 = time.perf_counter()
        outcome, error, trace = classify(target, root, entry, rel)
        stats.slowest = max(stats.slowest, time.perf_counter() - t0)
        stats.cases += 1
        if outcome == "ok":
            stats.ok += 1
        elif outcome == "input":
            stats.input_errors += 1
        else:
            crash = Crash(target.name, i, muts, error, trace)
            if crash_dir is not None and len(stats.crashes) < 20:
                small = shrink(target, root, entry, case_files, rel, error)
                crash.repro = _save_repro(crash_dir, crash, small, entry)
            stats.crashes.append(crash)
    stats.seconds = time.perf_counter() - start
    return stats


def run_fuzz(cases: int, seed: int = 0, targets: list[str] | None = None,
             workdir: Path | None = None, first: int = 0,
             crash_dir: Path | None = None, raw_gzip: bool = True) -> list[Stats]:
    """Fuzz the named targets (all by default) with ``cases`` cases each.

    raw_gzip: also damage the compressed bytes of ``.gz`` inputs (not only the
    text inside them).
    """
    chosen = [t for t in TARGETS if targets is None or t.name in targets]
    unknown = set(targets or ()) - {t.name for t in TARGETS}
    if unknown:
        raise ValueError(f"unknown targets: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="fuzz-readers-") as tmp:
        work = Path(workdir or tmp)
        return [fuzz_target(t, cases, seed, work, first, crash_dir, raw_gzip) for t in chosen]


def format_table(stats: list[Stats]) -> str:
    """A plain-text table of the per-target counts and a total row."""
    rows = [("reader", "cases", "ok", "input errors", "crashes", "slowest s", "total s")]
    for s in stats:
        rows.append((s.target, s.cases, s.ok, s.input_errors, len(s.crashes),
                     f"{s.slowest:.3f}", f"{s.seconds:.1f}"))
    rows.append(("TOTAL", sum(s.cases for s in stats), sum(s.ok for s in stats),
                 sum(s.input_errors for s in stats), sum(len(s.crashes) for s in stats),
                 f"{max((s.slowest for s in stats), default=0):.3f}",
                 f"{sum(s.seconds for s in stats):.1f}"))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    fmt = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths)))
    out = [fmt(rows[0]), fmt(["-" * w for w in widths])]
    out += [fmt(r) for r in rows[1:-1]]
    out += [fmt(["-" * w for w in widths]), fmt(rows[-1])]
    return "\n".join(out)


def format_crashes(stats: list[Stats], limit: int = 10) -> str:
    """The first ``limit`` crashes per target, one paragraph each."""
    out = []
    for s in stats:
        for c in s.crashes[:limit]:
            out.append(f"[{c.target} case {c.case}] mutations={','.join(c.mutations)}\n"
                       f"  {c.error}\n  repro: {c.repro or '-'}\n"
                       + "".join("    " + ln + "\n" for ln in c.trace.splitlines()[-4:]))
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=1000, help="cases per reader")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--first", type=int, default=0, help="index of the first case")
    ap.add_argument("--only", default=None, help="comma-separated target names")
    ap.add_argument("--crash-dir",
                    default=os.path.join(tempfile.gettempdir(), "asr-kd-fuzz-crashes"),
                    help="where shrunk repro folders of crashes go (default: %(default)s)")
    ap.add_argument("--list", action="store_true", help="list the targets and exit")
    ap.add_argument("--raw-gzip", choices=("auto", "yes", "no"), default="auto",
                    help="damage compressed .gz bytes too (auto: if fileio copes)")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(t.name for t in TARGETS))
        return 0
    only = args.only.split(",") if args.only else None
    raw = {"auto": True, "yes": True, "no": False}[args.raw_gzip]
    stats = run_fuzz(args.cases, args.seed, only, first=args.first,
                     crash_dir=Path(args.crash_dir), raw_gzip=raw)
    print(format_table(stats))
    print(f"seed {args.seed}, cases {args.first}..{args.first + args.cases - 1} per reader, "
          f"damaged gzip bytes: {'yes' if raw else 'no'}")
    crashes = format_crashes(stats)
    if crashes:
        print("\ncrashes:\n" + crashes)
    return 1 if any(s.crashes for s in stats) else 0


if __name__ == "__main__":
    sys.exit(main())
