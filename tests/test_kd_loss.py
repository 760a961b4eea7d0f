"""Tests for asr_kd.ops.kd_loss: hand-computed values, chunked == reference in
float64 (values and gradients) at odd shapes, top-K with K = V == full teacher,
dtype tolerances, memory (no (N, V) tensor saved), validation."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from asr_kd.ops import TRUST_MODES, KDConfig, KDParts, TeacherLogits, TeacherTopK, kd_loss

F64 = torch.float64
IGN = -100


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread avoids OpenMP barrier stalls on a shared machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ----------------------------------------------------------------- helpers

def make_problem(N=37, d=13, V=101, D=(9,), seed=0, dtype=F64, bias=True,
                 teacher_bias=True, n_ignored=3, scale=1.0):
    """Random student tensors and a list of teacher members (float64)."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(N, d, generator=g, dtype=F64) * scale
    w = torch.randn(V, d, generator=g, dtype=F64) / math.sqrt(d) * 2
    b = torch.randn(V, generator=g, dtype=F64) if bias else None
    y = torch.randint(0, V, (N,), generator=g)
    y[torch.randperm(N, generator=g)[:n_ignored]] = IGN
    members = []
    for Dm in D:
        members.append(TeacherLogits(
            torch.randn(N, Dm, generator=g, dtype=F64) * scale,
            torch.randn(V, Dm, generator=g, dtype=F64) / math.sqrt(Dm) * 2,
            torch.randn(V, generator=g, dtype=F64) if teacher_bias else None))
    cast = (lambda t: None if t is None else t.to(dtype))
    return cast(h), cast(w), cast(b), y, members


def topk_from(members, y, K, ensemble="prob"):
    """TeacherTopK holding the exact top-K of a (float64) logits teacher."""
    zs = [m.hidden.double() @ m.weight.double().T + (0 if m.bias is None else m.bias.double())
          for m in members]
    if len(zs) > 1 and ensemble == "logit":
        logp = F.log_softmax(torch.stack(zs).mean(0), 1)
    else:
        logp = torch.logsumexp(torch.stack([F.log_softmax(z, 1) for z in zs]), 0) - math.log(len(zs))
    lp, ids = logp.topk(K, dim=1)
    return TeacherTopK(ids, lp, logp.gather(1, y.clamp(min=0)[:, None])[:, 0])


def run(h, w, b, y, teacher, grad_scale=2.5, **kw):
    """Loss parts and gradients (hidden, weight, bias) of grad_scale * loss; ``kw``: KDConfig
    fields."""
    leaves = [t.detach().clone().requires_grad_() if t is not None else None for t in (h, w, b)]
    parts = kd_loss(*leaves, y, teacher=teacher, return_parts=True, cfg=KDConfig(**kw))
    (parts.loss * grad_scale).backward()
    return KDParts(*(x.detach() for x in parts)), [None if t is None else t.grad for t in leaves]


def rel_err(a, b):
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp(min=1e-30))


def assert_close_parts(p, q, grads_p, grads_q, tol):
    for name in KDParts._fields:
        x, r = float(getattr(p, name).detach()), float(getattr(q, name).detach())
        assert math.isfinite(x)
        assert abs(x - r) <= tol * max(1.0, abs(r)), (name, x, r)
    for gp, gq in zip(grads_p, grads_q):
        if gq is None:
            assert gp is None
            continue
        assert torch.isfinite(gp).all()
        assert rel_err(gp, gq) <= tol, rel_err(gp, gq)


TEACHERS = ["single", "ens_prob", "ens_logit", "topk", "topk_full"]


def teacher_for(kind, members, y, V):
    if kind == "single":
        return members[0], {}
    if kind in ("ens_prob", "ens_logit"):
        return members, {"ensemble": kind[4:]}
    K = V if kind == "topk_full" else 12
    return topk_from(members[:1], y, K), {}


# ----------------------------------------------------------------- hand-computed values

def _softmax(v, t=1.0):
    e = [math.exp(x / t) for x in v]
    return [x / sum(e) for x in e]


def _kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0)


S_ROWS = [[1.0, 2.0, 0.5], [0.0, -1.0, 1.5], [3.0, 3.0, 3.0]]
Z_ROWS = [[2.0, 0.0, 1.0], [0.5, 1.0, -0.5], [0.0, 0.0, 0.0]]
Y = [0, 0, IGN]
ALPHA, TAU, BETA = 0.3, 2.0, 2.0


