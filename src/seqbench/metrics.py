"""Scores on the test split: one function per task, each a dict of plain floats.

scikit-learn computes what it can; the forecasting scores it lacks (price RMSE, MASE, Theil's U,
directional accuracy) are one line each from their definitions.
"""

from __future__ import annotations

# For each primary metric, whether a larger value is better (used by the verdict and the report).
HIGHER_IS_BETTER = {
    "rmse": False, "mae": False, "price_rmse": False, "mase": False, "theils_u": False,
    "directional_accuracy": True,
    "accuracy": True, "balanced_accuracy": True, "macro_f1": True, "roc_auc": True,
}
BOUNDED = {"directional_accuracy", "accuracy", "balanced_accuracy", "macro_f1", "roc_auc"}  # within [0, 1]
PRIMARY = {"forecast": "rmse", "classify": "macro_f1"}


def forecast_metrics(actual, predicted, last_close, actual_close, naive_scale: float) -> dict:
    """Scores of log-return forecasts.

    actual, predicted: log returns over the horizon; last_close: the close the forecast is made
    from; actual_close: the close it forecasts. naive_scale is the in-sample (training period)
    MAE of the random-walk price forecast, MASE's denominator (Hyndman & Koehler 2006).
    Theil's U (U2) is the RMSE relative to the random walk's (a zero return) on the same points.
    Directional accuracy counts sign agreement; a zero forecast names no direction, so the
    random walk has none (None).
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
        "mase": float(mean_absolute_error(actual_close, predicted_close) / naive_scale),
        "theils_u": float(np.sqrt(np.sum((predicted - actual) ** 2) / np.sum(actual**2))),
        "directional_accuracy": directional,
    }


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
    for positive in ([1] if n_classes == 2 else range(n_classes)):
        if (labels == positive).all() or (labels != positive).all():
            continue
        fpr, tpr, _ = roc_curve(labels == positive, probabilities[:, positive])
        keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), max_points)).astype(int))
        curves.append({"class": int(positive), "fpr": fpr[keep].round(4).tolist(), "tpr": tpr[keep].round(4).tolist()})
    return curves
