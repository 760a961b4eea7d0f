"""The one ensemble combine rule (asr_kd.ops.ensemble)."""
from __future__ import annotations

import math

import pytest
import torch

from asr_kd.ops.ensemble import combine_logprobs

V = 30


# ------------------------------------------------------------ combine rule --

def written_out(zs, mode, tau):
    """The rule as the four copies wrote it before it had one home."""
    if len(zs) == 1 or mode == "logit":
        z = torch.stack(zs).mean(0)
        return torch.log_softmax(z / tau, -1)
    return (torch.logsumexp(torch.stack([torch.log_softmax(z / tau, -1) for z in zs]), 0)
            - math.log(len(zs)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("tau", [1.0, 2.0, 0.5])
@pytest.mark.parametrize("mode", ["prob", "logit"])
@pytest.mark.parametrize("m", [1, 2, 3])
def test_combine_is_the_written_out_rule_bit_for_bit(m, mode, tau, dtype):
    g = torch.Generator().manual_seed(m)
    zs = [(torch.randn(5, 7, V, generator=g) * 3).to(dtype) for _ in range(m)]
    got = combine_logprobs(zs, mode, tau)
    assert got.dtype == dtype and got.shape == (5, 7, V)
    assert torch.equal(got, written_out(zs, mode, tau))


def test_combine_is_a_distribution_and_the_average():
    g = torch.Generator().manual_seed(0)
    zs = [torch.randn(4, V, generator=g, dtype=torch.float64) for _ in range(3)]
    p = torch.stack([torch.softmax(z, -1) for z in zs]).mean(0)
    torch.testing.assert_close(combine_logprobs(zs, "prob").exp(), p)
    torch.testing.assert_close(combine_logprobs(zs, "logit"),
                               torch.log_softmax(torch.stack(zs).mean(0), -1))


def test_combine_refuses_unknown_mode_and_empty():
    with pytest.raises(ValueError, match="combine mode"):
        combine_logprobs([torch.zeros(2, V)], "geometric")
    with pytest.raises(ValueError, match="at least one"):
        combine_logprobs([], "prob")
