"""One test per documented input policy, for every reader it concerns.

The readers are those of ``fuzz_readers.TARGETS``: each is a real on-disk
layout, edited here in one precise way.  Policies (see each reader's module
docstring): CRLF, a leading BOM and TABs change nothing; blank lines are
skipped (NeMo TSV: an error, its line count carries meaning); non-UTF-8 bytes
and a BOM starting a later line of an id-first file are errors naming file and
line; 2 MB lines are read whole; a repeated id is an error naming both places
(Kaldi LM text excepted: its ids are dropped); N = 0 and empty hypotheses are
kept; non-finite scores are errors; ids missing on either side are reported.
"""
from __future__ import annotations

import gzip
import json
import re
import struct
import sys
import time
import zlib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_readers import TARGET, TARGETS, Target, bad_error_message, build_fixture  # noqa: E402

from asr_kd.errors import InputError  # noqa: E402
from asr_kd.fileio import read_lines  # noqa: E402
from asr_kd.nbest import (Hyp, NBest, Utterance, attach_refs, read_nbest,  # noqa: E402
                          read_refs, write_nbest)
from asr_kd.nbest.kaldi import read_kaldi  # noqa: E402

ALL = [t.name for t in TARGETS]
NBEST = [t.name for t in TARGETS if not t.name.startswith(("corpus", "vocab", "refs"))]
MB2 = 2 * 1024 * 1024
LONG = (b"w " * (MB2 // 2)).strip()          # a 2 MB line of words


# ------------------------------------------------------------- helpers --

class Case:
    """A target's fixture in ``tmp_path/case``: edit its files, read it."""

    def __init__(self, name: str, tmp_path: Path):
        self.target: Target = TARGET[name]
        self.root = tmp_path / "case"
        self.entry, self.files = build_fixture(self.target, self.root)

    def path(self, rel: str | None = None) -> Path:
        return self.root / (rel or self.target.main)

    def edit(self, rel: str, fn) -> None:
        """Replace the (decompressed) bytes of ``rel`` by ``fn(bytes)``."""
        p = self.root / rel
        gz = rel.endswith(".gz")
        data = gzip.decompress(p.read_bytes()) if gz else p.read_bytes()
        data = fn(data)
        p.write_bytes(gzip.compress(data, mtime=0) if gz else data)

    def replace(self, rel: str, old: bytes, new: bytes) -> None:
        def swap(data: bytes) -> bytes:
            assert old in data, (rel, old)
            return data.replace(old, new, 1)
        self.edit(rel, swap)

    def text_files(self) -> list[str]:
        """Every file but Kaldi binary archives (``key \\0B...``)."""
        return [rel for rel in self.files if b"\0B" not in self._plain(rel)]

    def _plain(self, rel: str) -> bytes:
        data = self.files[rel]
        return gzip.decompress(data) if rel.endswith(".gz") else data

    def read(self):
        return self.target.read(self.root / self.entry, self.root)

    def error(self) -> InputError:
        """The InputError reading raises; it must keep the one-line convention."""
        with pytest.raises(InputError) as e:
            self.read()
        why = bad_error_message(e.value, self.root, self.path())
        assert why is None, f"{why}: {e.value}"
        return e.value


def _is_json_doc(rel: str) -> bool:
    return rel.endswith((".json", ".json.gz", ".jsonl", ".jsonl.gz"))


def _tabbed_json(data: bytes) -> bytes:
    """The same JSON (a document, else one per line) with TABs as separators."""
    dump = lambda obj: json.dumps(obj, separators=(",\t", ":\t")).encode()  # noqa: E731
    try:
        return dump(json.loads(data))
    except ValueError:
        return b"\n".join(dump(json.loads(line)) if line.strip() else line
                          for line in data.split(b"\n"))


def _longest_str(obj) -> int:
    if isinstance(obj, str):
        return len(obj)
    if isinstance(obj, dict):
        return max((max(_longest_str(k), _longest_str(v)) for k, v in obj.items()), default=0)
    if isinstance(obj, (list, tuple)):
        return max((_longest_str(x) for x in obj), default=0)
    return 0


# ----------------------------------------------- format-neutral changes --

@pytest.mark.parametrize("name", ALL)
def test_crlf_line_ends_read_the_same(name, tmp_path):
    case = Case(name, tmp_path)
    want = case.read()
    for rel in case.text_files():
        case.edit(rel, lambda d: d.replace(b"\n", b"\r\n"))
    assert case.read() == want


@pytest.mark.parametrize("name", ALL)
def test_leading_bom_is_dropped(name, tmp_path):
    case = Case(name, tmp_path)
    want = case.read()
    for rel in case.text_files():
        case.edit(rel, lambda d: b"\xef\xbb\xbf" + d)
    assert case.read() == want


@pytest.mark.parametrize("name", ALL)
def test_tabs_separate_like_spaces(name, tmp_path):
    # JSON files keep their strings and get TABs as JSON whitespace instead
    case = Case(name, tmp_path)
    want = case.read()
    for rel in case.text_files():
        case.edit(rel, _tabbed_json if _is_json_doc(rel) else lambda d: d.replace(b" ", b"\t"))
    assert case.read() == want


@pytest.mark.parametrize("name", ALL)
def test_blank_lines_are_skipped(name, tmp_path):
    case = Case(name, tmp_path)
    want = case.read()
    case.edit(case.target.main, lambda d: d.replace(b"\n", b"\n \t\n", 1))
    if name.startswith("nemo"):      # N lines per utterance: a blank line would shift them
        assert ":2: expected 'text<TAB>score', got a blank line" in str(case.error())
    else:
        assert case.read() == want


@pytest.mark.parametrize("name", ALL)
def test_non_utf8_is_an_error_naming_file_and_line(name, tmp_path):
    case = Case(name, tmp_path)

    def spoil_line2(data: bytes) -> bytes:
        lines = data.split(b"\n")
        lines[1] += b" caf\xe9"
        return b"\n".join(lines)
    case.edit(case.target.main, spoil_line2)
    msg = str(case.error())
    assert f"{case.path()}:2: not valid UTF-8" in msg


# id-first files: the BOM would silently become part of the id that starts the line
@pytest.mark.parametrize("name,rel", [
    ("vocab-words.txt", None), ("refs-kaldi-text", None), ("refs-trn", None),
    ("kaldi-text-ark", None), ("kaldi-text-ark", "nb/acwt"), ("kaldi-int-jobs", "words.txt"),
    ("espnet", None), ("espnet", "dec/1best_recog/score")])
def test_bom_starting_a_later_line_is_an_error(name, rel, tmp_path):
    case = Case(name, tmp_path)
    case.edit(rel or case.target.main, lambda d: d.replace(b"\n", b"\n\xef\xbb\xbf", 1))
    msg = str(case.error())
    assert f"{case.path(rel)}:2: line starts with a byte-order mark" in msg


def test_bom_inside_lm_text_is_an_ordinary_character(tmp_path):
    case = Case("corpus-plain", tmp_path)
    case.edit("corpus.txt", lambda d: d.replace(b"\n", b"\n\xef\xbb\xbf", 1))
    assert case.read()[1] == "\ufeffa dog ran"


# ------------------------------------------------------------ long lines --

def _srilm2_long_line() -> bytes:
    """An NBestList2.0 hypothesis line of ~2 MB: words with increasing times."""
    words = (f"w ( st: {i} et: {i}.5 g: -1 a: -2 )".encode() for i in range(60000))
    return b"(-400) " + b" ".join(words)


LONG_LINES = [  # target, file, old, new, shortest string expected in the result
    ("corpus-plain", "corpus.txt", b"a dog ran", LONG, MB2 - 1),
    ("corpus-kaldi", "text", b"a dog", LONG, MB2 - 1),
    ("vocab-words.txt", "words.txt", b"cat 5", b"x" * MB2 + b" 5", MB2),
    ("refs-kaldi-text", "text", b"Y Z", LONG, MB2 - 1),
    ("refs-trn", "ref.trn", b"Y Z", LONG, MB2 - 1),
    ("refs-trn-detected", "ref_wer", b"C (", LONG + b" (", MB2 - 1),
    ("kaldi-text-ark", "nb/words_text", b"a b c", LONG, MB2 - 1),
    ("kaldi-int-jobs", "nb/archives.2/words", b"4 5 6", b"4 " * (MB2 // 2) + b"5", MB2 - 1),
    ("kaldi-binary-ark", "nb/words_text", b"a b c", LONG, MB2 - 1),
    ("espnet", "dec/1best_recog/text", b" X", b" " + LONG, MB2 - 1),
    ("srilm-v1", "nb/utt-2.score", b"a b c", LONG, MB2 - 1),
    ("srilm-v2", "nb/a.nbest", b"(-400) <s>", _srilm2_long_line() + b" <s>", 2 * 60000 - 1),
    ("srilm-v3-list", "n/u2", b"1 c", b"1 " + LONG, MB2 - 1),
    ("json-hyporadise", "hp.json", b'"x"', b'"' + LONG + b'"', MB2 - 1),
    ("json-mlm.gz", "mlm.json.gz", b'"w10"', b'"' + LONG + b'"', MB2 - 1),
    ("nemo-tsv+manifest", "preds.tsv", b"a b\t", LONG + b"\t", MB2 - 1),
    ("jsonl", "nb.jsonl", b'"c"', b'"' + LONG + b'"', MB2 - 1),
    ("jsonl.gz", "nb.jsonl.gz", b'"c"', b'"' + LONG + b'"', MB2 - 1),
]


def test_long_line_table_covers_every_reader():
    assert sorted(row[0] for row in LONG_LINES) == sorted(ALL)


@pytest.mark.parametrize("name,rel,old,new,size", LONG_LINES, ids=[r[0] for r in LONG_LINES])
def test_2mb_line_is_read_whole(name, rel, old, new, size, tmp_path):
    case = Case(name, tmp_path)
    case.replace(rel, old, new)
    assert _longest_str(case.read()) >= size


def test_trn_line_with_a_long_blank_run_parses_in_linear_time(tmp_path):
    # the old regex backtracked quadratically over a run of blanks before "(id)"
    f = tmp_path / "ref.trn"
    f.write_bytes(b"A" + b" \t" * (MB2 // 2) + b"B (u1)\n" + b"x" + b" " * MB2 + b"\n")
    start = time.perf_counter()
    with pytest.raises(InputError, match=r"ref\.trn:2: expected 'words \(uttid\)'"):
        read_refs(f)
    assert time.perf_counter() - start < 10


# -------------------------------------------------------- duplicate ids --

DUPLICATES = [  # target, file, old, new, expected message (regex, after the path)
    ("vocab-words.txt", "words.txt", b"#0 8\n", b"#0 8\ncat 9\n",
     r"words\.txt:9: word 'cat' listed twice \(first on line 6\)"),
    ("vocab-words.txt", "words.txt", b"#0 8\n", b"#0 8\ndog 5\n",
     r"words\.txt:9: id 5 used twice \(first on line 6\)"),
    ("refs-kaldi-text", "text", b"Y Z\n", b"Y Z\n1272-128104-0001 Q\n",
     r"text:5: duplicate utterance id '1272-128104-0001' \(first on line 2\)"),
    ("refs-trn", "ref.trn", b"0003)\n", b"0003)\nQ (1272-1272-128104-0001)\n",
     r"ref\.trn:5: duplicate utterance id '1272-128104-0001' \(first on line 2\)"),
    ("kaldi-text-ark", "nb/words_text", b"a b c\n", b"a b c\nspk2-utt-002-1 x\n",
     r"words_text:5: duplicate key 'spk2-utt-002-1' \(first on line 4\)"),
    ("kaldi-text-ark", "nb/acwt", b"[ 50.0 ]\n", b"[ 50.0 ]\nspk2-utt-002-1 [ 1 ]\n",
     r"acwt:5: duplicate key 'spk2-utt-002-1' \(first on line 4\)"),
    ("kaldi-int-jobs", "words.txt", b"c 6\n", b"c 6\nd 6\n",
     r"words\.txt:8: id 6 used twice \(first on line 7\)"),
    ("espnet", "dec/1best_recog/text", b" X\n", b" X\n1272-128104-0000 Q\n",
     r"text:3: duplicate utterance id '1272-128104-0000' \(first on line 1\)"),
    ("espnet", "dec/1best_recog/scores", b'"ctc": -2.0}', b'"ctc": -2.0, "ctc": 1}',
     r"scores:2: .*duplicate key 'ctc' in one object"),
    ("json-hyporadise", "hp.json", b'"output": "y"', b'"output": "y", "id": "utt-1"',
     r"entry 1 \(id 'utt-1'\): duplicate id \(entry 0 has it too\)"),
    ("json-mlm.gz", "mlm.json.gz", b'"u2": {}', b'"u2": {}, "u2": {}',
     r"duplicate key 'u2' in one object"),
    ("nemo-tsv+manifest", "manifest.json", b"/data/y/1272-0002.flac", b"/z/1272-0001.flac",
     r"manifest\.json:2: duplicate utterance id '1272-0001' .*first on line 1\)"),
    ("jsonl", "nb.jsonl", b'"utt": "u-3"', b'"utt": "u-1"',
     r"nb\.jsonl:3: duplicate utterance id 'u-1' \(first on line 1\)"),
    ("jsonl.gz", "nb.jsonl.gz", b'{"utt": "u-2", ', b'{"utt": "u-2", "utt": "u-9", ',
     r"nb\.jsonl\.gz:2: .*duplicate key 'utt' in one object"),
]


@pytest.mark.parametrize("name,rel,old,new,expect", DUPLICATES,
                         ids=[f"{r[0]}:{r[1]}" for r in DUPLICATES])
def test_duplicate_id_is_an_error_naming_both_places(name, rel, old, new, expect, tmp_path):
    case = Case(name, tmp_path)
    case.replace(rel, old, new)
    assert re.search(expect, str(case.error()))


def test_kaldi_two_keys_with_one_hypothesis_number(tmp_path):
    # 'u-1' and 'u-01' both claim rank 1: the order would be a guess
    case = Case("kaldi-text-ark", tmp_path)
    case.replace("nb/words_text", b"a b c\n", b"a b c\nspk1-utt-001-01 x\n")
    for rel in ("nb/acwt", "nb/lmwt.withlm"):
        case.replace(rel, b"[ 50.0 ]\n" if rel.endswith("acwt") else b"[ 10.75 ]\n",
                     b"[ 1 ]\nspk1-utt-001-01 [ 1 ]\n")
    assert re.search(r"words_text:5: key 'spk1-utt-001-01' repeats hypothesis number 1 of "
                     r"'spk1-utt-001' \(line 1\)", str(case.error()))


def test_kaldi_hypothesis_number_gaps_are_kept_in_order(tmp_path):
    case = Case("kaldi-text-ark", tmp_path)
    for rel in ("nb/words_text", "nb/acwt", "nb/lmwt.withlm"):
        case.replace(rel, b"spk1-utt-001-2", b"spk1-utt-001-7")
    utt = case.read()[0]
    assert [text for text, _ in utt[2]] == ["hello world", "", "hello word"]


def test_kaldi_utterance_in_two_job_folders(tmp_path):
    case = Case("kaldi-int-jobs", tmp_path)
    for rel in ("words", "acwt", "lmwt.withlm", "lmwt.nolm"):
        src = case.root / "nb" / "archives.2" / rel
        (case.root / "nb" / "archives.3").mkdir(exist_ok=True)
        (case.root / "nb" / "archives.3" / rel).write_bytes(src.read_bytes())
    assert "'spk2-utt-002' appears in two job folders" in str(case.error())


def test_srilm_two_files_with_one_utterance_id(tmp_path):
    case = Case("srilm-v1", tmp_path)
    (case.root / "nb" / "utt-2.nbest").write_bytes(b"(-5) x\n")
    msg = str(case.error())
    assert "utterance id 'utt-2' of utt-2.score repeats that of utt-2.nbest" in msg


def test_kaldi_lm_text_keeps_lines_with_repeated_ids(tmp_path):
    case = Case("corpus-kaldi", tmp_path)
    case.replace("text", b"utt005 the end\n", b"utt005 the end\nutt001 again\n")
    assert case.read()[-2:] == ["the end", "again"]


# ------------------------------------------- ids missing on either side --

def test_attach_refs_lists_nbest_utterances_without_reference(tmp_path):
    nb = NBest([Utterance(f"u{i}", [Hyp("a")]) for i in range(13)])
    with pytest.raises(InputError) as e:
        attach_refs(nb, {"u0": "a", "u5": "b"}, tmp_path / "text")
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path / 'text'}: 11 of 13 N-best utterances have no reference:")
    assert "u1, u2, u3, u4, u6" in msg and msg.endswith(", ...") and "\n" not in msg
    assert all(u.ref is None for u in nb)           # nothing half-attached


def test_attach_refs_returns_references_without_nbest_entry():
    nb = NBest([Utterance("u1", [Hyp("a")]), Utterance("u2", [])])
    extra = attach_refs(nb, {"u1": "A", "u2": "", "u3": "C", "u9": "D"})
    assert extra == ["u3", "u9"] and [u.ref for u in nb] == ["A", ""]


@pytest.mark.parametrize("name,rel,old,new,expect", [
    ("kaldi-text-ark", "nb/acwt", b"spk2-utt-002-1  [ 50.0 ]\n", b"",
     r"acwt: key 'spk2-utt-002-1' \(line 4 of words_text\) is missing"),
    ("kaldi-text-ark", "nb/lmwt.withlm", b"spk2-utt-002-1", b"spk3-utt-003-1",
     r"lmwt\.withlm:4: key 'spk3-utt-003-1' is not in words_text"),
    ("espnet", "dec/1best_recog/score", b"1272-128104-0001 tensor(-10.0)\n", b"",
     r"score: utterance '1272-128104-0001' of .*text is missing"),
    ("espnet", "dec/2best_recog/score", b"1272-128104-0000", b"1272-128104-0009",
     r"2best_recog/score:1: utterance '1272-128104-0009' is not in .*2best_recog/text"),
    ("espnet", "dec/1best_recog/text", b"1272-128104-0001 X\n", b"",
     r"utterance '1272-128104-0001' is not in .*1best_recog/text"),
    ("nemo-tsv+manifest", "preds.tsv", b"a b\t-3\n", b"",
     r"preds\.tsv: 3 lines do not divide evenly among the 2 utterances"),
])
def test_ids_missing_between_files_are_named(name, rel, old, new, expect, tmp_path):
    case = Case(name, tmp_path)
    case.replace(rel, old, new)
    assert re.search(expect, str(case.error()))


# -------------------------------------------- N = 0 and empty hypotheses --

@pytest.mark.parametrize("name", [n for n in NBEST if n not in ("srilm-v2", "json-mlm.gz")])
def test_empty_hypothesis_is_kept_as_empty_text(name, tmp_path):
    texts = [text for _, _, hyps in Case(name, tmp_path).read() for text, _ in hyps]
    assert "" in texts


def test_empty_hypothesis_srilm_v2_and_mlm(tmp_path):
    f = tmp_path / "a.nbest"
    f.write_bytes(b"NBestList2.0\n(-5)\n(-6) <s> ( st: 0 et: 1 g: -1 a: -2 )\n")
    hyps = read_nbest(f, fmt="srilm").utts[0].hyps
    assert [(h.text, h.scores["am"]) for h in hyps] == [("", 0.0), ("", pytest.approx(-0.2048,
                                                                                        rel=1e-4))]
    f = tmp_path / "m.json"
    f.write_text(json.dumps({"u": {"hyp_1": {"text": "", "score": -1}}}))
    assert read_nbest(f).utts[0].hyps[0].text == ""


@pytest.mark.parametrize("name,utt", [("srilm-v1", None), ("json-hyporadise", "2"),
                                      ("json-mlm.gz", "u2"), ("jsonl", "u-2"),
                                      ("jsonl.gz", "u-2")])
def test_utterance_with_no_hypotheses_is_kept(name, utt, tmp_path):
    case = Case(name, tmp_path)
    if utt is None:       # SRILM: a file holding only the header
        (case.root / "nb" / "utt-3.score").write_bytes(b"NBestList1.0\n")
        utt = "utt-3"
    assert dict((u, hyps) for u, _, hyps in case.read())[utt] == []


def test_kaldi_writer_skips_only_utterances_with_no_hypotheses(tmp_path):
    nb = NBest([Utterance("a", [Hyp("", {"am": -1.0, "lm0": -2.0})]), Utterance("b", [])])
    write_nbest(nb, tmp_path / "k", "kaldi")
    assert [(u.utt, len(u.hyps)) for u in read_kaldi(tmp_path / "k")] == [("a", 1)]


def test_nemo_n_below_one_is_an_error(tmp_path):
    case = Case("nemo-tsv+manifest", tmp_path)
    with pytest.raises(InputError, match=r"preds\.tsv: expected N >= 1"):
        read_nbest(case.path(), fmt="nemo", n=0)


# ------------------------------------------------------ non-finite scores --

NONFINITE = [  # target, file, old, new, expected message (regex)
    ("kaldi-text-ark", "nb/acwt", b"[ 100.5 ]", b"[ nan ]", r"acwt:1: expected a finite cost"),
    ("kaldi-int-jobs", "nb/archives.1/lmwt.nolm", b"10.125", b"1e999",
     r"lmwt\.nolm:1: expected a finite cost"),
    ("kaldi-binary-ark", "nb/lmwt.withlm", struct.pack("<f", 20.25),
     struct.pack("<f", float("inf")),
     r"lmwt\.withlm: expected a finite cost for key 'spk1-utt-001-1'"),
    ("espnet", "dec/1best_recog/score", b"tensor(-46.6314)", b"tensor(nan)",
     r"score:1: expected a finite score"),
    ("espnet", "dec/1best_recog/scores", b'"ctc": -0.0041', b'"ctc": -Infinity',
     r"scores:1: expected a finite score 'ctc'"),
    ("espnet", "dec/1best_recog/score", b"tensor(-46.6314)", b"tensor(-)",
     r"score:1: expected a number for the score, got '-'"),
    ("srilm-v1", "nb/utt-2.score", b"(-100.5)", b"(inf)", r"utt-2\.score:2: expected a finite"),
    ("srilm-v2", "nb/a.nbest", b"a: -90", b"a: NaN", r"a\.nbest:2: expected a finite"),
    ("srilm-v3-list", "n/u2", b"-1 -2 1 c", b"-1 1e308 1 c",
     r"u2:1: the LM score overflows when converted to natural log"),
    ("json-hyporadise", "hp.json", b"-2.5", b"NaN",
     r"hp\.json: expected a finite \"score\" value of entry 0 \(id 'utt-1'\), got nan"),
    ("json-hyporadise", "hp.json", b"-2.5", b"1" * 400, r"an integer of 400 digits"),
    ("json-mlm.gz", "mlm.json.gz", b"-10.0", b"Infinity",
     r"expected a finite 'score' of utterance 'u1' hyp_10, got inf"),
    ("nemo-tsv+manifest", "preds.tsv", b"-1.5", b"-", r"preds\.tsv:1: expected a number"),
    ("jsonl", "nb.jsonl", b"-1.5", b"1e999", r"nb\.jsonl:1: expected a finite score 'am'"),
]


@pytest.mark.parametrize("name,rel,old,new,expect", NONFINITE,
                         ids=[f"{r[0]}:{r[3][:8]!r}" for r in NONFINITE])
def test_non_finite_score_is_an_error(name, rel, old, new, expect, tmp_path):
    case = Case(name, tmp_path)
    case.replace(rel, old, new)
    assert re.search(expect, str(case.error()))


# --------------------------------------------------- absurd but parseable --

@pytest.mark.parametrize("name,rel,old,new,expect", [
    ("jsonl", "nb.jsonl", b'"c"', b"[" * 100000, r"nb\.jsonl:3: .*nested too deeply"),
    ("json-hyporadise", "hp.json", b'"x"', b"[" * 100000, r"nested too deeply"),
    ("espnet", "dec/1best_recog/scores", b'"ctc": -2.0', b'"ctc": ' + b"[" * 100000,
     r"scores:2: .*nested too deeply"),
    ("jsonl", "nb.jsonl", b"-1.5", b"1" * 5000, r"nb\.jsonl:1: expected one JSON object"),
    ("vocab-words.txt", "words.txt", b"sat 7", b"sat 99999999999999999999",
     r"words\.txt:7: expected a non-negative integer id"),
    ("vocab-words.txt", "words.txt", b"sat 7", b"sat 300000000",
     r"words\.txt:7: id 300000000 leaves 299999993 ids unused"),
    ("vocab-words.txt", "words.txt", b"sat 7", b"sat \xc2\xb2", r"expected a non-negative"),
    ("kaldi-text-ark", "nb/words_text", b"spk2-utt-002-1", b"spk2-utt-002-\xc2\xb2",
     r"words_text:4: expected a key <uttid>-<n> with n >= 1"),
    ("srilm-v3-list", "list", b"n/u2", b"n/" + b"x" * 5000, r"list:1: expected an N-best file"),
])
def test_absurd_values_are_clean_errors(name, rel, old, new, expect, tmp_path):
    case = Case(name, tmp_path)
    case.replace(rel, old, new)
    msg = str(case.error())
    assert re.search(expect, msg) and len(msg) < 1000


def test_deep_json_lookalike_reference_line(tmp_path):
    # "[[[..." is not JSON worth parsing: the refs reader treats it as a text line
    f = tmp_path / "text"
    f.write_bytes(b"[" * 100000 + b" A\n")
    assert read_refs(f) == {"[" * 100000: "A"}


def test_mlm_hypothesis_key_without_an_object_is_not_skipped(tmp_path):
    f = tmp_path / "m.json"
    f.write_text(json.dumps({"u": {"hyp_1": {"text": "a", "score": -1}, "hyp_2": "b c"}}))
    with pytest.raises(InputError, match=r"utterance 'u' hyp_2: expected a hypothesis"):
        read_nbest(f)


@pytest.mark.parametrize("ident", ["", None, 1.5, [1]])
def test_hyporadise_id_must_be_a_non_empty_string_or_integer(ident, tmp_path):
    f = tmp_path / "h.json"
    f.write_text(json.dumps([{"input": ["a"], "id": ident}]))
    with pytest.raises(InputError, match=r"entry 0: expected \"id\" to be a non-empty string"):
        read_nbest(f)
    f.write_text(json.dumps([{"input": ["a"], "id": 7}]))
    assert read_nbest(f).utts[0].utt == "7"


# ------------------------------------------------------------ damaged gzip --

def _damage(path: Path) -> None:
    data = gzip.compress(b"hello world\n" * 200, mtime=0)
    path.write_bytes(data[:20] + b"\xff" * 8 + data[28:])


def test_damaged_gzip_json_document_is_an_input_error(tmp_path):
    _damage(tmp_path / "nb.json.gz")
    with pytest.raises(InputError, match=r"nb\.json\.gz: cannot read"):
        read_nbest(tmp_path / "nb.json.gz")


# the shared line reader (fileio.read_lines) turns zlib.error into an InputError
def test_damaged_gzip_text_is_an_input_error(tmp_path):
    _damage(tmp_path / "corpus.txt.gz")
    with pytest.raises(InputError, match=r"corpus\.txt\.gz"):
        list(read_lines(tmp_path / "corpus.txt.gz"))
