"""The result files of a run: built and written here, read by :mod:`asr_kd.report`.

* ``exp/ppl/<system>.json``: ``asr-kd ppl --json`` (:func:`ppl_json`);
* ``exp/score/<system>/<set>.json``: ``asr-kd score --json`` (:func:`score_json`);
* ``exp/compare/<set>.<a>_vs_<b>.json``: ``asr-kd compare --json`` (:func:`compare_json`);
* ``exp/rescore/<set>.<system>.stats.json``: ``asr-kd rescore --stats-out``
  (:func:`write_rescore_stats`);
* ``exp/score/<system>/curve.json``: ``asr-kd tune --curve-out`` (:func:`write_curve`).

``ppl``, ``score`` and ``compare`` print their object on stdout (the recipe redirects it
into the file); ``rescore`` and ``tune`` write theirs atomically.  Where a run
keeps them is :class:`RunLayout`'s; the report is given one, so the layout is
written once, here.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

from .fileio import atomic_write

# score --json when there are no references: nothing could be scored
_UNSCORED = {"wer": None, "ser": None, "oracle_wer": None, "words": None, "ins": None,
             "del": None, "sub": None}


@dataclass(frozen=True)
class RunLayout:
    """Where the result files of one run lie under its experiment folder ``exp``
    (the layout ``recipes/wsj/run.sh`` writes)."""

    exp: str

    def ppl(self, system: str) -> str:
        """``asr-kd ppl --json`` of a system."""
        return os.path.join(self.exp, "ppl", f"{system}.json")

    def stats(self, set_name: str, system: str) -> str:
        """``asr-kd rescore --stats-out`` of a system on a set."""
        return os.path.join(self.exp, "rescore", f"{set_name}.{system}.stats.json")

    def score(self, system: str, set_name: str) -> str:
        """``asr-kd score --json`` of a system on a set."""
        return os.path.join(self.exp, "score", system, f"{set_name}.json")

    def curve(self, system: str) -> str:
        """``asr-kd tune --curve-out`` of a system."""
        return os.path.join(self.exp, "score", system, "curve.json")

    def weights(self, system: str) -> str:
        """``asr-kd tune --out`` of a system (:mod:`asr_kd.weights_file`)."""
        return os.path.join(self.exp, "score", system, "weights.json")

    def compare_dir(self) -> str:
        """The folder of ``asr-kd compare --json`` files, ``<set>.<a>_vs_<b>.json``."""
        return os.path.join(self.exp, "compare")


def ppl_json(res: dict, mode: str, word_unit: bool) -> str:
    """``ppl --json``: one line, ``ppl`` (per token, 4 decimals), ``tokens``, ``oov``,
    ``sentences`` of ``res`` (:func:`asr_kd.perplexity.perplexity`), the ``mode``, the
    ``unit`` of a token (``"word"`` for a word vocabulary, else ``"token"``),
    ``word_ppl`` (per word) and ``words``."""
    return json.dumps({"ppl": round(res["ppl"], 4), "tokens": res["tokens"], "oov": res["oov"],
                       "sentences": res["sentences"], "mode": mode,
                       "unit": "word" if word_unit else "token",
                       "word_ppl": round(res["word_ppl"], 4), "words": res["words"]})


def score_json(r, record: dict) -> str:
    """``score --json``: one line, the fields of ``r`` (a
    :class:`~asr_kd.scoring.WerResult`: wer, ser, oracle_wer, words, ins, del, sub,
    utts) then ``record`` (decode settings, scoring filter, SRILM weights)."""
    return json.dumps({**r.to_dict(), **record})


def unscored_json(utts: int, record: dict) -> str:
    """``score --json`` of a set without references: the fields of :func:`score_json`
    null but ``utts``, then ``record``."""
    return json.dumps({**_UNSCORED, "utts": utts, **record})


def compare_json(paths: tuple[str, str], results, runs: int, boot, sign, record: dict) -> str:
    """``compare --json``: one line, ``a`` and ``b`` (the systems' ``paths`` and pooled
    WER fields of ``results``, no oracle), ``runs`` (seed runs pooled), ``bootstrap``
    (:class:`~asr_kd.significance` interval), ``sign_test``, then ``record`` (the
    scoring filter)."""
    out = {name: {"path": path, **{k: v for k, v in r.to_dict().items() if k != "oracle_wer"}}
           for name, path, r in zip("ab", paths, results)}
    out["runs"] = runs
    out["bootstrap"] = {"diff": boot.diff, "mean": boot.mean, "low": boot.low,
                        "high": boot.high, "p_b_better": boot.p_b_better,
                        "n": boot.n, "seed": boot.seed}
    out["sign_test"] = {"test": sign.name, "a_better": sign.a_better,
                        "b_better": sign.b_better, "ties": sign.ties,
                        "p_value": sign.p_value}
    out.update(record)
    return json.dumps(out)


def write_rescore_stats(path: str, name: str, utts: int, stats, seconds: float, device,
                        threads: int, noise: list[str], shard: tuple[int, int]) -> None:
    """``rescore --stats-out``: ``name``, ``utts``, hypotheses scored (``hyps``,
    ``unique``), ``token_evals`` (of :class:`~asr_kd.rescore.ScoreStats`), wall
    ``seconds``, ``hyps_per_s``, ``device``, ``threads``, the ``noise`` patterns and,
    for one block of a sharded run, ``shard`` ("i/n")."""
    with atomic_write(path) as f:
        json.dump({"name": name, "utts": utts, "hyps": stats.sequences,
                   "unique": stats.unique_sequences, "token_evals": stats.token_evals,
                   "seconds": round(seconds, 3),
                   "hyps_per_s": round(stats.sequences / max(seconds, 1e-9), 1),
                   "device": str(device), "threads": threads, "noise": noise,
                   **({"shard": f"{shard[0]}/{shard[1]}"} if shard[1] > 1 else {})}, f)


def write_curve(path: str, key: str, best: float, wer: float, weights: dict, points,
                record: dict) -> None:
    """``tune --curve-out``: WER along the weight ``key`` (``points``: (weight, WER)
    pairs), the ``best`` value, the ``wer`` and ``weights`` written, then ``record``
    (the scoring filter)."""
    with atomic_write(path) as f:
        json.dump({"key": key, "best": best, "wer": wer, "weights": weights,
                   "points": [list(p) for p in points], **record}, f)


def plot_curve(path: str, key: str, curve, best: float) -> None:
    """``tune --plot``: WER against one weight, the chosen value marked; written
    atomically as PNG."""
    import matplotlib
    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    xs, ys = zip(*curve)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(xs, ys, marker=".")
    ax.axvline(best, color="grey", linestyle="--", label=f"best {key} = {best:g}")
    ax.set_xlabel(f"weight of {key}")
    ax.set_ylabel("WER (%)")
    ax.legend()
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)
