"""Offline teacher cache: top-K predictions for every training token.

Layout of a cache folder::

    plan.json              what is being cached (written by the first job; later jobs
                           with other settings are refused, so shards never mix)
    manifest.json          = plan.json, written once every shard is done
    words.txt | spm.model  the teachers' tokenizer (the student must use it)
    shard-00000/           ids.npy (n, K) int32, logprobs.npy (n, K) float32,
    shard-00001/ ...       target.npy (n,) float32, done.json (written last)

Rows are indexed by the *canonical target index* of the training batches
(:mod:`asr_kd.corpus`): in sentence mode, targets in file order (a function of
``max_len`` only); in stream mode, row-major positions of the (batch_size,
cols) stream layout, so the cache records and checks ``batch_size``.
The cache is stored in *storage shards* of ``shard_tokens`` rows each (the
last fewer), whatever the number of jobs that compute them.  Arrays are .npy and
opened with ``mmap_mode="r"``, so a 37M-token WSJ cache (about 7 GB at K=32)
is never read whole.  A rerun skips shards whose ``done.json`` exists, so an
interrupted job resumes where it stopped.

Parallel jobs (``job=(i, n)``: ``--shard i/n``, or ``RANK/WORLD_SIZE`` under
torchrun) compute the storage shards ``s`` with ``s % n == i``
(:func:`asr_kd.jobs.round_robin`; rescoring, by contrast, splits utterances
into contiguous blocks, see :mod:`asr_kd.sharding`).  The job that finds every
storage shard done writes the manifest; :func:`finish_cache` (``asr-kd merge --kind cache DIR``)
does the same check on its own and refuses, listing them, while shards are
missing.  In sentence mode a job runs the teacher only on batches that touch
its shards; in stream mode the recurrent state must be carried through the
whole stream, so every job runs the teacher over all of it (sharding then only
splits the writing).

``plan.json`` keys: ``format`` (``asr_kd-teacher-cache``), ``version``, ``mode``,
``topk``, ``num_tokens``, ``shard_tokens``, ``num_shards``, ``batch_size`` and
``bptt`` (stream mode), ``max_len``, ``vocab_size``, ``tokenizer``, ``corpus`` (a
hash of the encoded text), ``teachers`` (and ``ensemble``, the combine rule of
several).  A storage shard is written in ``shard-NNNNN.tmp/`` and renamed whole.
:meth:`TeacherCache.check` refuses a cache of another tokenizer, text, mode,
stream batch size or ``max_len``.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil

import numpy as np
import torch

from .corpus import IGNORE_INDEX, SentenceBatches, StreamBatches
from .errors import InputError
from .fileio import atomic_write, fsync_dir, read_json
from .modeldir import save_tokenizer, same_tokenizer
from .jobs import round_robin
from .vocab import load_vocab_path

FORMAT = "asr_kd-teacher-cache"
log = logging.getLogger("asr_kd")


def ids_digest(ids: list[list[int]]) -> str:
    """A short hash of the encoded corpus, so a cache is never used with other text."""
    h = hashlib.sha256()
    for s in ids:
        h.update(np.asarray(s, dtype=np.int64).tobytes())
        h.update(b"|")
    return h.hexdigest()[:16]


def storage_shard_dir(out_dir: str, s: int) -> str:
    """The folder of storage shard ``s`` of a cache: ``out_dir/shard-00042``."""
    return os.path.join(out_dir, f"shard-{s:05d}")


def _write_manifest(out_dir: str, meta: dict) -> None:
    """manifest.json (= plan.json): written only once every storage shard is done."""
    with atomic_write(os.path.join(out_dir, "manifest.json")) as f:
        json.dump(meta, f, indent=2)


def _layout(ids, tok, mode, batch_size, bptt, max_len):
    if mode == "stream":
        return StreamBatches(ids, tok.bos, tok.eos, batch_size, bptt)
    return SentenceBatches(ids, tok.bos, tok.eos, batch_size, shuffle=False, max_len=max_len)


@torch.no_grad()
def build_cache(teacher, tok, ids: list[list[int]], out_dir: str, topk: int, *,
                mode: str = "sentence", batch_size: int = 32, bptt: int = 35,
                max_len: int = 400, shard_tokens: int = 1 << 22, device="cpu",
                teacher_dirs: list[str] | None = None, quiet: bool = True,
                job: tuple[int, int] = (0, 1), ensemble: str | None = None) -> dict:
    """Run ``teacher`` over the corpus and write the cache; returns the manifest.

    teacher: any :class:`~asr_kd.lm.LanguageModel` (an LstmLM or a TeacherEnsemble).
    job: (i, n), this job of n parallel ones computes only the storage shards
    s with s % n == i; the manifest is written once every storage shard is done
    (``"missing_shards"`` of the returned dict lists those still missing).
    ensemble: how the teachers were combined (``prob`` | ``logit``; None for one
    teacher), recorded in the manifest as ``"ensemble"`` (only when given: a
    one-teacher cache's plan has no such key).
    """
    if topk < 1 or topk > tok.size:
        raise InputError(f"--topk must be in 1..{tok.size}")
    device = torch.device(device)
    teacher.eval().to(device)
    layout = _layout(ids, tok, mode, batch_size, bptt, max_len)
    total = layout.num_tokens()
    n_shards = (total + shard_tokens - 1) // shard_tokens
    os.makedirs(out_dir, exist_ok=True)
    save_tokenizer(tok, out_dir)
    meta = {"format": FORMAT, "version": 1, "mode": mode, "topk": topk,
            "num_tokens": total, "shard_tokens": shard_tokens, "num_shards": n_shards,
            "batch_size": batch_size if mode == "stream" else None,
            "bptt": bptt if mode == "stream" else None, "max_len": max_len,
            "vocab_size": tok.size, "tokenizer": tok.kind, "corpus": ids_digest(ids),
            "teachers": [os.path.abspath(d) for d in (teacher_dirs or [])]}
    if ensemble is not None:
        meta["ensemble"] = ensemble
    _check_plan(out_dir, meta)
    todo = [s for s in round_robin(n_shards, job)
            if not os.path.isfile(os.path.join(storage_shard_dir(out_dir, s), "done.json"))]
    log.info("teacher cache %s: %d tokens in %d shard(s), %d to compute here", out_dir, total,
             n_shards, len(todo))
    if todo:
        _compute_shards(teacher, layout, mode, todo, shard_tokens, total, topk, out_dir,
                        device, quiet)
    missing = _missing_shards(out_dir, meta)
    if not missing:
        _write_manifest(out_dir, meta)
    meta["missing_shards"] = missing
    return meta


def _check_plan(out_dir: str, meta: dict) -> None:
    """Write plan.json, or refuse a folder whose plan differs (shards must never mix)."""
    path = os.path.join(out_dir, "plan.json")
    if os.path.isfile(path):
        old = read_json(path, "plan.json")
        diff = sorted(k for k in set(old) | set(meta) if old.get(k) != meta.get(k))
        if diff:
            raise InputError(f"this folder holds a cache built with other settings "
                             f"({', '.join(diff)} differ); use another --out or remove it", out_dir)
        return
    with atomic_write(path) as f:
        json.dump(meta, f, indent=2)


def _missing_shards(out_dir: str, meta: dict) -> list[int]:
    """Shards without a done.json holding the expected row count."""
    missing = []
    for s in range(meta["num_shards"]):
        rows = min(meta["shard_tokens"], meta["num_tokens"] - s * meta["shard_tokens"])
        try:
            ok = read_json(os.path.join(storage_shard_dir(out_dir, s), "done.json"),
                           "done.json").get("rows") == rows
        except InputError:  # absent or unfinished: the shard is still to compute
            ok = False
        if not ok:
            missing.append(s)
    return missing


def finish_cache(out_dir: str) -> dict:
    """Check that every shard of the cache in ``out_dir`` is done; write manifest.json.

    Raises :class:`InputError` listing the missing shards.  Returns the manifest.
    """
    path = os.path.join(out_dir, "plan.json")
    if not os.path.isfile(path):
        raise InputError("no plan.json: not a teacher cache folder (run asr-kd cache-teacher "
                         "first)", out_dir)
    meta = read_json(path, "plan.json")
    missing = _missing_shards(out_dir, meta)
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
        raise InputError(f"{len(missing)} of {meta['num_shards']} cache shard(s) missing or "
                         f"unfinished: {shown}; rerun the cache-teacher job(s) computing them", out_dir)
    _write_manifest(out_dir, meta)
    return meta


def _compute_shards(teacher, layout, mode, todo, shard_tokens, total, topk, out_dir, device, quiet):
    want = set(todo)
    bufs: dict[int, dict[str, np.ndarray]] = {}
    filled: dict[int, int] = {}

    def buf(s):
        # Disk-backed arrays in a temporary folder: stream mode touches every shard
        # in every window, and RAM must not hold a 37M-token cache.
        if s not in bufs:
            n = min(shard_tokens, total - s * shard_tokens)
            tmp = storage_shard_dir(out_dir, s) + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                os.makedirs(tmp)
                bufs[s] = {"ids": _new_array(tmp, "ids", np.int32, (n, topk)),
                           "logprobs": _new_array(tmp, "logprobs", np.float32, (n, topk)),
                           "target": _new_array(tmp, "target", np.float32, (n,))}
            except OSError as e:
                shutil.rmtree(tmp, ignore_errors=True)
                raise InputError(f"cannot write: {e.strerror or e}", e.filename or tmp) from None
            filled[s] = 0
        return bufs[s]

    try:
        _fill_shards(teacher, layout, mode, want, shard_tokens, topk, out_dir, device, quiet,
                     buf, bufs, filled)
    except BaseException:
        # an error or a stop (Ctrl-C, SIGTERM): free the unfinished shards' disk space
        # (after kill -9 the rerun removes them)
        for s in bufs:
            shutil.rmtree(storage_shard_dir(out_dir, s) + ".tmp", ignore_errors=True)
        raise


def _fill_shards(teacher, layout, mode, want, shard_tokens, topk, out_dir, device, quiet,
                 buf, bufs, filled):
    """Run the teacher over the layout; write each shard as soon as its rows are filled."""
    from .progress import progress

    state = None
    bar = progress(total=len(layout), quiet=quiet, desc="cache-teacher", unit="batch")
    for batch in layout.epoch(0):
        bar.update(1)
        pos = batch.positions
        lo, hi = int(pos[pos >= 0].min()), int(pos.max())
        shards_here = set(range(lo // shard_tokens, hi // shard_tokens + 1))
        inputs, targets = batch.inputs.to(device), batch.targets.to(device)
        if batch.reset or state is None:
            state = teacher.init_state(inputs.shape[0], device)
        # Stream mode must run every window to carry the state; sentence mode can skip.
        if mode == "sentence" and not (shards_here & want):
            continue
        lp, state = _teacher_logprobs(teacher, inputs, state)
        real = targets != IGNORE_INDEX
        lp, tg, ps = lp[real], targets[real], pos.to(device)[real]
        top_lp, top_id = lp.topk(topk, dim=-1)
        t_lp = lp.gather(1, tg.unsqueeze(1)).squeeze(1)
        ps_np = ps.cpu().numpy()
        top_id, top_lp, t_lp = top_id.cpu().numpy(), top_lp.float().cpu().numpy(), t_lp.float().cpu().numpy()
        for s in sorted(shards_here & want):
            sel = (ps_np // shard_tokens) == s
            if not sel.any():
                continue
            b = buf(s)
            rows = ps_np[sel] - s * shard_tokens
            b["ids"][rows] = top_id[sel]
            b["logprobs"][rows] = top_lp[sel]
            b["target"][rows] = t_lp[sel]
            filled[s] += int(sel.sum())
            if filled[s] == len(b["target"]):
                _write_shard(out_dir, s, b)
                del bufs[s]  # (only now: a failed write still has its .tmp removed)
    bar.close()
    for s, b in bufs.items():  # cannot happen unless the layout skipped rows
        raise RuntimeError(f"shard {s} incomplete ({filled[s]}/{len(b['target'])} rows)")


def _new_array(folder: str, name: str, dtype, shape) -> np.ndarray:
    """A writable .npy memory map with its disk space reserved up front.

    A memory map over a sparse file would die of SIGBUS on a full disk when a
    page is first written; reserving the blocks makes that an ordinary error now.
    """
    path = os.path.join(folder, name + ".npy")
    arr = np.lib.format.open_memmap(path, "w+", dtype, shape)
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    except AttributeError:  # no posix_fallocate on this platform
        pass
    finally:
        os.close(fd)
    return arr


def _teacher_logprobs(teacher, inputs, state):
    """(B, T, V) log-probabilities and the new state of any :class:`~asr_kd.lm.LanguageModel`."""
    H, state = teacher.hidden(inputs, state)
    return teacher.logprobs(H), state


def _write_shard(out_dir: str, s: int, arrays: dict[str, np.ndarray]) -> None:
    """Flush a filled shard's memory maps and move its folder to the final name.

    The arrays are on disk (fsynced) before ``done.json`` is written, and the
    whole folder appears under its final name in one rename: a ``shard-NNNNN``
    folder is always complete, whatever moment the job is killed at.
    """
    final = storage_shard_dir(out_dir, s)
    tmp = final + ".tmp"
    try:
        for arr in arrays.values():
            arr.flush()
            with open(arr.filename, "rb+") as f:
                os.fsync(f.fileno())
        with atomic_write(os.path.join(tmp, "done.json")) as f:  # (fsyncs tmp's entries)
            json.dump({"rows": int(len(arrays["target"]))}, f)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except OSError as e:
        raise InputError(f"cannot write: {e.strerror or e}", e.filename or tmp) from None
    fsync_dir(out_dir)


class TeacherCache:
    """Read side: ``lookup(positions)`` -> (ids (M, K) long, logprobs (M, K), target (M,))."""

    def __init__(self, cache_dir: str):
        path = os.path.join(cache_dir, "manifest.json")
        if not os.path.isfile(path):
            raise InputError("not a complete teacher cache (no manifest.json; did every "
                             "shard finish?)", cache_dir)
        self.meta = read_json(path, "manifest")
        if self.meta.get("format") != FORMAT:
            raise InputError("not a teacher cache manifest", path)
        self.dir = cache_dir
        self.tokenizer = load_vocab_path(cache_dir)
        self.shard_tokens = self.meta["shard_tokens"]
        self.shards = []
        for s in range(self.meta["num_shards"]):
            d = storage_shard_dir(cache_dir, s)
            if not os.path.isfile(os.path.join(d, "done.json")):
                raise InputError(f"shard {s} is missing or incomplete", d)
            try:
                self.shards.append({k: np.load(os.path.join(d, k + ".npy"), mmap_mode="r")
                                    for k in ("ids", "logprobs", "target")})
            except (OSError, ValueError) as e:
                raise InputError(f"corrupt shard ({e})", d) from None

    def check(self, tok, ids, mode: str, batch_size: int, bptt: int, max_len: int) -> None:
        """Refuse a cache made for another tokenizer, text or batch layout."""
        m = self.meta
        if not same_tokenizer(tok, self.tokenizer):
            raise InputError("the cache's vocabulary differs from the student's", self.dir)
        if m["corpus"] != ids_digest(ids):
            raise InputError("the cache was built from another training text", self.dir)
        if m["mode"] != mode:
            raise InputError(f"cache built in {m['mode']} mode, training in {mode} mode", self.dir)
        if mode == "stream" and m["batch_size"] != batch_size:
            raise InputError(f"stream cache built with batch_size {m['batch_size']}, "
                             f"training uses {batch_size}", self.dir)
        if mode == "sentence" and m["max_len"] != max_len:
            raise InputError(f"cache built with max_len {m['max_len']}, training uses {max_len}",
                             self.dir)

    def lookup(self, positions: torch.Tensor):
        """positions (M,) canonical target indices -> ids (M, K), logprobs (M, K), target (M,)."""
        p = positions.cpu().numpy()
        s = p // self.shard_tokens
        K = self.meta["topk"]
        ids = np.empty((len(p), K), np.int64)
        lps = np.empty((len(p), K), np.float32)
        tgt = np.empty(len(p), np.float32)
        for k in np.unique(s):
            sel = s == k
            rows = p[sel] - k * self.shard_tokens
            sh = self.shards[int(k)]
            ids[sel] = sh["ids"][rows]
            lps[sel] = sh["logprobs"][rows]
            tgt[sel] = sh["target"][rows]
        dev = positions.device
        return (torch.from_numpy(ids).to(dev), torch.from_numpy(lps).to(dev),
                torch.from_numpy(tgt).to(dev))
