"""`compare`: two systems' WER on the same references, pooled over seed runs, with
significance.

Several runs of each system (models trained with different seeds) are compared
pooled: every utterance's errors and reference words are summed over the K
runs, so the WERs are the runs' pooled WER and the bootstrap
(:func:`asr_kd.significance.bootstrap_wer_diff`) resamples utterances with all
their runs together (the runs of one utterance are not independent samples).
References without a hypothesis in either system are left out with a warning
(the policy of every command); both systems must cover the same utterances.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .errors import InputError


@dataclass
class Comparison:
    """What :func:`compare_runs` found.

    results:  the two systems' :class:`~asr_kd.scoring.WerResult`, pooled over runs.
    utt_errs: per system, each utterance's errors summed over the runs.
    refs:     utterance id -> filtered reference, the utterances compared, in order.
    hyps:     per system, per run, utterance id -> filtered hypothesis.
    boot, sign: the bootstrap interval and the sign test (:mod:`asr_kd.significance`).
    """
    results: list
    utt_errs: list[list[int]]
    refs: dict[str, str]
    hyps: list[list[dict[str, str]]]
    boot: object
    sign: object

    @property
    def runs(self) -> int:
        return len(self.hyps[0])


def _shown(ids: list[str]) -> str:
    return ", ".join(ids[:10]) + (f" ... ({len(ids)} in all)" if len(ids) > 10 else "")


def system_nbest(refs: dict[str, str], hyps: dict[str, str], path: str):
    """One single-hypothesis utterance per reference, in reference order.

    Hypothesis ids must match the reference ids exactly (InputError listing the
    differences otherwise).
    """
    from .nbest.model import Hyp, NBest, Utterance

    missing = [u for u in refs if u not in hyps]
    if missing:
        raise InputError(f"{len(missing)} reference ids have no hypothesis here but do in the "
                         f"other system (the systems must cover the same utterances): "
                         f"{_shown(missing)}", path)
    extra = [u for u in hyps if u not in refs]
    if extra:
        raise InputError(f"{len(extra)} hypothesis ids are not in the references: "
                         f"{_shown(extra)}", path)
    return NBest([Utterance(u, [Hyp(hyps[u])], ref) for u, ref in refs.items()])


def compare_runs(ref_path: str, runs_a: list[str], runs_b: list[str], flt, n_boot: int,
                 seed: int, warn: Callable[[str], None]) -> Comparison:
    """Compare system A (hypothesis files ``runs_a``, one per seed run) with B
    (``runs_b``, as many) on the references of ``ref_path``, both sides through the
    scoring filter ``flt`` (:class:`asr_kd.noise.NoiseFilter`); ``n_boot`` bootstrap
    samples drawn with ``seed``.  Warnings (references left out, opposite cases) go
    to ``warn``."""
    from .checks import ref_hyp_case_mismatch, require_ref_words
    from .nbest import read_refs
    from .scoring import corpus_wer, hyp_error_matrix, pool_wer
    from .significance import bootstrap_wer_diff, sign_test

    refs = read_refs(ref_path)
    if not refs:
        raise InputError("no references", ref_path)
    if len(runs_a) != len(runs_b) or "" in runs_a + runs_b:
        raise InputError(f"HYP_A has {len(runs_a)} runs and HYP_B {len(runs_b)}: give the "
                         "same number of comma-separated files")
    hyps = [[{u: flt.text(h) for u, h in read_refs(path).items()} for path in runs]
            for runs in (runs_a, runs_b)]  # the scoring filter, both sides
    unused = [u for u in refs if all(u not in h for runs in hyps for h in runs)]
    if unused:
        if len(unused) == len(refs):
            raise InputError("no reference id has a hypothesis in either system", ref_path)
        warn(f"{ref_path}: {len(unused)} references have no hypothesis in either "
             f"system and are left out (first: {', '.join(unused[:5])})")
        left_out = set(unused)
        refs = {u: r for u, r in refs.items() if u not in left_out}
    refs = {u: flt.text(r) for u, r in refs.items()}
    require_ref_words(refs.values(), ref_path)
    results, utt_errs = [], []
    for runs, run_hyps in zip((runs_a, runs_b), hyps):
        pooled = [0] * len(refs)
        run_results = []
        for path, hyp in zip(runs, run_hyps):
            nb = system_nbest(refs, hyp, path)
            if not results and not run_results:
                msg = ref_hyp_case_mismatch(nb)
                if msg:
                    warn(msg)
            errs = hyp_error_matrix(nb)
            run_results.append(corpus_wer(nb, [0] * len(nb), errs))
            pooled = [t + int(e[0, 0]) for t, e in zip(pooled, errs)]
        results.append(pool_wer(run_results))
        utt_errs.append(pooled)
    words = [len(r.split()) * len(runs_a) for r in refs.values()]
    boot = bootstrap_wer_diff(utt_errs[0], utt_errs[1], words, n=n_boot, seed=seed)
    sign = sign_test(utt_errs[0], utt_errs[1])
    return Comparison(results, utt_errs, refs, hyps, boot, sign)


def write_compare_details(out_dir: str, c: Comparison, paths: tuple[str, str], ref_path: str,
                          noise: list[str]) -> None:
    """``compare --details DIR``: where the systems differ (:mod:`asr_kd.system_diff`);
    the alignments' errors are checked against the compared ones."""
    from .system_diff import differences, write_differences

    utts = list(c.refs)
    d = differences(utts, [c.refs[u] for u in utts],
                    *([[h[u] for u in utts] for h in runs] for runs in c.hyps))
    if [d.errs_a, d.errs_b] != [list(e) for e in c.utt_errs]:
        raise RuntimeError("the alignments' errors differ from the compared WERs")
    write_differences(out_dir, d, paths=paths, extra={"ref": ref_path, "noise": noise})
