"""Plotly figures for the report, each returned as an HTML fragment without plotly.js
(the page carries plotly.js once, inline).

Text that comes from data (labels, model names) is HTML-escaped before it reaches Plotly:
Plotly renders some tags in labels, and shows entities as the characters they stand for.
"""

from __future__ import annotations

from html import escape

COLOURS = {"lstm": "#1f77b4", "gru": "#d62728"}
BASELINE_COLOURS = ["#7f7f7f", "#2ca02c", "#9467bd", "#8c564b"]
CONFIG = {"displaylogo": False, "responsive": True}


def colour(model: str, baselines: list[str]) -> str:
    if model in COLOURS:
        return COLOURS[model]
    return BASELINE_COLOURS[baselines.index(model) % len(BASELINE_COLOURS)] if model in baselines else "#17becf"


def fragment(fig, height: int = 360) -> str:
    fig.update_layout(height=height, margin={"l": 50, "r": 10, "t": 60, "b": 40},
                      legend={"orientation": "h", "y": -0.2}, template="plotly_white")
    return fig.to_html(full_html=False, include_plotlyjs=False, config=CONFIG)


def learning_curves(curves) -> str:
    """Validation loss per epoch: the seeds' mean as a line, their min-max as a band."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for cell, part in curves.groupby("cell"):
        by_epoch = part.groupby("epoch")["val_loss"].agg(["mean", "min", "max"]).reset_index()
        c = colour(str(cell), [])
        fig.add_trace(go.Scatter(x=by_epoch["epoch"], y=by_epoch["max"], mode="lines", line={"width": 0},
                                 showlegend=False, hoverinfo="skip", legendgroup=str(cell)))
        fig.add_trace(go.Scatter(x=by_epoch["epoch"], y=by_epoch["min"], mode="lines", line={"width": 0},
                                 fill="tonexty", fillcolor=_transparent(c), name=f"{escape(str(cell))} seed range",
                                 hoverinfo="skip", legendgroup=str(cell)))
        fig.add_trace(go.Scatter(x=by_epoch["epoch"], y=by_epoch["mean"], mode="lines", line={"color": c},
                                 name=f"{escape(str(cell))} mean", legendgroup=str(cell)))
    fig.update_layout(title="Validation loss per epoch", xaxis_title="epoch",
                      yaxis_title="validation loss")
    return fragment(fig)


def forecast_vs_actual(predictions, models: list[str], baselines: list[str], days: int = 120) -> str:
    """Actual closes and each model's forecast over the last `days` test days of the first
    symbol (over the whole test period the lines cannot be told apart)."""
    import plotly.graph_objects as go

    symbol = predictions["symbol"].iloc[0]
    part = predictions[predictions["symbol"] == symbol].tail(days)
    fig = go.Figure(go.Scatter(x=part["date"], y=part["actual_close"], name="actual", line={"color": "black"}))
    for model in models:
        fig.add_trace(go.Scatter(x=part["date"], y=part[f"{model}_close"], name=escape(model),
                                 line={"color": colour(model, baselines), "width": 1}))
    fig.update_layout(title=f"Forecast vs actual close, last {len(part)} test days ({escape(str(symbol))})",
                      yaxis_title="close")
    return fragment(fig, 420)


def residuals(predictions, models: list[str], baselines: list[str]) -> str:
    """Distribution of the log-return forecast errors of each model."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for model in models:
        fig.add_trace(go.Histogram(x=predictions[f"{model}_return"] - predictions["actual_return"], name=escape(model), opacity=0.55,
                                   marker={"color": colour(model, baselines)}, nbinsx=80))
    fig.update_layout(barmode="overlay", title="Residuals (forecast - actual log return), test period",
                      xaxis_title="residual", yaxis_title="count")
    return fragment(fig)


def confusion_matrices(matrices: dict, labels: list[str]) -> str:
    """One heatmap per model (title -> matrix), two to a row, in one figure."""
    import math

    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = [escape(str(label)) for label in labels]
    cols = min(len(matrices), 2)
    rows = math.ceil(len(matrices) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[escape(t) for t in matrices],
                        horizontal_spacing=0.15, vertical_spacing=0.25 / rows)
    for i, matrix in enumerate(matrices.values()):
        row, col = i // cols + 1, i % cols + 1
        fig.add_trace(go.Heatmap(z=matrix, x=names, y=names, colorscale="Blues", showscale=False,
                                 text=matrix, texttemplate="%{text}"), row=row, col=col)
        fig.update_xaxes(title_text="predicted", type="category", row=row, col=col)
        fig.update_yaxes(title_text="actual", type="category", autorange="reversed", row=row, col=col)
    fig.update_layout(title="Confusion matrices, test split")
    return fragment(fig, 300 * rows + 60)


def roc_curves(curves: dict, labels: list[str], baselines: list[str]) -> str:
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "#bbb"},
                               name="chance"))
    for model, found in curves.items():
        for curve in found.get("roc", []):
            suffix = "" if len(labels) == 2 else f" ({escape(str(labels[curve['class']]))} vs rest)"
            fig.add_trace(go.Scatter(x=curve["fpr"], y=curve["tpr"], mode="lines", name=escape(model) + suffix,
                                     line={"color": colour(model, baselines)}))
    positive = f"positive class: {escape(str(labels[1]))}" if len(labels) == 2 else "one vs rest"
    fig.update_layout(title=f"ROC curves, test split ({positive})", xaxis_title="false positive rate",
                      yaxis_title="true positive rate")
    return fragment(fig)


def _transparent(hex_colour: str, alpha: float = 0.2) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"