def _hand_weight(mode, p1, q1, y):
    if mode == "none":
        return 1.0
    if mode == "prob":
        return p1[y] / max(p1)
    if mode == "rank":   # trust_k = 1
        return 1.0 if p1[y] == max(p1) else 0.0
    return 1.0 / (1.0 + math.exp(-BETA * (math.log(p1[y]) - math.log(q1[y]))))


def _identity_problem():
    """3-word vocab; weight = I so the hidden rows are the logits."""
    eye = torch.eye(3, dtype=F64)
    return (torch.tensor(S_ROWS, dtype=F64), eye, None, torch.tensor(Y),
            TeacherLogits(torch.tensor(Z_ROWS, dtype=F64), eye, None))


@pytest.mark.parametrize("impl", ["reference", "torch"])
@pytest.mark.parametrize("mode", TRUST_MODES)
def test_hand_computed_full_teacher(mode, impl):
    losses, ws = [], []
    for s, z, y in zip(S_ROWS[:2], Z_ROWS[:2], Y[:2]):
        q1, p1 = _softmax(s), _softmax(z)
        ce = -math.log(q1[y])
        kl = _kl(_softmax(z, TAU), _softmax(s, TAU))
        w = _hand_weight(mode, p1, q1, y)
        ws.append(w)
        losses.append((1 - ALPHA * w) * ce + ALPHA * w * TAU ** 2 * kl)
    expected = sum(losses) / 2
    h, W, b, y, teacher = _identity_problem()
    p = kd_loss(h, W, b, y, teacher=teacher, cfg=KDConfig(alpha=ALPHA, tau=TAU, trust=mode,
                trust_k=1, trust_beta=BETA, impl=impl, chunk_size=2), return_parts=True)
    assert float(p.loss) == pytest.approx(expected, rel=1e-12)
    assert float(p.trust) == pytest.approx(sum(ws) / 2, rel=1e-12)
    if mode == "rank":
        assert ws == [1.0, 0.0]   # row 2: y=0 is the teacher's second guess


@pytest.mark.parametrize("impl", ["reference", "torch"])
@pytest.mark.parametrize("mode", TRUST_MODES)
def test_hand_computed_topk_with_tail(mode, impl):
    """K = 2 of 3 words: teacher buckets [p(a), p(b), 1 - p(a) - p(b)] and the
    student's [q(a), q(b), q(rest)], both at tau = 1, then each tempered."""
    ids = [[0, 2], [1, 0]]
    losses = []
    for s, z, y, (i, j) in zip(S_ROWS[:2], Z_ROWS[:2], Y[:2], ids):
        q1, p1 = _softmax(s), _softmax(z)
        rest = 3 - i - j
        P = _softmax([math.log(p1[i]), math.log(p1[j]), math.log(p1[rest])], TAU)
        Q = _softmax([math.log(q1[i]), math.log(q1[j]), math.log(q1[rest])], TAU)
        top = max(p1[i], p1[j])
        w = {"none": 1.0, "prob": p1[y] / top,
             "rank": 1.0 if p1[y] >= top else 0.0,
             "margin": 1 / (1 + math.exp(-BETA * (math.log(p1[y]) - math.log(q1[y]))))}[mode]
        losses.append((1 - ALPHA * w) * -math.log(q1[y]) + ALPHA * w * TAU ** 2 * _kl(P, Q))
    h, W, b, y, teacher = _identity_problem()
    logp = F.log_softmax(teacher.hidden, 1)
    idt = torch.tensor(ids + [[0, 1]])
    topk = TeacherTopK(idt, logp.gather(1, idt), logp.gather(1, y.clamp(min=0)[:, None])[:, 0])
    loss = kd_loss(h, W, b, y, teacher=topk, cfg=KDConfig(alpha=ALPHA, tau=TAU, trust=mode,
                   trust_k=1, trust_beta=BETA, impl=impl, chunk_size=2))
    assert float(loss) == pytest.approx(sum(losses) / 2, rel=1e-12)


