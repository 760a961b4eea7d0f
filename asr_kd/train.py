"""One training loop for LM training and distillation.

:func:`train` is a short driver over parts that each read in one sitting:
for each epoch, :func:`_train_epoch` runs :func:`_train_step` on each batch
(ask the *objective* for a summed loss, backpropagate, clip, step; a non-finite
step is skipped); :func:`_end_epoch` validates, writes the metrics row, saves
the best model and adjusts the learning rate; :func:`_save_checkpoint` writes
``train_state.pt`` (:mod:`asr_kd.checkpoint`).  Where the run is lives in a
:class:`~asr_kd.checkpoint.TrainPosition` ("position"); the LSTM's recurrent
state carried between batches is the "rec_state" (saved as ``stream_state``).

An objective provides::

    init_state(model, batch_size, device) -> rec_state
    loss(model, batch, rec_state) -> (loss_sum: Tensor, parts: dict[str, float], rec_state)

where ``loss_sum`` is summed over the batch's real tokens (parts are sums too;
a ``hard`` part, the cross-entropy on the true next word, gives the training
perplexity of a distillation).

Resume is exact: ``train_state.pt`` (:mod:`asr_kd.checkpoint`: loaded with
``weights_only=True``, so no pickled code runs, and checked against a CRC32 of
its content, which torch.load does not verify) holds the current weights,
optimizer, torch RNG states and the position (learning rate, epoch, step within
the epoch and, in stream mode, the carried recurrent state).  It is replaced
atomically, so a kill at any moment leaves the previous or the new checkpoint,
never a partial one.  Data order
is a function of (seed, epoch), so a resumed run sees the same batches and
reaches the same final weights as an uninterrupted one on the same device.
``model.safetensors`` holds the best weights by validation perplexity.
SIGTERM or SIGINT (Ctrl-C) sets a flag: the loop writes a checkpoint after the
current step (or at the end of validation) and raises :class:`Interrupted`; a
second signal stops at once.

Data parallelism (``torchrun --nproc_per_node=K ...``, or a caller-initialised
process group): every rank runs this same loop on its share of each global
batch (:mod:`asr_kd.corpus`: ``batch_size`` is per rank, the global batch is
``batch_size * world``).  The model is wrapped with DistributedDataParallel
through :class:`_ObjectiveStep`, a module whose ``forward`` *is* the
objective's loss, so every parameter the objective touches (``model.hidden``,
``model.output_weight``, ...) is seen by DDP's gradient all-reduce.  Token
counts, loss sums and the parts are all-reduced every step, and each rank's
loss is scaled by ``world / global tokens``; DDP's gradient average then equals
the gradient of the mean loss over the global batch, i.e. exactly what one
process with ``batch_size * world`` computes (the learning rate is that of the
global batch).  Validation runs on every rank's share with summed NLL and
tokens.  Rank 0 alone writes checkpoints (holding every rank's RNG and stream
state), metrics and the model; a resume needs the same world size.

A step: the recurrent state is reset where a batch starts fresh (sentence mode,
or the first stream window) and detached; the objective runs under bf16
autocast with ``amp`` on CUDA or ``cpu_bf16`` on a CPU; the loss sum is divided
by tokens (``grad_reduction: token``) or rows (``sequence``, Zaremba); the
gradient norm is clipped (``clip``).  A non-finite loss or gradient norm skips
the step (``skipped_steps``, state reset); ``max_bad_steps`` in a row write a
checkpoint and stop with a TrainingError.  An epoch end: validation perplexity
(summed NLL over tokens), the metrics row, a new best saves the model folder
(rank 0), the LR schedule (``plateau``: times ``decay_factor`` unless perplexity
improved by more than the relative ``plateau_threshold``; ``epoch_decay``:
lr x decay_factor^max(0, e - decay_start) for 1-based epoch e as it starts; both
floored at ``min_lr``), early stop after ``early_stop`` epochs without
improvement, checkpoint.  Seeds: sentence mode shuffles with
``random.Random(seed * 100003 + epoch)`` (stream mode is fixed) and
``torch.manual_seed(seed + rank)`` seeds dropout.

``metrics.csv``, one row per epoch: ``epoch``, ``step`` (global), ``lr``,
``train_loss``, ``train_ppl`` (from the hard part when distilling),
``valid_ppl``, ``tokens``, ``seconds``, ``tokens_per_s``, ``skipped_steps``; a
student adds the per-token means ``hard``, ``soft``, ``trust``.
"""
from __future__ import annotations

