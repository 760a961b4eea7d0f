"""Export a trained LstmLM to ONNX (fp32 or int8) and run it with onnxruntime.

An exported folder holds ``model.onnx``, the tokenizer (``words.txt`` or
``spm.model``) and a ``config.json`` whose ``"format"`` is
``asr_kd-exported-lm``, so ``asr-kd rescore/ppl --model DIR`` recognise it.

The ONNX graph (opset :data:`OPSET`) runs a whole padded batch of sequences
with the recurrent state in and out; one rescoring step is the same graph with
T = 1::

    inputs   tokens   int64   (B, T)        token ids
             h0       float32 (L, B, D)     LSTM hidden state (D = hidden_dim)
             c0       float32 (L, B, D)     LSTM cell state
    outputs  logprobs float32 (B, T, V)     log p(next token | tokens up to t), natural log
             h1, c1   float32 (L, B, D)     state after the last position

``int8`` is onnxruntime's dynamic quantisation of that graph (int8 weights of
the LSTM and output MatMul, activations quantised per call).  torch.ao's
dynamic quantisation of the PyTorch model (LSTM + Linear) was measured against
it: see ``benchmarks/bench_export.py`` and :func:`quantize_torch`.

Every export checks itself before anything is written: the exported model and
the fp32 PyTorch model score a few sentences (``check_sentences``), both as
whole padded sequences and step by step through the rescoring trie, and a model
whose log-probabilities differ by more than :data:`TOLERANCE` is refused.

:class:`OnnxLM` implements :class:`asr_kd.lm.LanguageModel` (the scoring side), so
rescoring and perplexity run it through the same code paths (prefix trie,
stream/sentence batching) as the PyTorch model.  It runs on the CPU whatever ``device`` says.

``config.json`` keys: ``format``, ``version``, ``precision`` (fp32|int8),
``runtime`` (onnxruntime), ``onnx`` (file, opset, exporter, input and output
shapes), ``model`` (the ``LMConfig``), ``tokenizer``, ``checksums`` (``model.onnx``
and the tokenizer file), ``size_mb``, ``num_params``, ``source`` (the PyTorch
folder, its parameters and size), ``check`` (the self-check's differences and
tolerances).  LSTMP models (``proj_dim``) are refused.
"""
from __future__ import annotations

import json
import math
import os
import shutil

import torch
import torch.nn as nn

from .errors import AsrKdError, DependencyError, InputError
from .fileio import FileSet, output_lock, read_json, replace_folder, staging_folder
from .lm import LanguageModel
from .models import LMConfig, LstmLM

EXPORT_FORMAT = "asr_kd-exported-lm"
ONNX_FILE = "model.onnx"
CONFIG = "config.json"
# Opset 17: the TorchScript exporter's LSTM and LogSoftmax ops are in every
# onnxruntime >= 1.14; nothing newer is needed.
OPSET = 17
FORMATS = ("onnx", "int8")
INPUTS = ["tokens", "h0", "c0"]
OUTPUTS = ["logprobs", "h1", "c1"]

# The self-check's limits on |exported - fp32 torch| log-probabilities (natural log).
#   token_max:  largest per-token difference;  token_mean: mean per-token difference;
#   sentence_max: largest difference of a sentence's total;  ppl_rel: |ppl ratio - 1|.
# fp32 ONNX must agree to float rounding; int8 gets looser limits sized so that the
# perplexity moves by at most 1 % (the int8 target) and no token by more than 0.5 nats.
TOLERANCE = {
    "onnx": {"token_max": 1e-3, "token_mean": 1e-4, "sentence_max": 1e-2, "ppl_rel": 1e-4},
    "int8": {"token_max": 0.5, "token_mean": 0.05, "sentence_max": 1.0, "ppl_rel": 0.01},
}


# Tokens of one self-check sentence, at most: the check scores all sentences as one
# padded batch of (B, T, V) log-probabilities, so one 10^5-token line would ask for GBs.
MAX_CHECK_TOKENS = 100


class ExportCheckError(AsrKdError):
    """The exported model does not reproduce the PyTorch model within tolerance.

    Not an :class:`InputError`: the model folder is well formed; the export (the
    exporter, or int8 quantisation for this model) is what failed."""


def _need_ort():
    try:
        import onnxruntime
    except (ImportError, OSError, MemoryError) as e:
        why = " ".join(str(e).split())[:200] or type(e).__name__
        if _load_failure(e):
            raise DependencyError(f"onnxruntime is installed but cannot be loaded ({why}); "
                                  "out of memory or a broken installation") from None
        raise DependencyError("onnxruntime is not installed: pip install 'asr_kd[onnx]'") from None
    return onnxruntime


