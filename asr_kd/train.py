"""One training loop for LM training and distillation.

The loop reads top to bottom: for each epoch, for each batch, ask the
*objective* for a summed loss, backpropagate, clip, step; evaluate on the
validation set at the end of the epoch; adjust the learning rate; checkpoint.

An objective provides::

    init_state(batch_size, device) -> state
    loss(model, batch, state) -> (loss_sum: Tensor, parts: dict[str, float], new_state)

where ``loss_sum`` is summed over the batch's real tokens (parts are sums too).

Resume is exact: ``train_state.pt`` (loaded with ``weights_only=True``, so no
pickled code runs, and checked against a CRC32 of its content, which torch.load
does not verify) holds the current weights, optimizer, learning rate, torch RNG
states, epoch, step within the epoch and, in stream mode, the carried recurrent
state.  It is replaced atomically, so a kill at any moment leaves the previous
or the new checkpoint, never a partial one.  Data order
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
"""
from __future__ import annotations

import csv
import logging
import math
import os
import signal
import time
from dataclasses import asdict

import torch

from . import dist
from .checkpoint import STATE_FILE, load_checkpoint, rng_states, write_checkpoint
from .config import TrainConfig
from .corpus import IGNORE_INDEX, SentenceBatches, StreamBatches
from .errors import InputError, TrainingError  # noqa: F401  (TrainingError: re-exported)
from .fileio import atomic_write
from .modeldir import save_model

log = logging.getLogger("asr_kd")

METRICS_FILE = "metrics.csv"


def make_batches(ids, tokenizer, cfg: TrainConfig, seed: int, train: bool,
                 rank: int = 0, world: int = 1):
    """Batches for one corpus in the configured mode (this rank's share of them)."""
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
                           shuffle=train, max_len=cfg.max_len, rank=rank, world=world)


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
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.to(device)
    if isinstance(state, dict):
        return {k: to_device(v, device) for k, v in state.items()}
    return type(state)(to_device(s, device) for s in state)


class LMObjective:
    """Cross-entropy on the true next token."""

    def init_state(self, model, batch_size, device):
        return model.init_state(batch_size, device)

    def loss(self, model, batch, state):
        logits, state = model(batch.inputs, state)
        loss_sum = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), batch.targets.reshape(-1),
            ignore_index=IGNORE_INDEX, reduction="sum")
        return loss_sum, {}, state