import csv
import logging
import math
import os
import signal
import time
from dataclasses import asdict, dataclass

import torch

from . import dist
from .checkpoint import (CHECKPOINT_FILE, TrainPosition, load_checkpoint, new_epoch_sums, rng_states,
                         write_checkpoint)
from .config import TrainConfig
from .corpus import IGNORE_INDEX, SentenceBatches, StreamBatches
from .device import cpu_bf16_native, resolve_cpu_bf16
from .errors import InputError, TrainingError
from .fileio import atomic_write
from .modeldir import check_out_kind, save_model
from .ops.fused_ce import fused_linear_ce

log = logging.getLogger("asr_kd")

METRICS_FILE = "metrics.csv"
ONEDNN_CACHE_BF16 = 32   # oneDNN primitive cache capacity under CPU bf16 (see _use_bf16)


def make_batches(ids, tokenizer, cfg: TrainConfig, seed: int, train: bool,
                 rank: int = 0, world: int = 1, pad_multiple: int = 1):
    """Batches for one corpus in the configured mode (this rank's share of them);
    ``pad_multiple``: sentence-batch lengths rounded up to a multiple of it."""
    bs = cfg.batch_size if train else cfg.eval_batch_size
    if cfg.batching == "stream":
        # Evaluation in stream mode keeps the training batch size so the numbers are
        # comparable to the literature (Zaremba et al. evaluate with the same layout).
        try:
            return StreamBatches(ids, tokenizer.bos, tokenizer.eos, cfg.batch_size, cfg.bptt,
                                 rank=rank, world=world)
        except ValueError:
            n = f"{cfg.batch_size} x {world} ranks" if world > 1 else cfg.batch_size
            raise InputError(f"{'training' if train else 'validation'} text is too small for "
                             f"{n} streams (stream batching): lower batch_size") from None
    return SentenceBatches(ids, tokenizer.bos, tokenizer.eos, bs, seed=seed,
                           shuffle=train, max_len=cfg.max_len, rank=rank, world=world,
                           pad_multiple=pad_multiple)


def detach_state(state):
    """Detach a (nested tuple/list/dict of) recurrent state tensors."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, dict):
        return {k: detach_state(v) for k, v in state.items()}
    return type(state)(detach_state(s) for s in state)


def to_device(state, device):
    """Move a (nested tuple/list/dict of) recurrent state tensors to ``device``."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.to(device)
    if isinstance(state, dict):
        return {k: to_device(v, device) for k, v in state.items()}
    return type(state)(to_device(s, device) for s in state)


class LMObjective:
    """Cross-entropy on the true next token.

    ``output_loss="fused"`` computes it with :func:`asr_kd.ops.fused_ce.fused_linear_ce`
    from the hidden states and the output weights (no (tokens x V) logits tensor; the
    GEMMs run in the hidden states' dtype, so bf16 under autocast); ``"full"`` makes
    the logits and calls ``cross_entropy``.  Same loss up to float rounding.
    """

    output_loss = "fused"

    def __init__(self, output_loss: str = "fused"):
        if output_loss not in ("fused", "full"):
            raise ValueError(f"output_loss must be fused or full, got {output_loss!r}")
        self.output_loss = output_loss

    def init_state(self, model, batch_size, device):
        return model.init_state(batch_size, device)

    def loss(self, model, batch, rec_state):
        targets = batch.targets.reshape(-1)
        if self.output_loss == "fused":
            h, rec_state = model.hidden(batch.inputs, rec_state)
            loss_sum = fused_linear_ce(h.reshape(-1, h.shape[-1]), model.output_weight,
                                       model.output_bias, targets, ignore_index=IGNORE_INDEX)
            return loss_sum, {}, rec_state
        logits, rec_state = model(batch.inputs, rec_state)
        loss_sum = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), targets,
            ignore_index=IGNORE_INDEX, reduction="sum")
        return loss_sum, {}, rec_state


