"""Scores on the test split: one function per task, each a dict of plain floats.

scikit-learn computes what it can; the forecasting scores it lacks (price RMSE, MASE, Theil's U,
out-of-sample R^2, directional accuracy, QLIKE, Mincer-Zarnowitz R^2) are a line or two each
from their definitions.
"""

from __future__ import annotations

# For each metric, whether a larger value is better (used by the verdict and the report).
HIGHER_IS_BETTER = {
    "rmse": False,
    "mae": False,
    "price_rmse": False,
    "mase": False,
    "theils_u": False,
    "r2_os": True,
    "directional_accuracy": True,
    "qlike": False,
    "mse_log": False,
    "mz_r2": True,
    "accuracy": True,
    "balanced_accuracy": True,
    "macro_f1": True,
    "roc_auc": True,
}
BOUNDED = {"directional_accuracy", "mz_r2", "accuracy", "balanced_accuracy", "macro_f1", "roc_auc"}  # within [0, 1]


def forecast_metrics(
    actual, predicted, last_close, actual_close, naive_scale: float, benchmark: float | None = None
) -> dict:
    """Scores of log-return forecasts.

    actual, predicted: log returns over the horizon; last_close: the close the forecast is made
    from; actual_close: the close it forecasts.
    MASE (Hyndman & Koehler 2006) on the log scale: the MAE of the return forecast (the MAE of the
    log-price forecast) over naive_scale, the in-sample MAE of the random walk on log prices. On
    prices it would measure the index's growth between the periods, not skill.
    Theil's U (U2) is the RMSE relative to the random walk's (a zero return) on the same points.
    r2_os (Campbell & Thompson 2008): 1 - SSE / SSE of the constant `benchmark` (the historical
    mean return); > 0 beats the historical mean. None without a benchmark.
    Directional accuracy counts sign agreement; a zero forecast names no direction, so the
    random walk has none (None). Compare it with the test period's share of up moves: a forecast
    that always says "up" scores exactly that.
    """
    import numpy as np
    from sklearn.metrics import mean_absolute_error, root_mean_squared_error

    actual, predicted = np.asarray(actual, "float64"), np.asarray(predicted, "float64")
    predicted_close = np.asarray(last_close) * np.exp(predicted)
    directional = None
    if np.any(predicted != 0):
        directional = float(np.mean(np.sign(predicted) == np.sign(actual)))
    return {
        "rmse": float(root_mean_squared_error(actual, predicted)),
        "mae": float(mean_absolute_error(actual, predicted)),
        "price_rmse": float(root_mean_squared_error(actual_close, predicted_close)),
        "mase": float(mean_absolute_error(actual, predicted) / naive_scale),
        "theils_u": float(np.sqrt(np.sum((predicted - actual) ** 2) / np.sum(actual**2))),
        "r2_os": out_of_sample_r2(actual, predicted, benchmark),
        "directional_accuracy": directional,
    }


def out_of_sample_r2(actual, predicted, benchmark: float | None):
    import numpy as np

    if benchmark is None:
        return None
    reference = np.sum((actual - benchmark) ** 2)
    return None if reference == 0 else float(1 - np.sum((actual - predicted) ** 2) / reference)


def qlike_losses(actual_log_variance, predicted_log_variance):
    """QLIKE per point (Patton 2011), 0 for a perfect forecast: RV/h - log(RV/h) - 1, with RV the
    realised and h the forecast variance; computed from logs, so RV/h never overflows."""
    import numpy as np

    gap = np.asarray(actual_log_variance, "float64") - np.asarray(predicted_log_variance, "float64")
    return np.exp(gap) - gap - 1


def volatility_metrics(actual_log_variance, predicted_log_variance) -> dict:
    """Scores of variance forecasts, given as logs (the variance summed over the horizon).

    qlike: mean QLIKE loss (the verdict's metric). mse_log: mean squared error of the log
    variance. mz_r2: the R^2 of the Mincer-Zarnowitz regression of the log realised variance on
    the log forecast (a constant forecast explains nothing: 0); in logs, so a crash day does not
    decide it.
    """
    import numpy as np

    actual = np.asarray(actual_log_variance, "float64")
    predicted = np.asarray(predicted_log_variance, "float64")
    mz_r2 = 0.0
    if np.ptp(predicted) > 0 and np.ptp(actual) > 0:
        mz_r2 = float(np.corrcoef(actual, predicted)[0, 1] ** 2)  # simple regression: R^2 = r^2
    return {
        "qlike": float(np.mean(qlike_losses(actual, predicted))),
        "mse_log": float(np.mean((predicted - actual) ** 2)),
        "mz_r2": mz_r2,
    }


def smearing_factor(actual_log_variance, predicted_log_variance) -> float:
    """mean(RV / exp(forecast)): the factor that turns a forecast of log variance (an estimate of
    E[log RV], which lies below log E[RV]) into a variance forecast (Duan's smearing estimate).
    It is also the constant factor that minimises mean QLIKE on the points given."""
    import numpy as np

    gap = np.asarray(actual_log_variance, "float64") - np.asarray(predicted_log_variance, "float64")
    return float(np.mean(np.exp(gap)))


def classification_metrics(labels, probabilities, n_classes: int) -> dict:
    """Scores of class probabilities [N, classes] against integer labels."""
    import numpy as np
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, roc_auc_score

    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, "float64")
    predicted = probabilities.argmax(axis=1)
    classes = list(range(n_classes))
    if len(np.unique(labels)) < 2:
        auc = None  # undefined with one class in the test set
    elif n_classes == 2:
        auc = float(roc_auc_score(labels, probabilities[:, 1]))
    else:
        auc = float(roc_auc_score(labels, probabilities, multi_class="ovr", labels=classes))
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, average="macro", labels=classes, zero_division=0)),
        "roc_auc": auc,
        "confusion_matrix": confusion_matrix(labels, predicted, labels=classes).tolist(),
    }


def roc_points(labels, probabilities, n_classes: int, max_points: int = 200) -> list[dict]:
    """ROC curve(s) for the report: the positive class when binary, else one-vs-rest per class."""
    import numpy as np
    from sklearn.metrics import roc_curve

    labels = np.asarray(labels)
    curves = []
    for positive in [1] if n_classes == 2 else range(n_classes):
        if (labels == positive).all() or (labels != positive).all():
            continue
        fpr, tpr, _ = roc_curve(labels == positive, probabilities[:, positive])
        keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), max_points)).astype(int))
        curves.append({"class": int(positive), "fpr": fpr[keep].round(4).tolist(), "tpr": tpr[keep].round(4).tolist()})
    return curves