class _ObjectiveStep(torch.nn.Module):
    """What DDP wraps: ``forward(batch, state)`` is ``objective.loss(model, batch, state)``.

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

    def forward(self, batch, state):
        return self.objective.loss(self.model, batch, state)


@torch.no_grad()
def evaluate(model, batches, device, amp: bool = False) -> tuple[float, int]:
    """Summed NLL (natural log) and token count of ``batches`` under ``model``."""
    was_training = model.training
    model.eval()
    nll, ntok, state = 0.0, 0, None
    for b in batches.epoch(0):
        inputs, targets = b.inputs.to(device), b.targets.to(device)
        if b.reset or state is None:
            state = model.init_state(inputs.shape[0], device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            lp, state = model.token_logprobs(inputs, targets, state)
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
    if cfg.lr_schedule == "epoch_decay":
        return max(cfg.min_lr, cfg.lr * cfg.decay_factor ** max(0, epoch + 1 - cfg.decay_start))
    return lr


def train(model, objective, tokenizer, train_ids, valid_ids, cfg: TrainConfig, out_dir: str,
          *, seed: int = 0, device: torch.device | str = "cpu", resume: bool = False,
          quiet: bool = False, extra_config: dict | None = None, max_steps: int | None = None):
    """Train ``model`` with ``objective``; write the model folder and metrics to ``out_dir``.

    train_ids / valid_ids: token ids per sentence (no ``<s>``/``</s>``).
    max_steps: stop (with a checkpoint) after this many optimizer steps in this call;
    used by tests to simulate an interruption.
    Under torchrun (WORLD_SIZE > 1) or inside an initialised process group this
    is one rank of a data-parallel run (see the module notes).
    Returns the list of per-epoch metric rows.
    """
    from .progress import progress

    device = torch.device(device)
    rank, world = dist.setup(device)
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(seed + rank)  # ranks draw different dropout masks
    model.to(device)
    log.info("training on %s with %d CPU thread(s)", device, torch.get_num_threads())
    train_b = make_batches(train_ids, tokenizer, cfg, seed, train=True, rank=rank, world=world)
    valid_b = make_batches(valid_ids, tokenizer, cfg, seed, train=False, rank=rank, world=world)
    if len(train_b) == 0:
        raise InputError("training corpus yields no batches")
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    use_amp = cfg.amp and device.type == "cuda"

    st = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "lr": cfg.lr,
          "best_ppl": math.inf, "bad_epochs": 0, "history": [], "stream_state": None,
          "epoch_sums": {"loss": 0.0, "tokens": 0, "skipped": 0, "seconds": 0.0},
          "world_size": world}
    state_path = os.path.join(out_dir, STATE_FILE)
    if resume and os.path.isfile(state_path):
        st = load_checkpoint(state_path, model, opt, device, rank, world).to_dict()
        log.info("resuming from %s: epoch %d, step %d", state_path, st["epoch"] + 1,
                 st["step_in_epoch"])
    elif resume:
        log.info("no %s in %s: starting from scratch", STATE_FILE, out_dir)

    extra = dict(extra_config or {})
    extra["train"] = asdict(cfg)
    extra["seed"] = seed
    if world > 1:
        extra["world_size"] = world
        extra["global_batch_size"] = cfg.batch_size * world
        from torch.nn.parallel import DistributedDataParallel
        ids = [torch.cuda.current_device()] if device.type == "cuda" else None
        ddp = DistributedDataParallel(_ObjectiveStep(model, objective), device_ids=ids)

        def loss_fn(b, state):
            return ddp(b, state)
    else:
        def loss_fn(b, state):
            return objective.loss(model, b, state)

    def checkpoint(stream_state):
        st["stream_state"] = detach_state(to_device(stream_state, "cpu"))
        if world == 1:
            write_checkpoint(state_path, model, opt, st)
            return
        # every rank's RNG and recurrent state go into rank 0's file
        ranks = dist.gather_to_main({"rng": rng_states(), "stream_state": st["stream_state"]})
        if rank == 0:
            write_checkpoint(state_path, model, opt, dict(st, stream_state=None), ranks)
        dist.barrier()

    steps_this_call = 0
    bad_in_row = 0
    with _StopFlag() as stop:
        while st["epoch"] < cfg.epochs:
            epoch = st["epoch"]
            st["lr"] = _lr_for_epoch(cfg, epoch, st["lr"])
            for g in opt.param_groups:
                g["lr"] = st["lr"]
            model.train()
            sums = st["epoch_sums"]
            state = to_device(st["stream_state"], device)
            t0 = time.time() - sums["seconds"]
            bar = progress(total=len(train_b), initial=st["step_in_epoch"], quiet=quiet or rank > 0,
                           desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False)
            for batch in train_b.epoch(epoch, start=st["step_in_epoch"]):
                inputs, targets = batch.inputs.to(device), batch.targets.to(device)
                if batch.reset or state is None:
                    state = objective.init_state(model, inputs.shape[0], device)
                state = detach_state(state)
                b = type(batch)(inputs, targets, batch.reset, batch.positions)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    loss_sum, parts, state = loss_fn(b, state)
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
                opt.zero_grad(set_to_none=True)
                ok = math.isfinite(loss_total)
                if ok:
                    loss.backward()
                    gnorm = torch.nn.utils.clip_grad_norm_(params, cfg.clip if cfg.clip > 0 else float("inf"))
                    ok = bool(torch.isfinite(gnorm))
                if ok:
                    opt.step()
                    bad_in_row = 0
                    sums["loss"] += loss_total
                    sums["tokens"] += ntok
                    for k, v in parts.items():
                        sums[k] = sums.get(k, 0.0) + float(v)
                else:
                    opt.zero_grad(set_to_none=True)
                    sums["skipped"] += 1
                    bad_in_row += 1
                    log.warning("non-finite loss or gradient at epoch %d step %d: step skipped",
                                epoch + 1, st["step_in_epoch"] + 1)
                    state = None if cfg.batching == "sentence" else objective.init_state(
                        model, inputs.shape[0], device)
                    if bad_in_row >= cfg.max_bad_steps:
                        checkpoint(state)
                        raise TrainingError(
                            f"{bad_in_row} non-finite steps in a row at epoch {epoch + 1}: "
                            "lower the learning rate, check the data, or turn off bf16 (--amp false)")
                st["step_in_epoch"] += 1
                st["global_step"] += 1
                steps_this_call += 1
                sums["seconds"] = time.time() - t0
                if sums["tokens"]:
                    avg = sums["loss"] / sums["tokens"]
                    bar.set_postfix(loss=f"{avg:.3f}", ppl=f"{math.exp(min(avg, 50)):.1f}",
                                    tok_s=f"{sums['tokens'] / max(sums['seconds'], 1e-9):.0f}",
                                    refresh=False)
                bar.update(1)
                hit_limit = max_steps is not None and steps_this_call >= max_steps
                stopping = stop.raised if world == 1 else (
                    (stop.raised or "a signal") if stop_vote else None)
                if stopping or hit_limit or (
                        cfg.checkpoint_every and st["global_step"] % cfg.checkpoint_every == 0):
                    checkpoint(state)
                if stopping:
                    bar.close()
                    raise Interrupted(
                        f"stopped by {stopping} at epoch {epoch + 1}, step {st['step_in_epoch']}; "
                        f"checkpoint written to {state_path}", stop.signum or signal.SIGTERM)
                if hit_limit:
                    bar.close()
                    return st["history"]
            bar.close()
            # -- end of epoch: validate, schedule, checkpoint --------------------
            nll, vtok = evaluate(model, valid_b, device, use_amp)
            if world > 1:
                nll, vtok = dist.all_reduce_sum([nll, vtok])
                vtok = int(vtok)
            valid_ppl = math.exp(nll / max(vtok, 1))
            train_loss = sums["loss"] / max(sums["tokens"], 1)
            # Perplexity is of the true next word: for distillation use the hard CE part.
            train_ce = sums.get("hard", sums["loss"]) / max(sums["tokens"], 1)
            row = {"epoch": epoch + 1, "step": st["global_step"], "lr": st["lr"],
                   "train_loss": round(train_loss, 5), "train_ppl": round(math.exp(min(train_ce, 50)), 3),
                   "valid_ppl": round(valid_ppl, 3), "tokens": sums["tokens"],
                   "seconds": round(sums["seconds"], 2),
                   "tokens_per_s": round(sums["tokens"] / max(sums["seconds"], 1e-9), 1),
                   "skipped_steps": sums["skipped"]}
            for k, v in sums.items():
                if k not in ("loss", "tokens", "skipped", "seconds"):
                    row[k] = round(v / max(sums["tokens"], 1), 5)
            st["history"].append(row)
            log.info("epoch %d: lr %.4g train ppl %.2f valid ppl %.2f (%.0f tok/s, %d skipped)",
                     epoch + 1, st["lr"], row["train_ppl"], valid_ppl, row["tokens_per_s"],
                     sums["skipped"])
            improved = valid_ppl < st["best_ppl"] * (1 - cfg.plateau_threshold)
            if valid_ppl < st["best_ppl"]:
                st["best_ppl"] = valid_ppl
                if rank == 0:
                    save_model(model, tokenizer, out_dir,
                               dict(extra, best_epoch=epoch + 1, valid_ppl=round(valid_ppl, 3)))
            st["bad_epochs"] = 0 if improved else st["bad_epochs"] + 1
            if cfg.lr_schedule == "plateau" and not improved:
                st["lr"] = max(cfg.min_lr, st["lr"] * cfg.decay_factor)
            st["epoch"] += 1
            st["step_in_epoch"] = 0
            st["epoch_sums"] = {"loss": 0.0, "tokens": 0, "skipped": 0, "seconds": 0.0}
            if rank == 0:
                _write_metrics(os.path.join(out_dir, METRICS_FILE), st["history"])
            stop_early = cfg.early_stop and st["bad_epochs"] >= cfg.early_stop
            if stop_early:
                log.info("no improvement for %d epochs: stopping early", st["bad_epochs"])
                st["epoch"] = cfg.epochs
            checkpoint(None)  # (under DDP: ends with a barrier, so the saves above are visible)
            # A signal during validation: the checkpoint is fresh, stop here rather than
            # after a step of the next epoch (a finished run just finishes).
            if st["epoch"] < cfg.epochs and _stop_voted(stop, world):
                raise Interrupted(f"stopped by {stop.raised or 'a signal'} after epoch "
                                  f"{epoch + 1}; checkpoint written to {state_path}",
                                  stop.signum or signal.SIGTERM)
    if rank == 0 and not os.path.isfile(os.path.join(out_dir, "model.safetensors")):
        save_model(model, tokenizer, out_dir, extra)
    dist.barrier()
    return st["history"]


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