class _ObjectiveStep(torch.nn.Module):
    """What DDP wraps: ``forward(batch, rec_state)`` is ``objective.loss(model, batch, rec_state)``.

    DDP synchronises gradients of the parameters used under *its* forward call;
    the objectives reach into the model (``hidden``, ``output_weight``), so the
    whole loss computation is made the forward of one module owning the model.
    The objective (and a live teacher inside it) is a plain attribute, not a
    submodule: the teacher's frozen weights are not DDP's business.
    """

    def __init__(self, model, objective):
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, batch, rec_state):
        return self.objective.loss(self.model, batch, rec_state)


@torch.no_grad()
def evaluate(model, batches, device, amp: bool = False) -> tuple[float, int]:
    """Summed NLL (natural log) and token count of ``batches`` under ``model``."""
    was_training = model.training
    model.eval()
    nll, ntok, rec_state = 0.0, 0, None
    for b in batches.epoch(0):
        inputs, targets = b.inputs.to(device), b.targets.to(device)
        if b.reset or rec_state is None:
            rec_state = model.init_state(inputs.shape[0], device)
        with torch.autocast(device.type, dtype=torch.bfloat16,
                            enabled=amp and device.type == "cuda"):
            lp, rec_state = model.token_logprobs(inputs, targets, rec_state)
        nll -= float(lp.double().sum())
        ntok += int((targets != IGNORE_INDEX).sum())
    model.train(was_training)
    return nll, ntok


class _StopFlag:
    """SIGTERM/SIGINT set a flag; the loop checkpoints at the next step and exits."""

    def __init__(self):
        self.raised = None   # name of the signal received, e.g. "SIGTERM"
        self.signum = None

    def __enter__(self):
        self._old = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside some test runners)
                pass
        return self

    def _handle(self, signum, frame):
        if self.raised is not None:  # a second signal: stop at once (the CLI names it)
            stop_now = KeyboardInterrupt()
            stop_now.signum = int(signum)
            raise stop_now
        self.raised = signal.Signals(signum).name
        self.signum = int(signum)

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Interrupted(Exception):
    """Training stopped on a signal after writing a checkpoint.

    ``signum`` is the signal (SIGTERM for a DDP rank that stopped on another
    rank's signal); the CLI exits with 128 + signum, as a shell reports it.
    """

    def __init__(self, message: str, signum: int = signal.SIGTERM):
        super().__init__(message)
        self.signum = int(signum)


def _lr_for_epoch(cfg: TrainConfig, epoch: int, lr: float) -> float:
    """The learning rate epoch ``epoch`` (0-based) starts with: epoch_decay computes it
    from the epoch; plateau and constant keep ``lr`` (plateau lowers it at epoch ends)."""
    if cfg.lr_schedule == "epoch_decay":
        return max(cfg.min_lr, cfg.lr * cfg.decay_factor ** max(0, epoch + 1 - cfg.decay_start))
    return lr


