"""Shared fixtures: the project key of the tests and the profiles the differential suite runs."""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))  # tests/corpus.py

# Hypothesis profiles: "ci" (default, bounded) and "dev" (long runs), chosen by env var.
settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("DICOMSCRUB_HYPOTHESIS", "ci"))

TEST_KEY = b"dicomscrub test key: not a secret"


@pytest.fixture
def key() -> bytes:
    return TEST_KEY