@pytest.mark.parametrize("impl", ["reference", "torch"])
@pytest.mark.parametrize("ensemble", ["prob", "logit"])
def test_hand_computed_ensemble(ensemble, impl):
    s, y = S_ROWS[0], 0
    z1, z2 = Z_ROWS[0], Z_ROWS[1]
    if ensemble == "prob":   # members tempered first, then averaged
        p = [(a + c) / 2 for a, c in zip(_softmax(z1, TAU), _softmax(z2, TAU))]
    else:
        p = _softmax([(a + c) / 2 for a, c in zip(z1, z2)], TAU)
    expected = (1 - ALPHA) * -math.log(_softmax(s)[y]) + ALPHA * TAU ** 2 * _kl(p, _softmax(s, TAU))
    eye = torch.eye(3, dtype=F64)
    members = [TeacherLogits(torch.tensor([z1], dtype=F64), eye),
               TeacherLogits(torch.tensor([z2], dtype=F64), eye)]
    loss = kd_loss(torch.tensor([s], dtype=F64), eye, None, torch.tensor([y]),
                   teacher=members, cfg=KDConfig(alpha=ALPHA, tau=TAU, ensemble=ensemble,
                                                 impl=impl))
    assert float(loss) == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------- chunked == reference

@pytest.mark.parametrize("mode", TRUST_MODES)
@pytest.mark.parametrize("kind", TEACHERS)
def test_chunked_matches_reference_f64(kind, mode):
    h, w, b, y, members = make_problem(D=(9, 5), seed=10 * TEACHERS.index(kind) + TRUST_MODES.index(mode))
    teacher, extra = teacher_for(kind, members, y, w.shape[0])
    kw = dict(alpha=0.4, tau=1.7, trust=mode, trust_k=3, trust_beta=1.3, **extra)
    ref, g_ref = run(h, w, b, y, teacher, impl="reference", **kw)
    out, g_out = run(h, w, b, y, teacher, impl="torch", chunk_size=16, **kw)
    assert_close_parts(out, ref, g_out, g_ref, 1e-10)
    assert float(ref.soft) > 0


def test_chunked_without_bias_and_chunk_larger_than_vocab():
    h, w, b, y, members = make_problem(bias=False, teacher_bias=False, seed=3)
    for chunk in (7, 101, 5000):
        ref, g_ref = run(h, w, None, y, members[0], impl="reference", trust="margin")
        out, g_out = run(h, w, None, y, members[0], impl="torch", chunk_size=chunk, trust="margin")
        assert_close_parts(out, ref, g_out, g_ref, 1e-10)


@settings(max_examples=15, deadline=None)
@given(N=st.integers(1, 20), d=st.integers(1, 9), V=st.integers(2, 40),
       chunk=st.integers(1, 17), tau=st.floats(0.3, 5.0), alpha=st.floats(0.0, 1.0),
       kind=st.sampled_from(TEACHERS), mode=st.sampled_from(TRUST_MODES),
       seed=st.integers(0, 10_000))