def make_optimizer(model, cfg: TrainConfig) -> tuple[torch.optim.Optimizer, list]:
    """(the optimizer ``cfg`` names, the trainable parameters it steps)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                              weight_decay=cfg.weight_decay)
    else:
        # The fused kernel (one pass over each tensor) took 40 % of the foreach
        # version's time on the CPU for a 6.6M-parameter LM; same update up to rounding.
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                fused=fused or None)
    return opt, params


@dataclass
class _Run:
    """What one :func:`train` call sets up once and every part of the loop reads.

    ``loss_fn(batch, rec_state)`` is ``objective.loss(model, batch, rec_state)``,
    through DistributedDataParallel when ``world > 1``; ``extra`` is what the
    model folder's config.json gets besides the model options.  ``steps`` (this
    call's steps, for ``max_steps``) and ``bad_in_row`` (non-finite steps in a row)
    are not checkpointed: a resumed run counts them afresh.
    """

    model: torch.nn.Module
    objective: object
    tokenizer: object
    cfg: TrainConfig
    device: torch.device
    rank: int
    world: int
    opt: torch.optim.Optimizer
    params: list
    loss_fn: object
    use_amp: bool
    out_dir: str
    ckpt_path: str
    extra: dict
    max_steps: int | None
    settings: dict | None = None
    steps: int = 0
    bad_in_row: int = 0


def train(model, objective, tokenizer, train_ids, valid_ids, cfg: TrainConfig, out_dir: str,
          *, seed: int = 0, device: torch.device | str = "cpu", resume: bool = False,
          quiet: bool = False, extra_config: dict | None = None, max_steps: int | None = None,
          resume_settings: dict | None = None):
    """Train ``model`` with ``objective``; write the model folder and metrics to ``out_dir``.

    train_ids / valid_ids: token ids per sentence (no ``<s>``/``</s>``).
    extra_config: added to the model folder's config.json (with the training options).
    resume_settings: settings (plain JSON data) that a resume must not change (the
    distillation settings and teachers): stored in the checkpoint, and a ``resume``
    whose settings differ is an InputError naming them, before anything is loaded.
    max_steps: stop (with a checkpoint) after this many optimizer steps in this call;
    used by tests to simulate an interruption.
    Under torchrun (WORLD_SIZE > 1) or inside an initialised process group this
    is one rank of a data-parallel run (see the module notes).
    Returns the list of per-epoch metric rows (``TrainPosition.history``).
    An ``out_dir`` holding an exported model is refused (InputError).
    """
    device = torch.device(device)
    check_out_kind(out_dir, "trained", "training")
    rank, world = dist.setup(device)
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(seed + rank)  # ranks draw different dropout masks
    model.to(device)
    log.info("training on %s with %d CPU thread(s)", device, torch.get_num_threads())
    use_bf16 = _use_bf16(cfg, device)
    # CPU bf16: few distinct batch lengths, so oneDNN's per-length LSTM kernels stay cached
    train_b = make_batches(train_ids, tokenizer, cfg, seed, train=True, rank=rank, world=world,
                           pad_multiple=8 if use_bf16 and device.type == "cpu" else 1)
    valid_b = make_batches(valid_ids, tokenizer, cfg, seed, train=False, rank=rank, world=world)
    if len(train_b) == 0:
        raise InputError("training corpus yields no batches")
    opt, params = make_optimizer(model, cfg)
    ckpt_path = os.path.join(out_dir, CHECKPOINT_FILE)
    pos = _start_or_resume(ckpt_path, model, opt, cfg, device, rank, world, resume,
                                resume_settings)
    run = _Run(model, objective, tokenizer, cfg, device, rank, world, opt, params,
               loss_fn=_loss_fn(model, objective, device, world),
               use_amp=use_bf16, out_dir=out_dir, ckpt_path=ckpt_path,
               extra=_model_extra(extra_config, cfg, seed, world), max_steps=max_steps,
               settings=resume_settings)
    with _StopFlag() as stop:
        while pos.epoch < cfg.epochs:
            epoch = pos.epoch
            if _train_epoch(run, pos, train_b, stop, quiet):
                return pos.history  # max_steps reached, checkpoint written
            _end_epoch(run, pos, valid_b)
            _save_checkpoint(run, pos, None)  # (DDP: ends with a barrier, saves visible)
            # A signal during validation: the checkpoint is fresh, stop here rather than
            # after a step of the next epoch (a finished run just finishes).
            if pos.epoch < cfg.epochs and _stop_voted(stop, world):
                raise Interrupted(f"stopped by {stop.raised or 'a signal'} after epoch "
                                  f"{epoch + 1}; checkpoint written to {ckpt_path}",
                                  stop.signum or signal.SIGTERM)
    if rank == 0 and not os.path.isfile(os.path.join(out_dir, "model.safetensors")):
        save_model(model, tokenizer, out_dir, run.extra)
    dist.barrier()
    return pos.history


def _use_bf16(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether training steps run under bf16 autocast: ``amp`` on CUDA, ``cpu_bf16`` on
    the CPU (validation stays float32 on the CPU, so perplexities compare across runs)."""
    if device.type == "cuda":
        return cfg.amp
    if device.type != "cpu":
        return False
    on = resolve_cpu_bf16(cfg.cpu_bf16)
    if cfg.cpu_bf16 != "off":
        native = cpu_bf16_native()
        log.info("CPU bf16 autocast: %s (cpu_bf16: %s; native bf16 instructions: %s)",
                 "on" if on else "off", cfg.cpu_bf16, "yes" if native else "no")
        if on and not native:
            log.warning("cpu_bf16: on, but this CPU has no AMX or AVX512-BF16: bf16 is "
                        "emulated and slower than float32")
    if on:
        # oneDNN caches up to 1024 bf16 LSTM primitives and their keys change from step to
        # step: the process grew by ~10 MB a step (6 GB in 500 steps of the PTB teacher).
        # 32 keeps it flat at ~1 GB, 7 % slower than unbounded. Read by oneDNN when it
        # first builds a primitive, so it is set before the first step (a user's wins).
        os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(ONEDNN_CACHE_BF16))
    return on


