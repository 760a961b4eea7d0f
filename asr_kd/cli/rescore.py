"""asr-kd rescore: add an LM score to every hypothesis of an N-best set."""
from __future__ import annotations

import logging
import os
import time

from ..errors import InputError
from ..fileio import check_writable
from ..modeldir import load_models
from ..nbest import read_nbest, write_kaldi_folder, write_nbest
from ..nbest.model import utt_ids_digest
from ..rescore import lm_input, rescore_nbest, scoring_threads
from ..results import write_rescore_stats
from ..jobs import finish_under_torchrun, job_shard, split_by_torchrun
from ..sharding import merge_shards, shard_path, write_shard
from ..textfilter import TextFilter
from ..device import pick_device
from ..checks import oov_report, oov_warning
from .common import add_common, add_device, setup_logging, warn

log = logging.getLogger("asr_kd")


def register(sub) -> None:
    p = sub.add_parser(
        "rescore", help="add lm:NAME scores to N-best hypotheses",
        description="Score every hypothesis with an LM (or an ensemble of LMs) and add "
        "'lm:NAME' (natural-log sentence probability with </s>), 'oov:NAME' and 'nwords'. "
        "All existing scores are kept.")
    p.add_argument("--nbest", required=True, help="N-best input (file or folder)")
    p.add_argument("--format", default=None, help="input format (default: detected)")
    p.add_argument("--model", required=True, nargs="+", help="model folder(s); several = ensemble")
    p.add_argument("--ensemble", default="prob", choices=["prob", "logit"],
                   help="how several models combine (default: probability average)")
    p.add_argument("--name", required=True, help="score key suffix: adds lm:NAME")
    p.add_argument("--out", required=True, help="output: .jsonl[.gz] file, or a Kaldi folder "
                   "with --out-format kaldi")
    p.add_argument("--out-format", default="jsonl", choices=["jsonl", "kaldi"],
                   help="jsonl: the N-best set with the new score lm:NAME; kaldi: a folder with "
                   "lmwt.NAME archives beside the input's, for linear-to-nbest (default: jsonl)")
    from .scoringopts import add_noise_options, add_srilm_scores_option
    add_srilm_scores_option(p)
    add_noise_options(p, case=False, what="words removed from the hypotheses before LM scoring "
                      "(pauses and noise are non-events to the LM, as in SRILM's N-best "
                      "rescoring), before any --text-filter; the scoring commands take "
                      "the same options")
    p.add_argument("--text-filter", default=None,
                   help="rules file or inline rules ('lowercase; mister => mr.') applied "
                   "before LM scoring only; after a file, '-BLOCK' leaves a named block out and "
                   "'+BLOCK' keeps only the named ones ('conf/whisper_to_ptb.rules -numbers'; "
                   "python -m asr_kd.textfilter --list FILE lists them)")
    p.add_argument("--batch-tokens", type=int, default=20000,
                   help="memory bound: consecutive utterances are grouped so that the new "
                   "unique token sequences of a group, each counted as its length + 1, sum "
                   "to at most this (one utterance may exceed it) (default: 20000)")
    p.add_argument("--method", default="trie", choices=["trie", "padded"],
                   help="trie: shared prefixes scored once (default); padded: naive")
    p.add_argument("--max-oov-rate", type=float, default=0.2,
                   help="warn when more than this share of the hypothesis words (after "
                   "--text-filter) is out of the LM's vocabulary (default 0.2); a case "
                   "mismatch (lower-case lists, upper-case LM) is reported from 5 %% on, with "
                   "the --text-filter rule that fixes it")
    p.add_argument("--stats-out", help="also write timing and counts as JSON")
    p.add_argument("--shard", default=None,
                   help="i/n: score only the i-th of n contiguous blocks of utterances and write "
                   "OUT.shard-i-of-n.jsonl[.gz] (then: asr-kd merge --kind rescore OUT); "
                   "under torchrun the default is RANK/WORLD_SIZE, and rank 0 merges at the end")
    add_device(p)
    add_common(p)
    p.set_defaults(func=run)


