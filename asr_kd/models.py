"""LSTM language models and teacher ensembles.

``LstmLM`` keeps the output layer apart from the recurrent body: ``hidden()``
returns the states ``h`` (B, T, d_out) that feed the output layer, and
``output_weight`` (V, d_out) / ``output_bias`` (V,) are exposed, because the
distillation loss takes hidden states and output weights, never logits.

Both implement :class:`asr_kd.lm.LanguageModel`.  Sentence scoring is
``log P(w1..wn </s> | <s>)`` in natural log.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from .errors import InputError
from .lm import LanguageModel
from .ops.ensemble import COMBINE_MODES, combine_logprobs


@dataclass
class LMConfig:
    """Architecture of an LstmLM (stored in the model folder's config.json)."""

    vocab_size: int
    embed_dim: int = 200
    hidden_dim: int = 200
    num_layers: int = 2
    proj_dim: int = 0          # > 0: LSTMP (projected recurrent/output state)
    dropout: float = 0.0
    tie: str = "auto"          # "auto" ties when embed_dim == output dim; "yes" | "no"
    init_range: float = 0.1

    def __post_init__(self):
        # YAML (config files, --tie overrides) reads yes/no/true/false as booleans.
        if isinstance(self.tie, bool):
            self.tie = "yes" if self.tie else "no"
        if self.tie not in ("auto", "yes", "no"):
            raise ValueError(f"tie must be auto, yes or no, got {self.tie!r}")

    @property
    def out_dim(self) -> int:
        return self.proj_dim if self.proj_dim > 0 else self.hidden_dim

    @property
    def tied(self) -> bool:
        if self.tie == "yes":
            if self.embed_dim != self.out_dim:
                raise ValueError("tie=yes needs embed_dim == output dim (hidden or proj)")
            return True
        return self.tie == "auto" and self.embed_dim == self.out_dim

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LMConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model options: {', '.join(sorted(unknown))}")
        return cls(**d)


class LstmLM(LanguageModel):
    """Embedding -> dropout -> LSTM(P) stack -> dropout -> linear output (optionally tied)."""

    def __init__(self, cfg: LMConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(cfg.embed_dim, cfg.hidden_dim, cfg.num_layers, batch_first=True,
                            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
                            proj_size=cfg.proj_dim if cfg.proj_dim > 0 else 0)
        self.out = nn.Linear(cfg.out_dim, cfg.vocab_size)
        if cfg.tied:
            self.out.weight = self.embed.weight
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r = self.cfg.init_range
        for name, p in self.named_parameters():
            if name == "out.weight" and self.cfg.tied:
                continue
            nn.init.uniform_(p, -r, r)
        nn.init.zeros_(self.out.bias)

    # -- pieces ------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.cfg.vocab_size

    @property
    def output_weight(self) -> torch.Tensor:
        """(V, d_out) output projection."""
        return self.out.weight

    @property
    def output_bias(self) -> torch.Tensor:
        """(V,) output bias."""
        return self.out.bias

    def init_state(self, batch_size: int, device=None):
        """Zero (h, c): h (L, B, d_out), c (L, B, hidden)."""
        L, H = self.cfg.num_layers, self.cfg.hidden_dim
        w = self.embed.weight
        device = device or w.device
        h = torch.zeros(L, batch_size, self.cfg.out_dim, device=device, dtype=w.dtype)
        c = torch.zeros(L, batch_size, H, device=device, dtype=w.dtype)
        return h, c

    def hidden(self, inputs: torch.Tensor, state=None):
        """inputs (B, T) ids -> (h (B, T, d_out) after output dropout, new state)."""
        x = self.drop(self.embed(inputs))
        if state is None:
            state = self.init_state(inputs.shape[0], inputs.device)
        h, state = self.lstm(x, state)
        # The oneDNN LSTM returns a transposed view; the output GEMMs are several
        # times slower on it than on a contiguous copy.
        return self.drop(h.contiguous()), state

    def forward(self, inputs: torch.Tensor, state=None):
        """inputs (B, T) -> (logits (B, T, V), new state)."""
        h, state = self.hidden(inputs, state)
        return self.out(h), state

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- output side (H = hidden states (..., d_out)) ------------------------
    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """h (..., d_out) -> float32 logits (..., V)."""
        return self.out(h).float()

    def logprobs(self, h: torch.Tensor) -> torch.Tensor:
        """h (..., d_out) -> float32 log-probabilities (..., V)."""
        return torch.log_softmax(self.logits(h), -1)


def build_model(model_kw: dict, vocab_size: int, seed: int) -> LstmLM:
    """A freshly initialised LstmLM of ``vocab_size`` words and the model options
    ``model_kw`` (:class:`LMConfig` fields), seeded with ``seed``; bad options are an
    InputError."""
    torch.manual_seed(seed)
    try:
        return LstmLM(LMConfig(vocab_size=vocab_size, **model_kw))
    except (TypeError, ValueError) as e:
        raise InputError(f"bad model option: {e}") from None


class TeacherEnsemble(LanguageModel):
    """Several LMs over one vocabulary, combined by probability or logit average.

    ``combine="prob"``: p = mean_m softmax(z_m) (log-mean-exp of log-probs);
    ``combine="logit"``: p = softmax(mean_m z_m); the rule is
    :func:`asr_kd.ops.ensemble.combine_logprobs`.  ``H`` and the state are lists
    with one entry per member.  Members are any :class:`~asr_kd.lm.LanguageModel`.
    """

    def __init__(self, members: list, combine: str = "prob"):
        super().__init__()
        if combine not in COMBINE_MODES:
            raise ValueError(f"unknown ensemble combine mode {combine!r}")
        sizes = {m.vocab_size for m in members}
        if len(sizes) != 1:
            raise ValueError(f"ensemble members disagree on vocabulary size: {sorted(sizes)}")
        self.members = nn.ModuleList(members)
        self.combine = combine

    @property
    def vocab_size(self) -> int:
        return self.members[0].vocab_size

    def num_params(self) -> int:
        return sum(m.num_params() for m in self.members)

    def init_state(self, batch_size: int, device=None):
        return [m.init_state(batch_size, device) for m in self.members]

    def hidden(self, inputs, state=None):
        """List of per-member H (h (B, T, D_m) for an LstmLM) and the list of new states."""
        state = state or [None] * len(self.members)
        hs, new = [], []
        for m, s in zip(self.members, state):
            h, s2 = m.hidden(inputs, s)
            hs.append(h)
            new.append(s2)
        return hs, new

    def logits(self, hs) -> list[torch.Tensor]:
        """Per-member float32 logits (..., V)."""
        return [m.logits(h) for m, h in zip(self.members, hs)]

    def logprobs(self, hs) -> torch.Tensor:
        """(..., V) float32 log-probabilities of the combined distribution."""
        return combine_logprobs(self.logits(hs), self.combine)


def score_sentences(model, token_ids: list[list[int]], bos: int, eos: int,
                    device=None) -> list[float]:
    """log P(w1..wn </s> | <s>) for each sentence (natural log), one padded batch.

    token_ids: list of id lists without ``<s>``/``</s>``.  Returns a float per sentence.
    """
    from .corpus import pad_batch

    if not token_ids:
        return []
    batch = pad_batch([[bos] + s + [eos] for s in token_ids])
    device = device or next(model.parameters()).device
    with torch.no_grad():
        lp, _ = model.token_logprobs(batch.inputs.to(device), batch.targets.to(device))
    return lp.sum(1).double().cpu().tolist()
