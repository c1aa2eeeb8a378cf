"""Weighted L2 logistic regression by Newton's method, and Platt scaling: the fitting under the learned detector.

    w, b = fit_logistic(X, y, sample_weight, l2=30.0)        # numpy arrays in, weights and bias out
    a, c = fit_platt(scores, y)                              # p = logistic(a * score + c)

Plain numpy, float64, no randomness: the same rows give the same weights (the learned detector's model card
hashes them). The objective is ``sum_i s_i * logloss_i + l2 / 2 * |w|^2`` with the weights ``s`` scaled to a
mean of 1, so ``l2`` means the same thing whatever the data set's size; the bias is not penalised.
"""

from __future__ import annotations

from typing import Any


def _np() -> Any:
    from turnwise.errors import require

    return require("numpy", "rag")


def fit_logistic(x: Any, y: Any, sample_weight: Any = None, *, l2: float = 30.0, iterations: int = 50,
                 tolerance: float = 1e-9) -> tuple[Any, float]:
    """Minimise the weighted, L2-penalised log loss; return ``(weights, bias)``.

    Args:
        x: (n, d) features.
        y: (n,) labels in {0, 1}.
        sample_weight: (n,) non-negative weights (default: all 1); rescaled to a mean of 1.
        l2: the penalty on the weights (larger: smaller weights).
        iterations: Newton steps at most (it converges in about 10 on the detector's features).
        tolerance: stop when the largest step is smaller.
    """
    np = _np()
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, d = x.shape
    if not 0 < y.sum() < n:
        raise ValueError("training data needs both classes")
    s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    s = s * (n / s.sum())
    xb = np.hstack([x, np.ones((n, 1))])
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    theta = np.zeros(d + 1)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(xb @ theta)))
        grad = xb.T @ (s * (p - y)) + penalty * theta
        hess = (xb.T * (s * p * (1.0 - p))) @ xb + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < tolerance:
            break
    return theta[:-1], float(theta[-1])


def fit_platt(scores: Any, y: Any, sample_weight: Any = None) -> tuple[float, float]:
    """Platt scaling: ``(a, c)`` so that ``logistic(a * score + c)`` is a calibrated probability.

    Fitted on scores the model gave to rows it did not train on (out of fold), with a tiny penalty so that
    separable scores do not run off to infinity.
    """
    np = _np()
    w, c = fit_logistic(np.asarray(scores, dtype=np.float64)[:, None], y, sample_weight, l2=1e-3)
    return float(w[0]), c