def test_chunked_matches_reference_random_shapes(N, d, V, chunk, tau, alpha, kind, mode, seed):
    h, w, b, y, members = make_problem(N=N, d=d, V=V, D=(3, 4), seed=seed, n_ignored=N // 4)
    if kind == "topk":
        teacher, extra = topk_from(members[:1], y, min(12, V)), {}
    else:
        teacher, extra = teacher_for(kind, members, y, V)
    kw = dict(alpha=alpha, tau=tau, trust=mode, trust_k=1, **extra)
    ref, g_ref = run(h, w, b, y, teacher, impl="reference", **kw)
    out, g_out = run(h, w, b, y, teacher, impl="torch", chunk_size=chunk, **kw)
    assert_close_parts(out, ref, g_out, g_ref, 1e-9)


# ----------------------------------------------------------------- top-K with K = V

@pytest.mark.parametrize("impl", ["reference", "torch"])
@pytest.mark.parametrize("mode", TRUST_MODES)
def test_topk_with_all_words_equals_full_teacher(mode, impl):
    h, w, b, y, members = make_problem(seed=11)
    kw = dict(alpha=0.6, tau=2.5, trust=mode, trust_k=4, impl=impl, chunk_size=16)
    full, g_full = run(h, w, b, y, members[0], **kw)
    topk, g_topk = run(h, w, b, y, topk_from(members[:1], y, w.shape[0]), **kw)
    assert_close_parts(topk, full, g_topk, g_full, 1e-10)


def test_topk_of_ensemble_with_all_words_equals_ensemble():
    h, w, b, y, members = make_problem(D=(9, 5), seed=12)
    full, g_full = run(h, w, b, y, members, alpha=0.5, tau=1.0, impl="torch", chunk_size=16)
    topk, g_topk = run(h, w, b, y, topk_from(members, y, w.shape[0]), alpha=0.5, tau=1.0,
                       impl="torch", chunk_size=16)
    assert_close_parts(topk, full, g_topk, g_full, 1e-10)


def test_topk_soft_term_zero_when_student_matches_cache():
    """Our top-K definition: a student equal to the teacher has KL 0 at any tau."""
    h, w, b, y, members = make_problem(seed=13, n_ignored=0)
    m = members[0]
    topk = topk_from([m], y, 7)
    for impl in ("reference", "torch"):
        p = kd_loss(m.hidden, m.weight, m.bias, y, teacher=topk,
                    cfg=KDConfig(tau=3.0, impl=impl, chunk_size=16), return_parts=True)
        assert abs(float(p.soft)) < 1e-12


# ----------------------------------------------------------------- dtypes, stability

@pytest.mark.parametrize("kind", ["single", "ens_prob", "topk"])
def test_float32_within_1e5_of_float64(kind):
    h, w, b, y, members = make_problem(D=(9, 5), seed=21)
    f32 = [t.float() for t in (h, w, b)]
    h, w, b = [t.double() for t in f32]          # the same values, exactly, in float64
    members = [TeacherLogits(m.hidden.float().double(), m.weight.float().double(),
                             m.bias.float().double()) for m in members]
    teacher, extra = teacher_for(kind, members, y, w.shape[0])
    ref, g_ref = run(h, w, b, y, teacher, impl="reference", trust="prob", **extra)
    out, g_out = run(*f32, y, teacher, impl="torch", chunk_size=16, trust="prob", **extra)
    assert out.loss.dtype == torch.float32 and g_out[1].dtype == torch.float32
    assert_close_parts(out, ref, g_out, g_ref, 1e-5)


@pytest.mark.parametrize("impl", ["reference", "torch"])
@pytest.mark.parametrize("kind", ["single", "ens_logit", "topk"])
def test_bfloat16_within_1e2_of_float64(kind, impl):
    h, w, b, y, members = make_problem(D=(9, 5), seed=22)
    teacher, extra = teacher_for(kind, members, y, w.shape[0])
    ref, g_ref = run(h, w, b, y, teacher, impl="reference", trust="margin", **extra)
    bf = [t.bfloat16() for t in (h, w, b)]
    if kind != "topk":
        teacher = [TeacherLogits(m.hidden.bfloat16(), m.weight.bfloat16(), m.bias.bfloat16())
                   for m in (members if kind.startswith("ens") else members[:1])]
    out, g_out = run(*bf, y, teacher, impl=impl, chunk_size=16, trust="margin", **extra)
    assert g_out[0].dtype == torch.bfloat16
    assert_close_parts(out, ref, g_out, g_ref, 1e-2)


@pytest.mark.parametrize("kind", ["single", "ens_prob", "topk"])
def test_large_logits_stay_finite(kind):
    h, w, b, y, members = make_problem(D=(9, 5), seed=23, scale=60.0)   # logits ~ +-500
    teacher, extra = teacher_for(kind, members, y, w.shape[0])
    ref, g_ref = run(h, w, b, y, teacher, impl="reference", trust="prob", **extra)
    out, g_out = run(h.float(), w.float(), b.float(), y, teacher, impl="torch",
                     chunk_size=16, trust="prob", **extra)
    assert torch.isfinite(ref.loss) and torch.isfinite(out.loss)
    assert_close_parts(out, ref, g_out, g_ref, 1e-4)


@pytest.mark.parametrize("impl", ["reference", "torch"])
def test_alpha_zero_is_cross_entropy(impl):
    h, w, b, y, members = make_problem(seed=31)
    p, grads = run(h, w, b, y, members[0], alpha=0.0, trust="margin", impl=impl, chunk_size=16)
    leaves = [t.clone().requires_grad_() for t in (h, w, b)]
    ce = F.cross_entropy(leaves[0] @ leaves[1].T + leaves[2], y, ignore_index=IGN)
    (ce * 2.5).backward()
    assert float(p.loss) == pytest.approx(float(ce.detach()), rel=1e-12)
    assert float(p.hard) == pytest.approx(float(ce.detach()), rel=1e-12)
    for g, leaf in zip(grads, leaves):
        assert rel_err(g, leaf.grad) < 1e-12


def test_ignored_rows_get_zero_gradient_and_do_not_count():
    h, w, b, y, members = make_problem(seed=32, n_ignored=5)
    p, (gh, _, _) = run(h, w, b, y, members[0], impl="torch", chunk_size=16)
    ign = y == IGN
    assert (gh[ign] == 0).all() and (gh[~ign].abs().sum(1) > 0).all()
    real = ~ign
    q = kd_loss(h[real], w, b, y[real], teacher=TeacherLogits(
        members[0].hidden[real], members[0].weight, members[0].bias), cfg=KDConfig(impl="torch"))
    assert float(p.loss) == pytest.approx(float(q), rel=1e-12)


@pytest.mark.parametrize("impl", ["reference", "torch"])
@pytest.mark.parametrize("kind", ["single", "topk"])
def test_all_rows_ignored_gives_zero_loss_and_zero_grads(kind, impl):
    h, w, b, y, members = make_problem(N=4, seed=33, n_ignored=0)
    teacher, _ = teacher_for(kind, members, y, w.shape[0])
    y = torch.full_like(y, IGN)
    p, grads = run(h, w, b, y, teacher, impl=impl)
    assert float(p.loss) == 0.0 and float(p.trust) == 0.0
    for g in grads:
        assert g is not None and (g == 0).all()


def test_teacher_gets_no_gradient():
    h, w, b, y, members = make_problem(seed=34)
    m = members[0]
    t = TeacherLogits(m.hidden.clone().requires_grad_(), m.weight.clone().requires_grad_(),
                      m.bias.clone().requires_grad_())
    for impl in ("reference", "torch"):
        run(h, w, b, y, t, impl=impl)
        assert t.hidden.grad is None and t.weight.grad is None and t.bias.grad is None


@pytest.mark.parametrize("kind", ["single", "ens_prob", "topk"])
def test_chunked_gradients_only_where_wanted(kind):
    """The torch impl computes gradients with its forward pass: under no_grad it
    must give the same parts, and a frozen input gets none (the others unchanged)."""
    h, w, b, y, members = make_problem(seed=35, D=(9, 5))
    teacher, extra = teacher_for(kind, members, y, w.shape[0])
    kw = dict(impl="torch", trust="margin", chunk_size=16, **extra)
    p_all, g_all = run(h, w, b, y, teacher, **kw)
    with torch.no_grad():
        p_ng = kd_loss(h.requires_grad_(), w, b, y, teacher=teacher, return_parts=True,
                       cfg=KDConfig(**kw))
    h.requires_grad_(False)
    assert all(float(x) == float(r) for x, r in zip(p_ng, p_all))
    hh, ww, bb = h.clone().requires_grad_(), w.clone(), b.clone().requires_grad_()
    kd_loss(hh, ww, bb, y, teacher=teacher, cfg=KDConfig(**kw)).mul(2.5).backward()
    assert ww.grad is None
    assert torch.equal(hh.grad, g_all[0]) and torch.equal(bb.grad, g_all[2])


# ----------------------------------------------------------------- memory: no (N, V) saved

def _saved_numels(fn):
    sizes = []

    def pack(x):
        sizes.append(x.numel())
        return x
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        loss = fn()
    loss.backward()
    return sizes


@pytest.mark.parametrize("kind", ["single", "ens_prob", "topk"])
def test_chunked_graph_saves_no_n_by_v_tensor(kind):
    h, w, b, y, members = make_problem(N=37, V=101, D=(9, 5), seed=41, n_ignored=0)
    teacher, extra = teacher_for(kind, members, y, w.shape[0])
    nv = 37 * 101
    leaves = [t.clone().requires_grad_() for t in (h, w, b)]

    def loss(impl):
        return lambda: kd_loss(*leaves, y, teacher=teacher,
                               cfg=KDConfig(impl=impl, trust="prob", chunk_size=16, **extra))
    assert max(_saved_numels(loss("reference"))) >= nv      # the hook does see (N, V)
    assert max(_saved_numels(loss("torch"))) < nv


# ----------------------------------------------------------------- dispatch and validation

def test_auto_is_torch_on_cpu_and_triton_refused():
    h, w, b, y, members = make_problem(seed=51)
    a = kd_loss(h, w, b, y, teacher=members[0], cfg=KDConfig(impl="auto"))
    t = kd_loss(h, w, b, y, teacher=members[0], cfg=KDConfig(impl="torch"))
    assert float(a) == float(t)
    with pytest.raises((ValueError, RuntimeError), match="triton"):
        kd_loss(h, w, b, y, teacher=members[0], cfg=KDConfig(impl="triton"))


@pytest.mark.parametrize("change, match", [
    (dict(alpha=1.5), "alpha"),
    (dict(alpha=-0.1), "alpha"),
    (dict(tau=0.0), "tau"),
    (dict(tau=float("nan")), "tau"),
    (dict(trust="bogus"), "trust mode"),
    (dict(impl="cuda"), "impl"),
    (dict(ensemble="max"), "ensemble"),
    (dict(chunk_size=0), "chunk_size"),
    (dict(trust_k=0), "trust_k"),
])
def test_bad_settings_raise(change, match):
    h, w, b, y, members = make_problem(N=5, V=11, seed=52)
    with pytest.raises(ValueError, match=match):
        kd_loss(h, w, b, y, teacher=members[0], cfg=KDConfig(**change))


def test_bad_shapes_raise():
    h, w, b, y, members = make_problem(N=5, V=11, d=4, D=(3,), seed=53)
    m = members[0]
    cases = [
        ((h[:, :3], w, b, y, m), "student_weight"),
        ((h, w, b[:5], y, m), "student_bias"),
        ((h, w, b, y[:4], m), "targets"),
        ((h, w, b, y, TeacherLogits(m.hidden[:4], m.weight)), "hidden"),
        ((h, w, b, y, TeacherLogits(m.hidden, m.weight[:10])), "vocabulary mismatch"),
        ((h, w, b, y, TeacherLogits(m.hidden, m.weight[:, :2])), "weight"),
        ((h, w, b, y, []), "empty"),
        ((h, w, b, torch.full_like(y, 11), m), "targets"),
    ]
    for args, match in cases:
        with pytest.raises(ValueError, match=match):
            kd_loss(*args[:4], teacher=args[4])


def test_bad_topk_raises():
    h, w, b, y, members = make_problem(N=5, V=11, seed=54, n_ignored=0)
    t = topk_from(members, y, 4)
    with pytest.raises(ValueError, match="trust_k"):
        kd_loss(h, w, b, y, teacher=t, cfg=KDConfig(trust="rank", trust_k=5))
    dup = t.ids.clone()
    dup[:, 1] = dup[:, 0]
    with pytest.raises(ValueError, match="distinct"):
        kd_loss(h, w, b, y, teacher=TeacherTopK(dup, t.logprobs, t.target_logprob))
    with pytest.raises(ValueError, match="logprobs"):
        kd_loss(h, w, b, y, teacher=TeacherTopK(t.ids, t.logprobs[:, :3], t.target_logprob))
    with pytest.raises(ValueError, match=r"\[0, 11\)"):
        kd_loss(h, w, b, y, teacher=TeacherTopK(t.ids + 11, t.logprobs, t.target_logprob))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", ["single", "ens_prob", "topk"])
def test_cuda_torch_impl_matches_cpu_reference(kind):
    h, w, b, y, members = make_problem(D=(9, 5), seed=61)
    teacher, extra = teacher_for(kind, members, y, w.shape[0])
    ref, g_ref = run(h, w, b, y, teacher, impl="reference", trust="rank", trust_k=3, **extra)
    cuda = lambda t: None if t is None else t.cuda()   # noqa: E731
    if kind == "topk":
        tc = TeacherTopK(*(cuda(x) for x in (teacher.ids, teacher.logprobs, teacher.target_logprob)))
    else:
        tc = [TeacherLogits(cuda(m.hidden), cuda(m.weight), cuda(m.bias))
              for m in (members if kind.startswith("ens") else members[:1])]
    out, g_out = run(cuda(h), cuda(w), cuda(b), cuda(y), tc, impl="torch", chunk_size=16,
                     trust="rank", trust_k=3, **extra)
    assert_close_parts(out, ref, [g.cpu() for g in g_out], g_ref, 1e-10)
