"""asr-kd export: a model folder to ONNX (fp32) or int8 ONNX, checked before it is written."""
from __future__ import annotations

from ..corpus import read_sentences
from ..export import OPSET, TOLERANCE, export_model
from ..fileio import check_writable
from .common import add_common


def register(sub) -> None:
    tol = "; ".join(f"{k}: " + ", ".join(f"{n} {v:g}" for n, v in t.items())
                    for k, t in TOLERANCE.items())
    p = sub.add_parser(
        "export", help="export a model to ONNX / int8 for onnxruntime",
        description="Export a trained model folder to an ONNX graph (opset "
        f"{OPSET}: tokens (B, T), h0/c0 (L, B, D) in; logprobs (B, T, V), h1/c1 out) plus its "
        "tokenizer, or to onnxruntime's dynamic int8 quantisation of it. The export scores "
        "check sentences with both the exported and the fp32 PyTorch model and writes nothing "
        f"if their log-probabilities differ beyond the tolerance ({tol}; natural log, per "
        "token, per sentence total, and relative perplexity). The folder works as --model in "
        "asr-kd rescore and asr-kd ppl. Needs onnxruntime: pip install 'asr_kd[onnx]'.")
    p.add_argument("--model", required=True, help="model folder (asr-kd train-lm / distill)")
    p.add_argument("--format", required=True, choices=["onnx", "int8"],
                   help="onnx: fp32 ONNX; int8: onnxruntime dynamic int8 quantisation")
    p.add_argument("--out", required=True, help="output folder (model.onnx, config.json, "
                   "words.txt or spm.model)")
    p.add_argument("--check-text", default=None,
                   help="sentences for the self-check (plain or Kaldi text; the first 64 are "
                   "used, each up to 100 tokens); default: 16 sentences sampled from the model")
    add_common(p)
    p.set_defaults(func=run)


def run(args) -> int:
    check_writable(args.out, folder=True)
    text = read_sentences(args.check_text)[:64] if args.check_text else None
    cfg = export_model(args.model, args.format, args.out, text)
    d = cfg["check"]["diff"]
    print(f"exported {args.model} as {cfg['precision']} ONNX (opset {OPSET}, "
          f"{cfg['size_mb']:.2f} MB) to {args.out}; check on {d['sentences']} sentences / "
          f"{d['tokens']} tokens: max |d log p| {d['token_max']:.2g} per token, "
          f"{d['sentence_max']:.2g} per sentence, perplexity {100 * d['ppl_rel']:.3f} % apart")
    return 0
