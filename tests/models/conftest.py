"""Fixtures for model tests: the tiny random BERT of the training tests (one definition, reused)."""

from __future__ import annotations

from tests.training.conftest import tiny_bert  # noqa: F401  (a fixture)
