"""asr-kd ppl: perplexity of a model folder (or an ensemble of several) on a text."""
from __future__ import annotations

from ..corpus import read_sentences
from ..modeldir import load_models
from ..perplexity import perplexity
from ..results import ppl_json
from ..device import pick_device
from .common import TEXT_FORMAT_HELP, add_common, add_device


def register(sub) -> None:
    p = sub.add_parser("ppl", help="perplexity of a model on a text")
    p.add_argument("--model", required=True, nargs="+",
                   help="model folder; several: their ensemble (one shared vocabulary)")
    p.add_argument("--ensemble", default="prob", choices=["prob", "logit"],
                   help="how several models combine: average probabilities or logits")
    p.add_argument("--text", required=True, help="text (plain or Kaldi text)")
    p.add_argument("--mode", default="stream", choices=["stream", "sentence"],
                   help="stream: the text as one stream, state carried across sentences (the "
                   "PTB convention); sentence: each sentence from <s> with a fresh state "
                   "(what rescoring sees) (default: stream)")
    p.add_argument("--text-format", default="auto", choices=["auto", "plain", "kaldi"],
                   help=TEXT_FORMAT_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_device(p)
    add_common(p)
    p.set_defaults(func=run)


def run(args) -> int:
    device = pick_device(args.device)
    model, tok = load_models(args.model, device, args.ensemble, allow_exported=True)
    res = perplexity(model, tok, read_sentences(args.text, args.text_format), args.mode,
                     device, quiet=args.quiet)
    if args.json:
        print(ppl_json(res, args.mode, word_unit=tok.kind == "words"))
    else:
        per_word = "" if tok.kind == "words" else \
            f"; per word {res['word_ppl']:.2f} over {res['words']} words"
        print(f"{' + '.join(args.model)}: {args.mode} ppl {res['ppl']:.2f} over {res['tokens']} tokens "
              f"({res['sentences']} sentences, {res['oov']} OOV words scored as <unk>){per_word}")
    return 0
