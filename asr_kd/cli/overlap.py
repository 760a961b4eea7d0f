"""`asr-kd overlap`: how many reference sentences and n-grams the LM text already holds.

Prints, per ``--ref``, the reference sentences found whole in the LM text and the
share of reference n-grams (n = 8) found there, after the LM-input filter
(``--text-filter``, as given to ``rescore``).  ``--max-sentences`` /
``--max-ngrams`` turn a share above the limit into an error (exit 2), after
``--out`` is written, so a recipe stops before it trains on its test set.
"""
from __future__ import annotations

import json
import math

from ..errors import InputError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "overlap", help="leakage guard: reference sentences and n-grams found in the LM text",
        description=__doc__.split("\n\n")[0])
    p.add_argument("--lm-text", nargs="+", required=True, metavar="FILE",
                   help="LM training (and validation) text: plain or Kaldi text, .gz allowed")
    p.add_argument("--ref", action="append", required=True, metavar="FILE",
                   help="references (Kaldi text or sclite trn; repeatable: dev, eval)")
    p.add_argument("--text-filter", default=None, metavar="SPEC",
                   help="the LM-input filter the references go through first (rules file "
                   "or inline rules, as for rescore)")
    p.add_argument("--ngram", type=int, default=8, metavar="N", help="n-gram order (default 8)")
    p.add_argument("--max-sentences", type=float, default=None, metavar="PCT",
                   help="error (exit 2) when more than PCT %% of a set's reference sentences "
                   "occur in the LM text")
    p.add_argument("--max-ngrams", type=float, default=None, metavar="PCT",
                   help="error (exit 2) when more than PCT %% of a set's reference n-grams "
                   "occur in the LM text")
    p.add_argument("--out", metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..fileio import atomic_write, check_writable
    from ..nbest import read_refs
    from ..overlap import LmTextIndex
    from ..textfilter import TextFilter

    for name in ("max_sentences", "max_ngrams"):
        v = getattr(args, name)
        if v is not None and not (math.isfinite(v) and 0 <= v <= 100):
            raise InputError(f"--{name.replace('_', '-')} {v}: expected a percentage, 0 to 100")
    if args.out:
        check_writable(args.out)
    flt = TextFilter.from_spec(args.text_filter)
    sets = []
    for path in args.ref:
        refs = read_refs(path)
        if not refs:
            raise InputError("no references", path)
        sets.append((path, refs))
    index = LmTextIndex(args.lm_text, args.ngram)
    results = [(path, index.check(refs, flt)) for path, refs in sets]
    obj = {"text_filter": args.text_filter, "n": args.ngram,
           "limits": {"sentences": args.max_sentences, "ngrams": args.max_ngrams},
           "sets": [{"ref": path, **r.to_dict()} for path, r in results]}
    if args.out:
        with atomic_write(args.out) as f:
            json.dump(obj, f, indent=1)
    if args.json:
        print(json.dumps(obj))
    else:
        for path, r in results:
            print("\n".join(r.lines(path)))
    for path, r in results:
        for share, limit, what in ((r.exact_share, args.max_sentences, "reference sentences"),
                                   (r.ngram_share, args.max_ngrams, f"reference {r.n}-grams")):
            if limit is not None and share > limit:
                ex = f" (e.g. {', '.join(r.examples[:3])})" if r.examples else ""
                raise InputError(
                    f"{share:.2f} % of the {what} occur in the LM text{ex}, above the limit "
                    f"of {limit:g} %: the LM has seen this test set; take these sentences out "
                    f"of the LM text, or raise the limit if the overlap is expected", path)
    return 0