def run(args) -> int:
    setup_logging(args)
    if not args.name or any(c.isspace() for c in args.name):
        raise InputError(f"--name must be a non-empty word, got {args.name!r}")
    if not 0 <= args.max_oov_rate <= 1:
        raise InputError(f"--max-oov-rate must lie in [0, 1], got {args.max_oov_rate}")
    if args.batch_tokens < 1:
        raise InputError(f"--batch-tokens must be a positive number, got {args.batch_tokens}")
    job = job_shard(args.shard)   # (i, n): this job scores block i of n
    under_torchrun = split_by_torchrun(args.shard)
    if job[1] > 1 and args.out_format != "jsonl":
        raise InputError("sharded rescoring writes jsonl shards: use --out-format jsonl "
                         "(convert the merged file afterwards)")
    # Refuse an output that cannot be created now, not after minutes of scoring.
    check_writable(shard_path(args.out, *job) if job[1] > 1 else args.out,
                   folder=args.out_format == "kaldi")
    if args.stats_out:
        check_writable(args.stats_out)
    device = pick_device(args.device)
    from .scoringopts import noise_from_args, srilm_reader_opts
    nbest = read_nbest(args.nbest, args.format, **srilm_reader_opts(args, args.format, args.nbest))
    if args.out_format == "kaldi" and nbest.num_hyps():
        # checked before scoring, not after minutes of it (write_kaldi_nbest needs both)
        missing = [k for k in ("am", "lm0") if k not in nbest.score_keys()]
        if missing:
            raise InputError(f"--out-format kaldi needs scores 'am' and 'lm0' on every "
                             f"hypothesis; this N-best lacks {', '.join(missing)} (write jsonl)",
                             args.nbest)
    model, tok = load_models(args.model, device, args.ensemble, allow_exported=True)
    filt = lm_input(noise_from_args(args), TextFilter.from_spec(args.text_filter))
    log.info("scoring %d hypotheses of %d utterances with %s", nbest.num_hyps(), len(nbest),
             " + ".join(args.model))
    t0 = time.time()
    num_utts, digest = len(nbest), utt_ids_digest(nbest)
    nbest, stats = rescore_nbest(nbest, model, tok, args.name, filt, args.method,
                                 args.batch_tokens, device, quiet=args.quiet,
                                 job=job if job[1] > 1 else None)
    dt = time.time() - t0
    msg = oov_warning(oov_report(nbest, tok, filt), ", ".join(args.model), args.max_oov_rate)
    if msg:
        warn("rescore", msg)
    written = args.out
    if job[1] > 1:
        written = write_shard(nbest, args.out, job, num_utts, digest,
                              {"name": args.name, "models": [os.path.abspath(m) for m in args.model],
                               "ensemble": args.ensemble, "text_filter": args.text_filter,
                               "noise": list(filt.noise.patterns)})
    elif args.out_format == "kaldi":
        write_kaldi_folder(nbest, args.out, args.name)
    else:
        write_nbest(nbest, args.out, "jsonl")
    if args.stats_out:
        write_rescore_stats(args.stats_out, args.name, len(nbest), stats, dt, device,
                            scoring_threads(model), list(filt.noise.patterns), job)
    print(f"scored {stats.sequences} hypotheses ({stats.unique_sequences} unique) of "
          f"{len(nbest)} utterances in {dt:.1f} s ({stats.sequences / max(dt, 1e-9):.0f} hyps/s, "
          f"{stats.token_evals} LM token evaluations); wrote {written}")
    if under_torchrun:
        # every rank has written its shard: rank 0 checks them all and writes OUT
        n = finish_under_torchrun(lambda: merge_shards(args.out, job[1]))
        if n is not None:
            print(f"merged {n} shards into {args.out}")
    return 0