def _load_failure(e: BaseException) -> bool:
    """True when importing a package failed although it is installed: its shared
    library could not be mapped (out of memory, a broken build) or a module it
    needs is missing; False when the package itself is absent."""
    from .errors import out_of_memory

    if isinstance(e, ModuleNotFoundError):
        return e.name is not None and e.name.split(".")[0] != "onnxruntime"
    text = str(e).lower()
    return (not isinstance(e, ImportError) or out_of_memory(e)
            or any(t in text for t in ("failed to map", "shared object", ".so", "dll load",
                                       "undefined symbol")))


class _StepGraph(nn.Module):
    """What is exported: tokens (B, T), (h0, c0) -> log-probs (B, T, V), h1, c1."""

    def __init__(self, lm: LstmLM):
        super().__init__()
        self.lm = lm

    def forward(self, tokens, h0, c0):
        logits, (h1, c1) = self.lm(tokens, (h0, c0))
        return torch.log_softmax(logits, -1), h1, c1


def export_onnx(model: LstmLM, path: str) -> None:
    """Write ``model`` as an ONNX graph (see the module docstring) to ``path``."""
    if model.cfg.proj_dim > 0:
        raise InputError("ONNX export does not support LSTMP (proj_dim > 0): the ONNX LSTM "
                         "operator has no projection")
    model = model.float().eval()
    graph = _StepGraph(model).eval()  # a new Module is in training mode: dropout would be exported
    tokens = torch.zeros(2, 3, dtype=torch.long)
    h0, c0 = model.init_state(2, torch.device("cpu"))
    dyn = {"tokens": {0: "batch", 1: "time"}, "h0": {1: "batch"}, "c0": {1: "batch"},
           "logprobs": {0: "batch", 1: "time"}, "h1": {1: "batch"}, "c1": {1: "batch"}}
    # dynamo=False (the TorchScript exporter): it maps nn.LSTM to one ONNX LSTM op per
    # layer with batch and time both dynamic, in 0.2 s.  torch 2.13's default dynamo
    # exporter took 7 s, warned about the LSTM's _flat_weights, and fixed the time axis
    # of the output to the example's length (onnxruntime then warns on every other T).
    import warnings
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (tokens, h0, c0), path, input_names=INPUTS,
                          output_names=OUTPUTS, dynamic_axes=dyn, opset_version=OPSET,
                          dynamo=False, do_constant_folding=True)


def quantize_onnx(src: str, dst: str) -> None:
    """onnxruntime dynamic int8 quantisation of ``src`` (LSTM and MatMul weights)."""
    _need_ort()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    import logging

    # quantize_dynamic logs a "consider pre-processing" hint on the root logger (for
    # static quantisation of CNNs); it does not apply here, so keep the CLI quiet.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=False)
    finally:
        root.setLevel(level)


def quantize_torch(model: LstmLM) -> LstmLM:
    """torch.ao dynamic int8 quantisation (nn.LSTM and nn.Linear) of a copy of ``model``."""
    import copy
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice in favour of torchao
        return torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model).float().eval(), {nn.LSTM, nn.Linear}, dtype=torch.qint8)


def check_graph_shapes(session, cfg: LMConfig, path: str) -> None:
    """InputError naming the mismatch when the graph's inputs and outputs are not the
    ones :class:`OnnxLM` feeds for ``cfg``: tokens (B, T), h0/c0 and h1/c1
    (num_layers, B, hidden_dim), logprobs (B, T, vocab_size).

    A config.json edited (or copied from another export) beside a model.onnx would
    otherwise fail inside onnxruntime on the first batch; symbolic axes (batch,
    time) match anything.
    """
    state = (("num_layers", cfg.num_layers), None, ("hidden_dim", cfg.hidden_dim))
    want = {"tokens": (None, None), "h0": state, "c0": state,
            "logprobs": (None, None, ("vocab_size", cfg.vocab_size)), "h1": state, "c1": state}
    have = {a.name: a.shape for a in list(session.get_inputs()) + list(session.get_outputs())}
    missing = [n for n in INPUTS + OUTPUTS if n not in have]
    if missing:
        raise InputError(f"the ONNX graph has no {', '.join(missing)} (inputs "
                         f"{', '.join(a.name for a in session.get_inputs())}): not a model "
                         "written by asr-kd export", path)
    for name, dims in want.items():
        shape = list(have[name] or [])
        if len(shape) != len(dims):
            raise InputError(f"the ONNX graph's {name} has {len(shape)} axes, expected "
                             f"{len(dims)}", path)
        for dim, got in zip(dims, shape):
            if dim is not None and isinstance(got, int) and got != dim[1]:
                shown = ", ".join(str(d) for d in shape)
                raise InputError(f"{CONFIG} says {dim[0]} {dim[1]} but the ONNX graph's {name} "
                                 f"is ({shown}): the config does not belong to this model.onnx "
                                 "(export the model again)", path)


