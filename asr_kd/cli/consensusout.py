"""Outputs of `score --decode consensus` besides the hypotheses: the meshes with their
word posteriors (``--out-mesh``) and an nbest-rover control file (``--write-rover-control``)."""
from __future__ import annotations

from ..errors import InputError
from ..fileio import check_writable


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


def check_consensus_outputs(args, mode: str) -> None:
    """Refuse the options without consensus decoding, and unwritable outputs, before work."""
    given = [f for f, v in (("--out-mesh", args.out_mesh),
                            ("--write-rover-control", args.write_rover_control)) if v]
    if given and mode != "consensus":
        raise InputError(f"{' and '.join(given)} need{'s' if len(given) == 1 else ''} "
                         "consensus decoding (--decode consensus "
                         "or a weights file from `asr-kd tune --decode consensus`)")
    if args.out_mesh:
        check_writable(args.out_mesh, folder=True)
    if args.write_rover_control:
        from ..nbest.io import detect_format
        if (args.format or detect_format(args.nbest)) != "srilm":
            raise InputError("--write-rover-control needs SRILM input (the lists nbest-rover "
                             "reads): convert them with convert-nbest --to srilm", args.nbest)
        check_writable(args.write_rover_control)


def write_consensus_outputs(args, nbest, meshes, weights: dict, scale: float) -> None:
    """Write what ``--out-mesh`` / ``--write-rover-control`` ask for."""
    if args.write_rover_control:
        from ..nbest.srilm import write_rover_control
        from .scoringopts import srilm_keys, srilm_reader_opts

        dirs = srilm_reader_opts(args, args.format, args.nbest).get("scores", {})
        write_rover_control(args.write_rover_control, weights, scale, args.nbest, dirs,
                            **srilm_keys(args))
    if args.out_mesh:
        from ..consensus import write_meshes

        write_meshes(args.out_mesh, nbest, meshes)
