"""Reproduce the published WERs of the real ESPnet LibriSpeech 30-best lists.

Numbers from ../shared/data/README.md (2 decimals): first-pass 1-best (the
ESPnet ``score``), acoustic only (0.6 decoder + 0.4 ctc) and oracle of 30.
Skipped when the shared data folder is absent.
"""
from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NBEST = DATA / "librispeech-espnet-nbest"

pytestmark = [
    pytest.mark.slow,  # about 10 s per set: jiwer aligns ~80k hypotheses
    pytest.mark.skipif(not NBEST.is_dir(), reason=f"real data not found at {NBEST}"),
]

# set: (utts, ref words, first-pass WER, acoustic-only WER, oracle WER)
EXPECTED = {
    "dev_clean": (2703, 54402, 1.70, 1.88, 0.59),
    "dev_other": (2864, 50948, 3.61, 4.04, 1.76),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_espnet_wer(name):
    from asr_kd.nbest import attach_refs, read_nbest, read_refs
    from asr_kd.scoring import corpus_wer, hyp_error_matrix, pick_best

    utts, words, first, acoustic, oracle = EXPECTED[name]
    nbest = read_nbest(NBEST / name, "espnet")
    ref = NBEST / name / "ref" / "text"
    assert attach_refs(nbest, read_refs(ref), ref) == []
    errors = hyp_error_matrix(nbest)  # once, for every selection below

    r = corpus_wer(nbest, pick_best(nbest, {"score": 1.0}), errors)
    assert (r.utts, r.words) == (utts, words)
    assert round(r.wer, 2) == first
    assert round(r.oracle_wer, 2) == oracle
    r = corpus_wer(nbest, pick_best(nbest, {"decoder": 0.6, "ctc": 0.4}), errors)
    assert round(r.wer, 2) == acoustic