class OnnxLM(LanguageModel):
    """An exported LM run by onnxruntime: a :class:`~asr_kd.lm.LanguageModel` that can score.

    ``H`` is the graph's log-probabilities (B, T, V): ``hidden`` runs the whole
    graph and ``logprobs`` (and ``logits``, since normalised log-probs are valid
    logits for an ensemble's combine) returns ``H`` as it is.  It cannot be a
    distillation teacher (:func:`asr_kd.distill.teacher_logits` refuses it): the
    output layer lives in the graph.  State tensors are (L, B, D) as LstmLM's.
    Runs on the CPU with ``threads`` intra-op threads, default 1: a rescoring call is
    one step of a batch of trie nodes, too small for onnxruntime's threads to pay for
    their synchronisation (measured on the mini task's eval list with ``asr-kd rescore``:
    int8 student 10,479 hyps/s on 1 thread, 5,744 on 2; int8 teacher 5,517 and 4,158);
    run ``--nj`` shards to use more cores. Returns tensors on the inputs' device.
    """

    def __init__(self, path: str, cfg: LMConfig, threads: int | None = None):
        super().__init__()
        ort = _need_ort()
        self.cfg = cfg
        self.path = path
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or 1
        so.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            msg = " ".join(str(e).split())[:200]
            raise InputError(f"cannot load the ONNX model ({msg})", path) from None
        check_graph_shapes(self.session, cfg, path)

    @property
    def vocab_size(self) -> int:
        return self.cfg.vocab_size

    def init_state(self, batch_size: int, device=None):
        L, H = self.cfg.num_layers, self.cfg.hidden_dim
        z = torch.zeros(L, batch_size, H, device=device)
        return z, z.clone()

    def hidden(self, inputs: torch.Tensor, state=None):
        """inputs (B, T) -> (log-probs (B, T, V), (h1, c1))."""
        dev = inputs.device
        if state is None:
            state = self.init_state(inputs.shape[0])
        h0, c0 = state
        lp, h1, c1 = self.session.run(OUTPUTS, {
            "tokens": inputs.detach().to("cpu", torch.long).contiguous().numpy(),
            "h0": h0.detach().to("cpu", torch.float32).contiguous().numpy(),
            "c0": c0.detach().to("cpu", torch.float32).contiguous().numpy()})
        return (torch.from_numpy(lp).to(dev),
                (torch.from_numpy(h1).to(dev), torch.from_numpy(c1).to(dev)))

    def logits(self, lp: torch.Tensor) -> torch.Tensor:
        """The log-probabilities themselves (their log_softmax is themselves)."""
        return lp

    def logprobs(self, lp: torch.Tensor) -> torch.Tensor:
        """The identity: ``hidden`` already gives log-probabilities (..., V)."""
        return lp

    def forward(self, inputs, state=None):
        """inputs (B, T) -> (log-probs (B, T, V), new state)."""
        return self.hidden(inputs, state)

    def num_params(self) -> int:
        return 0  # the weights live in the ONNX graph


# ------------------------------------------------------------- self-check --

def sample_sentences(model: LstmLM, tokenizer, n: int = 16, max_len: int = 30,
                     seed: int = 0) -> list[list[int]]:
    """``n`` token-id sentences drawn from ``model`` itself (ancestral sampling, seeded),
    without <s>/</s>: realistic inputs for the self-check without any text."""
    gen = torch.Generator().manual_seed(seed)
    sents = []
    with torch.no_grad():
        for _ in range(n):
            tok, state, ids = torch.tensor([[tokenizer.bos]]), None, []
            for _ in range(max_len):
                logits, state = model(tok, state)
                p = torch.softmax(logits[0, -1].float(), -1)
                p[tokenizer.bos] = 0.0  # <s> is never a next token
                nxt = int(torch.multinomial(p, 1, generator=gen))
                if nxt == tokenizer.eos:
                    break
                ids.append(nxt)
                tok = torch.tensor([[nxt]])
            sents.append(ids or [tokenizer.eos + 1 if tokenizer.size > 2 else 0])
    return sents