def _start_or_resume(ckpt_path: str, model, opt, cfg: TrainConfig, device, rank: int,
                     world: int, resume: bool, settings: dict | None = None) -> TrainPosition:
    """The position to start from: the checkpoint's (weights, optimizer and RNG restored)
    when resuming and there is one, else a fresh start at ``cfg.lr``."""
    if resume and os.path.isfile(ckpt_path):
        pos = load_checkpoint(ckpt_path, model, opt, device, rank, world, settings)
        log.info("resuming from %s: epoch %d, step %d", ckpt_path, pos.epoch + 1,
                 pos.step_in_epoch)
        return pos
    if resume:
        log.info("no %s in %s: starting from scratch", CHECKPOINT_FILE, os.path.dirname(ckpt_path))
    return TrainPosition(lr=cfg.lr, world_size=world)


def _model_extra(extra_config: dict | None, cfg: TrainConfig, seed: int, world: int) -> dict:
    """What config.json records besides the model options: the caller's keys, the
    training options, the seed and, for a data-parallel run, its world and global batch."""
    extra = dict(extra_config or {})
    extra["train"] = asdict(cfg)
    extra["seed"] = seed
    if world > 1:
        extra["world_size"] = world
        extra["global_batch_size"] = cfg.batch_size * world
    return extra


def _loss_fn(model, objective, device: torch.device, world: int):
    """``loss_fn(batch, rec_state) -> (loss_sum, parts, rec_state)``: the objective's
    loss, under DDP (world > 1) so that its backward all-reduces the gradients."""
    if world == 1:
        def loss_fn(batch, rec_state):
            return objective.loss(model, batch, rec_state)
        return loss_fn
    from torch.nn.parallel import DistributedDataParallel
    ids = [torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(_ObjectiveStep(model, objective), device_ids=ids)


def _train_epoch(run: _Run, pos: TrainPosition, train_b, stop: _StopFlag,
                 quiet: bool) -> bool:
    """Train the rest of epoch ``pos.epoch`` (from ``pos.step_in_epoch``).

    Returns True when this call's ``max_steps`` ran out (checkpoint written).  A
    signal (under DDP: on any rank) checkpoints and raises :class:`Interrupted`;
    ``cfg.checkpoint_every`` steps also checkpoint.
    """
    from .progress import progress

    cfg, epoch = run.cfg, pos.epoch
    pos.lr = _lr_for_epoch(cfg, epoch, pos.lr)
    for g in run.opt.param_groups:
        g["lr"] = pos.lr
    run.model.train()
    sums = pos.epoch_sums
    rec_state = to_device(pos.stream_state, run.device)
    t0 = time.time() - sums["seconds"]  # a resumed epoch goes on counting its seconds
    bar = progress(total=len(train_b), initial=pos.step_in_epoch,
                       quiet=quiet or run.rank > 0, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                       unit="batch", leave=False)
    for batch in train_b.epoch(epoch, start=pos.step_in_epoch):
        rec_state, stop_vote = _train_step(run, pos, batch, rec_state, stop)
        pos.step_in_epoch += 1
        pos.global_step += 1
        run.steps += 1
        sums["seconds"] = time.time() - t0
        if sums["tokens"]:
            avg = sums["loss"] / sums["tokens"]
            bar.set_postfix(loss=f"{avg:.3f}", ppl=f"{math.exp(min(avg, 50)):.1f}",
                            tok_s=f"{sums['tokens'] / max(sums['seconds'], 1e-9):.0f}",
                            refresh=False)
        bar.update(1)
        hit_limit = run.max_steps is not None and run.steps >= run.max_steps
        stopping = stop.raised if run.world == 1 else (
            (stop.raised or "a signal") if stop_vote else None)
        if stopping or hit_limit or (
                cfg.checkpoint_every and pos.global_step % cfg.checkpoint_every == 0):
            _save_checkpoint(run, pos, rec_state)
        if stopping:
            bar.close()
            raise Interrupted(
                f"stopped by {stopping} at epoch {epoch + 1}, step {pos.step_in_epoch}; "
                f"checkpoint written to {run.ckpt_path}", stop.signum or signal.SIGTERM)
        if hit_limit:
            bar.close()
            return True
    bar.close()
    return False


def _train_step(run: _Run, pos: TrainPosition, batch, rec_state, stop: _StopFlag):
    """One optimizer step on ``batch`` (this rank's share of the global batch).

    Forward (the objective's summed loss), all-reduce of the sums and of the stop
    flag, backward of the mean loss, clip, step; a non-finite loss or gradient
    skips the step (:func:`_skip_step`).  Adds to ``pos.epoch_sums``.
    Returns (the recurrent state the next batch continues from, whether any rank
    received a signal).
    """
    cfg, device, world = run.cfg, run.device, run.world
    inputs, targets = batch.inputs.to(device), batch.targets.to(device)
    if batch.reset or rec_state is None:
        rec_state = run.objective.init_state(run.model, inputs.shape[0], device)
    rec_state = detach_state(rec_state)  # truncated BPTT: no gradient into past batches
    b = type(batch)(inputs, targets, batch.reset, batch.positions)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=run.use_amp):
        loss_sum, parts, rec_state = run.loss_fn(b, rec_state)
    keys = list(parts)
    tot = [float(loss_sum.detach()), b.num_tokens, inputs.shape[0],
           float(stop.raised is not None)] + [float(parts[k]) for k in keys]
    if world > 1:
        tot = dist.all_reduce_sum(tot)  # sums over the global batch
    loss_total, ntok, rows = tot[0], int(tot[1]), int(tot[2])
    parts = dict(zip(keys, tot[4:]))
    stop_vote = tot[3] > 0  # under DDP all ranks stop at the same step
    denom = ntok if cfg.grad_reduction == "token" else rows
    if world == 1:
        loss = loss_sum / max(1, denom)
    else:
        # DDP averages gradients over ranks: scale by world so the result is the
        # gradient of the global-batch mean (= one process with the global batch)
        loss = loss_sum * (world / max(1, denom))
    if _apply_gradients(run, loss, loss_total):
        run.bad_in_row = 0
        sums = pos.epoch_sums
        sums["loss"] += loss_total
        sums["tokens"] += ntok
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + float(v)
    else:
        rec_state = _skip_step(run, pos, inputs.shape[0])
    return rec_state, stop_vote


