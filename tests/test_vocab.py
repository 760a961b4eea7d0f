"""Word vocabulary (Kaldi words.txt compatible) and the SentencePiece tokenizer."""
from __future__ import annotations

import random

import pytest

from asr_kd.cli import main
from asr_kd.errors import InputError
from asr_kd.vocab import SpmTokenizer, WordVocab, load_tokenizer, load_vocab_path

SENTS = ["the cat sat", "the dog sat", "a cat ran", "the cat ran far", "zebra"]


def test_build_order_and_specials():
    v = WordVocab.build(SENTS)
    assert (v.bos, v.eos, v.unk) == (0, 1, 2)
    assert v.itos[:3] == ["<s>", "</s>", "<unk>"]
    # by descending count, ties alphabetical: the 3, cat 3, ran 2, sat 2, then singletons
    assert v.itos[3:] == ["cat", "the", "ran", "sat", "a", "dog", "far", "zebra"]
    assert v.size == len(v) == 11


def test_build_ignores_special_symbols_in_text():
    v = WordVocab.build(["<s> a </s>", "<unk> a b"])
    assert v.itos == ["<s>", "</s>", "<unk>", "a", "b"]


def test_words_txt_round_trip(tmp_path):
    v = WordVocab.build(SENTS)
    path = tmp_path / "words.txt"
    v.save(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[:3] == ["<s> 0", "</s> 1", "<unk> 2"]
    w = WordVocab.load(path)
    assert w.itos == v.itos and w.stoi == v.stoi
    for s in SENTS + ["never seen words"]:
        assert w.encode(s) == v.encode(s)
    assert load_tokenizer(tmp_path).itos == v.itos
    assert load_vocab_path(tmp_path).itos == v.itos
    assert load_vocab_path(path).itos == v.itos


def test_max_size_and_min_count():
    v = WordVocab.build(SENTS, max_size=5)
    assert v.size == 5 and v.itos[3:] == ["cat", "the"]
    v = WordVocab.build(SENTS, min_count=2)
    assert v.itos[3:] == ["cat", "the", "ran", "sat"]
    v = WordVocab.build(SENTS, max_size=6, min_count=2)
    assert v.itos[3:] == ["cat", "the", "ran"]
    v = WordVocab.build(SENTS, min_count=10)
    assert v.itos == ["<s>", "</s>", "<unk>"]


def test_encode_decode_and_oov():
    v = WordVocab.build(SENTS)
    ids = v.encode("the  cat\tflew far")
    assert ids == [v.stoi["the"], v.stoi["cat"], v.unk, v.stoi["far"]]
    assert v.decode(ids) == "the cat <unk> far"
    assert v.count_oov("the cat flew over far away") == 3
    assert v.count_oov("<unk> cat") == 0      # a literal <unk> is in the vocabulary
    assert v.encode("") == [] and v.count_oov("") == 0


def test_kaldi_words_txt(tmp_path):
    path = tmp_path / "words.txt"
    # Kaldi layout: <eps> 0, specials anywhere, disambiguation symbols, gaps in ids,
    # lines not in id order.
    path.write_text("<eps> 0\n!SIL 1\n<unk> 2\nhello 3\nworld 7\n<s> 9\n</s> 10\n#0 12\n"
                    "\n"
                    "again 5\n", encoding="utf-8")
    v = WordVocab.load(path)
    assert v.size == 13                       # max id + 1
    assert (v.bos, v.eos, v.unk) == (9, 10, 2)
    assert v.encode("hello world again nope") == [3, 7, 5, 2]
    assert v.stoi["<eps>"] == 0 and v.stoi["#0"] == 12
    assert v.itos[4] is None and v.itos[11] is None
    # saving keeps every id (holes stay holes)
    out = tmp_path / "out" / "words.txt"
    v.save(out)
    w = WordVocab.load(out)
    assert w.itos == v.itos and w.size == 13


@pytest.mark.parametrize("text,line,what", [
    ("<s> 0\n</s> 1\n<unk> 2\na 2\n", 4, "used twice"),
    ("<s> 0\n</s> 1\n<unk> 2\na 3\na 4\n", 5, "listed twice"),
    ("<s> 0\n</s> 1\n<unk> 2\na 3 extra\n", 4, "expected 'word id'"),
    ("<s> 0\n</s> 1\n<unk> 2\nlonely\n", 4, "expected 'word id'"),
    ("<s> 0\n</s> 1\n<unk> x\n", 3, "integer id"),
    ("<s> 0\n</s> -1\n<unk> 2\n", 2, "negative"),
])
def test_bad_words_txt_names_file_and_line(tmp_path, text, line, what):
    path = tmp_path / "words.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as e:
        WordVocab.load(path)
    assert str(e.value).startswith(f"{path}:{line}: ")
    assert what in str(e.value)
    assert e.value.line == line and e.value.path == str(path)


def test_words_txt_missing_unk_or_empty(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("<s> 0\n</s> 1\nhello 2\n", encoding="utf-8")
    with pytest.raises(InputError, match="lacks <unk>") as e:
        WordVocab.load(path)
    assert str(e.value).startswith(str(path))
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="empty vocabulary"):
        WordVocab.load(path)
    with pytest.raises(InputError, match="no such file") as e:
        WordVocab.load(tmp_path / "nope.txt")
    assert "nope.txt" in str(e.value)
    with pytest.raises(InputError, match="neither words.txt nor spm.model"):
        load_vocab_path(tmp_path / "..")


def test_words_txt_not_utf8(tmp_path):
    path = tmp_path / "words.txt"
    path.write_bytes(b"<s> 0\n</s> 1\n<unk> 2\ncaf\xe9 3\n")
    with pytest.raises(InputError) as e:
        WordVocab.load(path)
    assert str(e.value).startswith(f"{path}:4: ")


def test_cli_vocab_words(tmp_path, capsys):
    text = tmp_path / "text"
    text.write_text("u1 b a\nu2 a c c\nu3 a\n", encoding="utf-8")   # Kaldi text: ids dropped
    assert main(["vocab", "--text", str(text), "--out", str(tmp_path / "v"), "--min-count", "2"]) == 0
    v = WordVocab.load(tmp_path / "v" / "words.txt")
    assert v.itos == ["<s>", "</s>", "<unk>", "a", "c"]
    out = capsys.readouterr().out
    assert "5 ids" in out and "1/6 training tokens become <unk>" in out


def _spm_text(path, n=300, seed=0):
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "lambda"]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(2, 8))) for _ in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def test_spm_round_trip(tmp_path, capsys):
    text = tmp_path / "train.txt"
    lines = _spm_text(text)
    out = tmp_path / "spm"
    assert main(["vocab", "--text", str(text), "--out", str(out), "--spm-size", "40",
                 "--text-format", "plain"]) == 0
    assert "spm.model" in capsys.readouterr().out
    assert not [p for p in out.iterdir() if p.name.startswith(".spm-tmp")]
    tok = load_vocab_path(out)
    assert isinstance(tok, SpmTokenizer) and tok.kind == "spm"
    assert (tok.unk, tok.bos, tok.eos) == (0, 1, 2)
    assert tok.sp.IdToPiece(1) == "<s>" and tok.sp.IdToPiece(2) == "</s>"
    assert tok.size == len(tok) and 10 < tok.size <= 40
    for s in lines[:50]:
        ids = tok.encode(s)
        assert ids and all(0 <= i < tok.size for i in ids)
        assert tok.unk not in ids and tok.count_oov(s) == 0
        assert tok.decode(ids) == s
    # a character never seen in training becomes <unk>
    assert tok.count_oov("alpha \u4e2d beta") == 1
    assert load_tokenizer(out, "spm").size == tok.size
    assert load_vocab_path(out / "spm.model").size == tok.size


def test_spm_bad_model_and_size(tmp_path, capsys):
    bad = tmp_path / "spm.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError) as e:
        SpmTokenizer(bad)
    assert str(e.value).startswith(str(bad))
    with pytest.raises(InputError, match="no such"):
        SpmTokenizer(tmp_path / "missing.model")
    text = tmp_path / "t.txt"
    _spm_text(text, n=10)
    assert main(["vocab", "--text", str(text), "--out", str(tmp_path / "o"), "--spm-size", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("asr-kd vocab: error:")


def test_spm_training_failure_names_the_text(tmp_path, capsys):
    text = tmp_path / "t.txt"
    _spm_text(text, n=20)           # ~20 distinct characters: 5 pieces cannot cover them
    rc = main(["vocab", "--text", str(text), "--out", str(tmp_path / "o"), "--spm-size", "5"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"asr-kd vocab: error: {text}: SentencePiece training failed")