def compare_models(ref: LstmLM, other, sentences: list[list[int]], bos: int, eos: int) -> dict:
    """Differences of ``other``'s log-probabilities from ``ref``'s on ``sentences``.

    Scores every sentence as one padded batch (whole sequences) and through the
    rescoring prefix trie (one step per level); returns the largest differences
    of both: token_max, token_mean, sentence_max, ppl_rel, plus counts.
    """
    from .corpus import pad_batch
    from .rescore import score_trie

    batch = pad_batch([[bos] + s + [eos] for s in sentences])
    with torch.no_grad():
        a, _ = ref.token_logprobs(batch.inputs, batch.targets)
        b, _ = other.token_logprobs(batch.inputs, batch.targets)
    mask = batch.targets >= 0
    d = (a.double() - b.double()).abs()[mask]
    ta, tb = a.double().sum(1), b.double().sum(1)
    trie_a, _ = score_trie(ref, sentences, bos, eos)
    trie_b, _ = score_trie(other, sentences, bos, eos)
    ntok = int(mask.sum())
    sent_diff = max(float((ta - tb).abs().max()),
                    max(abs(x - y) for x, y in zip(trie_a, trie_b)))
    return {"sentences": len(sentences), "tokens": ntok,
            "token_max": float(d.max()), "token_mean": float(d.mean()),
            "sentence_max": sent_diff,
            "ppl_rel": abs(math.exp((float(ta.sum()) - float(tb.sum())) / ntok) - 1.0)}


def check_within(diff: dict, tol: dict, what: str) -> None:
    """Raise :class:`ExportCheckError` naming every limit ``diff`` exceeds."""
    bad = [f"{k} {diff[k]:.3g} > {tol[k]:g}" for k in ("token_max", "token_mean", "sentence_max",
                                                        "ppl_rel") if diff[k] > tol[k]]
    if bad:
        raise ExportCheckError(f"the {what} model's log-probabilities differ from the fp32 "
                               f"PyTorch model's beyond tolerance ({'; '.join(bad)}, over "
                               f"{diff['sentences']} sentences, {diff['tokens']} tokens); "
                               "nothing written")


# ----------------------------------------------------------------- export --

def export_model(model_dir: str, fmt: str, out_dir: str, check_text: list[str] | None = None,
                 tolerance: dict | None = None) -> dict:
    """Export the model folder ``model_dir`` as ``fmt`` (onnx | int8) into ``out_dir``.

    ``check_text``: sentences for the self-check (default: 16 sampled from the
    model), each cut to its first :data:`MAX_CHECK_TOKENS` tokens.  ``tolerance``
    overrides :data:`TOLERANCE` [fmt].  Returns the config written; raises
    :class:`ExportCheckError` (writing nothing) when the check fails.

    ``out_dir`` is written whole or not at all: everything (the ONNX graphs
    too) is made in a staging folder beside it, which then takes its place
    (:func:`~asr_kd.fileio.replace_folder`); a killed export's staging folder is
    removed by the next export to ``out_dir``.  An ``out_dir`` holding a trained
    model, or files an export does not write, is refused; a second export to the
    same ``out_dir`` while one runs is refused (:func:`~asr_kd.fileio.output_lock`).
    """
    from .modeldir import check_out_kind, load_model

    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r} (expected {' or '.join(FORMATS)})")
    if os.path.realpath(out_dir) == os.path.realpath(model_dir):
        raise InputError("--out must be a new folder, not the model folder itself (its "
                         "config.json and tokenizer would be replaced)", out_dir)
    _need_ort()
    check_out_kind(out_dir, "exported", "export")
    _check_only_export_files(out_dir)
    model, tok, src_cfg = load_model(model_dir, "cpu")
    tol = dict(TOLERANCE[fmt], **(tolerance or {}))
    if check_text:
        sents = [ids[:MAX_CHECK_TOKENS] for ids in (tok.encode(s) for s in check_text) if ids]
        if not sents:
            raise InputError("the check text has no non-empty sentence")
    else:
        sents = sample_sentences(model, tok)
    with output_lock(out_dir, "export folder"):
        # looked at again under the lock: another writer may have changed it meanwhile
        check_out_kind(out_dir, "exported", "export")
        _check_only_export_files(out_dir)
        try:
            with staging_folder(out_dir) as stage:
                cfg = _export_into(stage, model, tok, src_cfg, model_dir, fmt, sents, tol)
                replace_folder(stage, out_dir)
        except OSError as e:
            raise InputError(f"cannot write: {e.strerror or e}", out_dir) from None
    return cfg


EXPORT_FILES = (CONFIG, ONNX_FILE, "words.txt", "spm.model")