def _apply_gradients(run: _Run, loss: torch.Tensor, loss_total: float) -> bool:
    """Backward, clip and step, unless the loss (``loss_total``: global) or the
    gradient norm is not finite; then no weight moves.  Returns whether it stepped."""
    opt = run.opt
    opt.zero_grad(set_to_none=True)
    ok = math.isfinite(loss_total)
    if ok:
        loss.backward()
        clip = run.cfg.clip if run.cfg.clip > 0 else float("inf")
        gnorm = torch.nn.utils.clip_grad_norm_(run.params, clip)
        ok = bool(torch.isfinite(gnorm))
    if ok:
        opt.step()
    else:
        opt.zero_grad(set_to_none=True)
    return ok


def _skip_step(run: _Run, pos: TrainPosition, batch_size: int):
    """Count a skipped (non-finite) step and restart the recurrent state (it may hold
    NaN); ``cfg.max_bad_steps`` in a row checkpoint and raise :class:`TrainingError`.
    Returns the recurrent state to continue from."""
    cfg = run.cfg
    pos.epoch_sums["skipped"] += 1
    run.bad_in_row += 1
    log.warning("non-finite loss or gradient at epoch %d step %d: step skipped",
                pos.epoch + 1, pos.step_in_epoch + 1)
    rec_state = None if cfg.batching == "sentence" else run.objective.init_state(
        run.model, batch_size, run.device)
    if run.bad_in_row >= cfg.max_bad_steps:
        _save_checkpoint(run, pos, rec_state)
        raise TrainingError(
            f"{run.bad_in_row} non-finite steps in a row at epoch {pos.epoch + 1}: "
            "lower the learning rate, check the data, or turn off bf16 (--amp false)")
    return rec_state


