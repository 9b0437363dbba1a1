"""Evaluation: ir_measures metrics, comparisons with significance tests, cross-validation folds.

The comparison function lives at ``auxir.evaluation.compare.compare``; it is not re-exported here because a
package attribute named ``compare`` would shadow the ``compare`` submodule.
"""

from __future__ import annotations

from auxir.evaluation.compare import Comparison, PairedTest, holm_bonferroni, paired_t_test
from auxir.evaluation.folds import Fold, load_folds, make_folds, save_folds
from auxir.evaluation.metrics import EvalResult, evaluate, parse_metrics

__all__ = [
    "Comparison",
    "EvalResult",
    "Fold",
    "PairedTest",
    "evaluate",
    "holm_bonferroni",
    "load_folds",
    "make_folds",
    "paired_t_test",
    "parse_metrics",
    "save_folds",
]