def _check_only_export_files(out_dir: str) -> None:
    """Refuse an existing ``out_dir`` holding anything but an earlier export's files:
    the folder is replaced whole, and other files would go with it."""
    if not os.path.isdir(out_dir):
        return
    other = sorted(n for n in os.listdir(out_dir)
                   if n not in EXPORT_FILES and not n.startswith(".tmp-"))
    if other:
        raise InputError(f"--out holds files an export does not write ({', '.join(other[:3])}"
                         f"{' ...' if len(other) > 3 else ''}); the folder is replaced whole: "
                         "give a new or empty folder", out_dir)


def _export_into(stage: str, model: LstmLM, tok, src_cfg: dict, model_dir: str, fmt: str,
                 sents: list[list[int]], tol: dict) -> dict:
    """Export, self-check and write the folder's files into the empty folder ``stage``."""
    from .modeldir import file_crc32, save_tokenizer, tokenizer_files

    work = os.path.join(stage, ".work")
    os.makedirs(work)
    fp32 = os.path.join(work, "fp32.onnx")
    export_onnx(model, fp32)
    path = fp32
    if fmt == "int8":
        path = os.path.join(work, "int8.onnx")
        quantize_onnx(fp32, path)
    diff = compare_models(model, OnnxLM(path, model.cfg), sents, tok.bos, tok.eos)
    check_within(diff, tol, "ONNX int8" if fmt == "int8" else "ONNX fp32")
    tok_name = tokenizer_files(tok)
    cfg = {
        "format": EXPORT_FORMAT, "version": 1,
        "precision": "int8" if fmt == "int8" else "fp32",
        "runtime": "onnxruntime",
        "onnx": {"file": ONNX_FILE, "opset": OPSET, "exporter": "torch.onnx (TorchScript)",
                 "inputs": {"tokens": "int64 (B, T)", "h0": "float32 (L, B, D)",
                            "c0": "float32 (L, B, D)"},
                 "outputs": {"logprobs": "float32 (B, T, V) natural log",
                             "h1": "float32 (L, B, D)", "c1": "float32 (L, B, D)"}},
        "model": model.cfg.to_dict(),
        "tokenizer": dict(src_cfg.get("tokenizer", {}), kind=tok.kind, file=tok_name,
                          size=tok.size),
        "checksums": {ONNX_FILE: file_crc32(path)},
        "size_mb": round(os.path.getsize(path) / 1e6, 3),
        "num_params": model.num_params(),  # of the model exported (the report's column)
        "source": {"model": os.path.abspath(model_dir), "num_params": model.num_params(),
                   "size_mb": src_cfg.get("size_mb")},
        "check": {"diff": {k: (round(v, 8) if isinstance(v, float) else v)
                           for k, v in diff.items()}, "tolerance": tol},
    }
    with FileSet() as files:
        save_tokenizer(tok, stage, files)
        cfg["checksums"][tok_name] = file_crc32(files.staged_path(os.path.join(stage, tok_name)))
        with files.open(os.path.join(stage, ONNX_FILE), "wb") as f, open(path, "rb") as src:
            shutil.copyfileobj(src, f)
        with files.open(os.path.join(stage, CONFIG)) as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
    shutil.rmtree(work)
    return cfg


# ----------------------------------------------------------------- loading --

def is_exported(model_dir: str) -> bool:
    """True when ``model_dir/config.json`` says ``"format": "asr_kd-exported-lm"``."""
    try:
        return read_json(os.path.join(model_dir, CONFIG), "config").get("format") == EXPORT_FORMAT
    except InputError:
        return False  # read_config of the normal loader names the problem


def load_exported(model_dir: str):
    """``(OnnxLM, tokenizer, config)`` of an exported folder, checksums verified."""
    from .modeldir import _check_tokenizer, file_crc32, load_tokenizer_for

    cfg_path = os.path.join(model_dir, CONFIG)
    cfg = read_json(cfg_path, "exported-model config")
    try:
        lm_cfg = LMConfig.from_dict(cfg["model"])
        name = cfg["onnx"]["file"]
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"bad exported-model config ({e})", cfg_path) from None
    if not isinstance(name, str) or os.path.basename(name) != name:
        raise InputError(f"bad ONNX file name {name!r}", cfg_path)
    path = os.path.join(model_dir, name)
    if not os.path.isfile(path):
        raise InputError("missing ONNX model file", path)
    want = (cfg.get("checksums") or {}).get(name)
    if want is not None and file_crc32(path) != want:
        raise InputError(f"checksum differs from the one in {CONFIG}: the file was changed or "
                         "corrupted after the export", path)
    tok = load_tokenizer_for(model_dir, cfg)
    _check_tokenizer(model_dir, cfg, tok, lm_cfg.vocab_size)
    return OnnxLM(path, lm_cfg), tok, cfg
