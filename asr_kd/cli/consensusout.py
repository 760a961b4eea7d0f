"""The options of the outputs of `score --decode consensus` besides the hypotheses: the
meshes with their word posteriors (``--out-mesh``) and an nbest-rover control file
(``--write-rover-control``); :mod:`asr_kd.score_set` checks and writes them."""
from __future__ import annotations


def add_consensus_output_args(p) -> None:
    """``--out-mesh DIR`` and ``--write-rover-control FILE``."""
    g = p.add_argument_group("consensus outputs (--decode consensus)")
    g.add_argument("--out-mesh", metavar="DIR",
                   help="write every utterance's confusion network with its word posteriors "
                   "to DIR/<utt> in SRILM's mesh format (as nbest-lattice -write-dir)")
    g.add_argument("--write-rover-control", metavar="FILE",
                   help="write an nbest-rover control file for these weights and posterior "
                   "scale (as nbest-optimize -write-rover-control); needs SRILM input, every "
                   "weighted extra score from --srilm-scores")
