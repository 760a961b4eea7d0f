"""Shared pytest set-up: keep per-test logging handlers from leaking between tests."""
from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def _reset_asr_kd_logger():
    """CLI commands attach stderr/file handlers to the ``asr_kd`` logger; drop them
    after each test so a later test never logs into a closed capture stream."""
    yield
    log = logging.getLogger("asr_kd")
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    log.propagate = True


@pytest.fixture
def one_thread():
    """Run a test with one intra-op torch thread (tiny models are faster so, and a
    busy machine does not make them crawl); restores the previous setting."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