def _end_epoch(run: _Run, pos: TrainPosition, valid_b) -> None:
    """Close epoch ``pos.epoch``: validate, add its metrics row (metrics.csv),
    save the model if it is the best so far, apply the plateau schedule, stop early
    after ``cfg.early_stop`` epochs without improvement; the position then points at
    the next epoch (``pos.epoch == cfg.epochs`` when stopping early)."""
    cfg, epoch, sums = run.cfg, pos.epoch, pos.epoch_sums
    nll, vtok = evaluate(run.model, valid_b, run.device, run.use_amp)
    if run.world > 1:
        nll, vtok = dist.all_reduce_sum([nll, vtok])
        vtok = int(vtok)
    valid_ppl = math.exp(nll / max(vtok, 1))
    row = _metrics_row(pos, valid_ppl)
    pos.history.append(row)
    log.info("epoch %d: lr %.4g train ppl %.2f valid ppl %.2f (%.0f tok/s, %d skipped)",
             epoch + 1, pos.lr, row["train_ppl"], valid_ppl, row["tokens_per_s"],
             sums["skipped"])
    improved = valid_ppl < pos.best_ppl * (1 - cfg.plateau_threshold)
    if valid_ppl < pos.best_ppl:
        pos.best_ppl = valid_ppl
        if run.rank == 0:
            save_model(run.model, run.tokenizer, run.out_dir,
                       dict(run.extra, best_epoch=epoch + 1, valid_ppl=round(valid_ppl, 3)))
    pos.bad_epochs = 0 if improved else pos.bad_epochs + 1
    if cfg.lr_schedule == "plateau" and not improved:
        pos.lr = max(cfg.min_lr, pos.lr * cfg.decay_factor)
    pos.epoch += 1
    pos.step_in_epoch = 0
    pos.epoch_sums = new_epoch_sums()
    if run.rank == 0:
        _write_metrics(os.path.join(run.out_dir, METRICS_FILE), pos.history)
    if cfg.early_stop and pos.bad_epochs >= cfg.early_stop:
        log.info("no improvement for %d epochs: stopping early", pos.bad_epochs)
        pos.epoch = cfg.epochs


def _metrics_row(pos: TrainPosition, valid_ppl: float) -> dict:
    """The metrics.csv row of the epoch ``pos`` is at the end of (its sums not yet
    reset): training loss and PPL, validation PPL, speed, skipped steps, and each
    objective part per token."""
    sums = pos.epoch_sums
    train_loss = sums["loss"] / max(sums["tokens"], 1)
    # Perplexity is of the true next word: for distillation use the hard CE part.
    train_ce = sums.get("hard", sums["loss"]) / max(sums["tokens"], 1)
    row = {"epoch": pos.epoch + 1, "step": pos.global_step, "lr": pos.lr,
           "train_loss": round(train_loss, 5), "train_ppl": round(math.exp(min(train_ce, 50)), 3),
           "valid_ppl": round(valid_ppl, 3), "tokens": sums["tokens"],
           "seconds": round(sums["seconds"], 2),
           "tokens_per_s": round(sums["tokens"] / max(sums["seconds"], 1e-9), 1),
           "skipped_steps": sums["skipped"]}
    for k, v in sums.items():
        if k not in ("loss", "tokens", "skipped", "seconds"):
            row[k] = round(v / max(sums["tokens"], 1), 5)
    return row


def _save_checkpoint(run: _Run, pos: TrainPosition, rec_state) -> None:
    """Write train_state.pt; ``rec_state`` (this rank's recurrent state) is carried
    into it as ``pos.stream_state``.  Under DDP rank 0 writes every rank's RNG
    and recurrent state, and all ranks meet at a barrier after."""
    pos.stream_state = detach_state(to_device(rec_state, "cpu"))
    if run.world == 1:
        write_checkpoint(run.ckpt_path, run.model, run.opt, pos.to_dict(),
                         settings=run.settings)
        return
    # every rank's RNG and recurrent state go into rank 0's file
    ranks = dist.gather_to_main({"rng": rng_states(), "stream_state": pos.stream_state})
    if run.rank == 0:
        write_checkpoint(run.ckpt_path, run.model, run.opt,
                         dict(pos.to_dict(), stream_state=None), ranks,
                         settings=run.settings)
    dist.barrier()


def _stop_voted(stop: _StopFlag, world: int) -> bool:
    """Whether to stop now; under DDP every rank gets the same answer."""
    if world == 1:
        return stop.raised is not None
    return dist.all_reduce_sum([float(stop.raised is not None)])[0] > 0


def _write_metrics(path: str, rows: list[dict]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with atomic_write(path) as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
