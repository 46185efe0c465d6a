"""Plotly figures for the report, each returned as an HTML fragment without plotly.js
(the page carries plotly.js once, inline).

Text that comes from data (labels, model names) is HTML-escaped before it reaches Plotly:
Plotly renders some tags in labels, and shows entities as the characters they stand for.
"""

from __future__ import annotations

from html import escape

COLOURS = {"lstm": "#1f77b4", "gru": "#d62728"}
VERDICT_COLOURS = {True: "#0a7d32", False: "#8a6d00"}  # the page's --win and --even
# The four answers (and void), as the page colours them: a winner green, equivalent blue,
# undecided amber, void grey.
ANSWER_COLOURS = {
    "a_better": "#0a7d32",
    "b_better": "#0a7d32",
    "equivalent": "#1f5fa8",
    "undecided": "#8a6d00",
    "void": "#777777",
}
ROPE_FILL = "rgba(31, 95, 168, 0.12)"


def answer_colour(verdict: dict) -> str:
    return ANSWER_COLOURS.get(verdict.get("answer"), VERDICT_COLOURS[bool(verdict.get("winner"))])


BASELINE_COLOURS = ["#7f7f7f", "#2ca02c", "#9467bd", "#8c564b"]
CONFIG = {"displaylogo": False, "responsive": True}


def colour(model: str, baselines: list[str]) -> str:
    if model in COLOURS:
        return COLOURS[model]
    return BASELINE_COLOURS[baselines.index(model) % len(BASELINE_COLOURS)] if model in baselines else "#17becf"


def fragment(fig, height: int = 360, legend_px: int = 70) -> str:
    """legend_px: how far below the plot area the legend sits (a tall figure needs it in pixels)."""
    fig.update_layout(
        height=height,
        margin={"l": 50, "r": 10, "t": 60, "b": 40},
        legend={"orientation": "h", "y": -legend_px / height},
        template="plotly_white",
    )
    from markupsafe import Markup

    # Markup: HTML the template inserts as it is, and whose scripts the page's policy allows.
    return Markup(fig.to_html(full_html=False, include_plotlyjs=False, config=CONFIG))


def learning_curves(curves) -> str:
    """Validation loss per epoch: the seeds' mean as a line, their min-max as a band. Runs that
    held nothing out (a final fit after cross-validation) show their training loss instead."""
    import plotly.graph_objects as go

    held_out = curves["val_loss"].notna().any()
    column, what = ("val_loss", "validation") if held_out else ("train_loss", "training")
    fig = go.Figure()
    for cell, part in curves.groupby("cell"):
        by_epoch = part.groupby("epoch")[column].agg(["mean", "min", "max"]).reset_index()
        c, label = colour(str(cell), []), escape(str(cell))
        # The band: its top edge unseen, its bottom edge filled up to the top.
        traces = [
            {"y": by_epoch["max"], "line": {"width": 0}, "showlegend": False, "hoverinfo": "skip"},
            {"y": by_epoch["min"], "line": {"width": 0}, "fill": "tonexty", "fillcolor": _transparent(c),
             "name": f"{label} seed range", "hoverinfo": "skip"},
            {"y": by_epoch["mean"], "line": {"color": c}, "name": f"{label} mean"},
        ]  # fmt: skip
        for trace in traces:
            fig.add_trace(go.Scatter(x=by_epoch["epoch"], mode="lines", legendgroup=str(cell), **trace))
    title = "Validation loss per epoch" if held_out else "Training loss per epoch (the final fit on all items)"
    fig.update_layout(title=title, xaxis_title="epoch", yaxis_title=f"{what} loss")
    return fragment(fig)


# Ticks as plain decimals or scientific notation (d3's "~g"): never SI prefixes such as "−150µ".
TICKS = {"tickformat": "~g", "exponentformat": "e"}


def small_multiples(models: list[str], columns: int = 2, **options):
    """A figure with one panel per model, `columns` to a row, axes shared so panels compare."""
    import math

    from plotly.subplots import make_subplots

    rows = math.ceil(len(models) / columns)
    fig = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[escape(m) for m in models],
        shared_xaxes="all",
        shared_yaxes="all",
        vertical_spacing=0.3 / rows,
        horizontal_spacing=0.06,
        **options,
    )
    return fig, rows, [(i // columns + 1, i % columns + 1) for i in range(len(models))]


def forecast_vs_actual(
    predictions, models: list[str], baselines: list[str], days: int = 120, quantity: str = "close"
) -> str:
    """Each model's forecast of `quantity` (columns actual_Q and MODEL_Q: the close, or the
    volatility over the horizon) in its own panel, over the actual values in grey, for the last
    `days` test days of the first symbol: one line per panel, so no forecast hides another."""
    import plotly.graph_objects as go

    symbol = predictions["symbol"].iloc[0]
    part = predictions[predictions["symbol"] == symbol].tail(days)
    fig, rows, places = small_multiples(models)
    for i, (model, (row, col)) in enumerate(zip(models, places)):
        fig.add_trace(
            go.Scatter(
                x=part["date"],
                y=part[f"actual_{quantity}"],
                name="actual",
                legendgroup="actual",
                showlegend=i == 0,
                line={"color": "#c4c4c4", "width": 2},  # lighter than any model's line, under it
            ),
            row=row,
            col=col,
        )
        fig.add_trace(
            go.Scatter(
                x=part["date"],
                y=part[f"{model}_{quantity}"],
                name=escape(model),
                line={"color": colour(model, baselines), "width": 1.5},
            ),
            row=row,
            col=col,
        )
    fig.update_yaxes(**TICKS)
    fig.update_layout(
        title=f"Forecast vs actual {quantity} (grey), last {len(part)} test days "
        f"({escape(str(symbol))}), one panel per model"
    )
    return fragment(fig, 200 * rows + 140, legend_px=50)


def residuals(
    predictions, models: list[str], baselines: list[str], quantity: str = "return", label: str = "log return"
) -> str:
    """Each model's forecast errors of `quantity` (columns actual_Q and MODEL_Q) as one box per
    model on one scale: the median, the middle half, the whiskers and the outliers, side by side
    rather than overlapping histograms."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for model in models:
        fig.add_trace(
            go.Box(
                x=predictions[f"{model}_{quantity}"] - predictions[f"actual_{quantity}"],
                name=escape(model),
                marker={"color": colour(model, baselines), "size": 3},
                boxpoints="outliers",
                orientation="h",
            )
        )
    fig.add_vline(x=0, line={"color": "#999", "dash": "dot", "width": 1})
    order = [escape(m) for m in models]
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=order[::-1])
    fig.update_xaxes(**TICKS)
    fig.update_layout(
        title=f"Residuals (forecast − actual {label}), test period: one box per model",
        xaxis_title="residual",
        showlegend=False,
    )
    return fragment(fig, 120 + 40 * len(models))


def confusion_matrices(matrices: dict, labels: list[str]) -> str:
    """One heatmap per model (title -> matrix), two to a row, in one figure."""
    import math

    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = [escape(str(label)) for label in labels]
    cols = min(len(matrices), 2)
    rows = math.ceil(len(matrices) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[escape(t) for t in matrices],
        horizontal_spacing=0.15,
        vertical_spacing=0.25 / rows,
    )
    for i, matrix in enumerate(matrices.values()):
        row, col = i // cols + 1, i % cols + 1
        fig.add_trace(
            go.Heatmap(
                z=matrix, x=names, y=names, colorscale="Blues", showscale=False, text=matrix, texttemplate="%{text}"
            ),
            row=row,
            col=col,
        )
        fig.update_xaxes(title_text="predicted", type="category", row=row, col=col)
        fig.update_yaxes(title_text="actual", type="category", autorange="reversed", row=row, col=col)
    fig.update_layout(title="Confusion matrices, test split")
    return fragment(fig, 300 * rows + 60)


def roc_curves(curves: dict, labels: list[str], baselines: list[str]) -> str:
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "#bbb"}, name="chance"))
    for model, found in curves.items():
        for curve in found.get("roc", []):
            suffix = "" if len(labels) == 2 else f" ({escape(str(labels[curve['class']]))} vs rest)"
            fig.add_trace(
                go.Scatter(
                    x=curve["fpr"],
                    y=curve["tpr"],
                    mode="lines",
                    name=escape(model) + suffix,
                    line={"color": colour(model, baselines)},
                )
            )
    positive = f"positive class: {escape(str(labels[1]))}" if len(labels) == 2 else "one vs rest"
    fig.update_layout(
        title=f"ROC curves, test split ({positive})",
        xaxis_title="false positive rate",
        yaxis_title="true positive rate",
    )
    return fragment(fig)


def forest_plot(panels: list[dict]) -> str:
    """The summary's picture: one panel per dataset (its metric's units), one row per comparison
    "first vs second", right of 0 the second is better on every row and every metric
    (sections.forest_row): the difference of the seed means with its 95% interval (diamond and
    bar: the verdict's own, seeds and test examples), each seed's difference (open dots), the region of practical
    equivalence (the shaded band) and the verdict above the row, coloured by its answer."""
    from plotly.subplots import make_subplots

    sizes = [len(p["rows"]) + 1 for p in panels]
    height = 56 * sum(sizes) + 110 * len(panels) + 40
    fig = make_subplots(
        rows=len(panels),
        cols=1,
        row_heights=sizes,
        vertical_spacing=110 / height,
        subplot_titles=[f"{escape(p['dataset'])}: {escape(p['metric'])}" for p in panels],
    )
    for row, panel in enumerate(panels, start=1):
        _forest_panel(fig, panel, row)
    fig.update_layout(title="Paired differences, test split")
    return fragment(fig, height, legend_px=75)


def _forest_panel(fig, panel: dict, row: int) -> None:
    import plotly.graph_objects as go

    rows, dataset = panel["rows"], escape(panel["dataset"])
    labels = [escape(r["label"]) for r in rows]
    seeds = [(label, seed, value) for label, r in zip(labels, rows) for seed, value in r["seeds"].items()]

    def add(**trace):  # a marker trace of this panel, its legend entry shown once
        fig.add_trace(go.Scatter(mode="markers", showlegend=row == 1, meta=dataset, **trace), row=row, col=1)

    add(
        x=[r["difference"] for r in rows],
        y=labels,
        error_x=_interval(rows),
        marker={
            "symbol": "diamond",
            "size": 13,
            "color": [answer_colour(r["verdict"]) for r in rows],
        },
        name="difference of the seed means, 95% interval (seeds and test examples)",
        legendgroup="mean",
        hovertemplate="%{y}: %{x:.4g}<extra></extra>",
    )
    add(
        x=[v for *_, v in seeds],
        y=[label for label, *_ in seeds],
        customdata=[s for _, s, _ in seeds],
        marker={"symbol": "circle-open", "size": 9, "color": "#555"},
        name="one seed",
        legendgroup="seed",
        hovertemplate="%{y}, seed %{customdata}: %{x:.4g}<extra></extra>",
    )
    _forest_axes(fig, panel, labels, row)


def _forest_axes(fig, panel: dict, labels: list[str], row: int) -> None:
    """A panel's verdicts (above each row), zero line, axis title and row order (first on top)."""
    axis = "" if row == 1 else str(row)
    rows = panel["rows"]
    for label, r in zip(labels, rows):
        fig.add_annotation(
            text=_verdict_text(r["verdict"]),
            x=0,
            xref=f"x{axis} domain",
            xanchor="left",
            y=label,
            yref=f"y{axis}",
            yshift=17,
            showarrow=False,
            font={"size": 12, "color": answer_colour(r["verdict"])},
        )
    if panel.get("rope"):  # the region of practical equivalence: differences that do not matter
        fig.add_vrect(x0=-panel["rope"], x1=panel["rope"], fillcolor=ROPE_FILL, line_width=0, row=row, col=1)
    fig.add_vline(x=0, line={"color": "#999", "dash": "dot", "width": 1}, row=row, col=1)
    fig.update_xaxes(title_text=reading_direction(panel), zeroline=False, row=row, col=1, **TICKS)
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=labels[::-1], row=row, col=1)


def reading_direction(panel: dict) -> str:
    """The forest axis's title: which side is whose, in the cells' names, the same for every
    metric (sections.forest_row plots each row in its metric's good direction)."""
    first, second = (escape(c) for c in panel["cells"])
    way = "higher" if panel["higher_is_better"] else "lower"
    return (
        f"← {first} better · {second} better → ({escape(panel['metric'])}, {way} is better; "
        "a row vs a baseline: ← baseline better · cell better →)"
    )


def _interval(rows: list[dict]) -> dict:
    """Plotly error bars from low/high ends (none where a row has no interval)."""
    return {
        "type": "data",
        "thickness": 2,
        "width": 6,
        "color": "#333",
        "array": [None if r["high"] is None else r["high"] - r["difference"] for r in rows],
        "arrayminus": [None if r["low"] is None else r["difference"] - r["low"] for r in rows],
    }


def _verdict_text(verdict: dict) -> str:
    p = verdict.get("p_value")
    name = "Holm p" if verdict.get("p_adjustment") == "holm" else "p"
    text = escape(verdict["text"]) + ("" if p is None else f" ({name} = {p:.3g})")
    from seqbench.stats import MOST_SEEDS

    needed = verdict.get("seeds_to_decide")
    if needed and needed > MOST_SEEDS:
        text += f"; more than {MOST_SEEDS} seeds per cell would be needed"
    elif needed:
        text += f"; about {needed} seeds per cell would decide it"
    return text


def seed_strip(strip: dict) -> str:
    """The headline metric per model: each seed's score as a dot, the mean over seeds with its
    95% interval as a bar; a baseline (one deterministic score) as a grey diamond."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for cell, entry in strip["cells"].items():
        name, c = escape(cell), colour(cell, [])
        fig.add_trace(
            go.Scatter(
                x=list(entry["seeds"].values()),
                y=[name] * len(entry["seeds"]),
                customdata=list(entry["seeds"]),
                mode="markers",
                name=f"{name}: each seed",
                marker={"color": _transparent(c, 0.7), "size": 10, "line": {"color": c, "width": 1}},
                hovertemplate="seed %{customdata}: %{x:.4g}<extra></extra>",
            )
        )
        interval = _interval([{"difference": entry["mean"], "low": entry.get("low"), "high": entry.get("high")}])
        fig.add_trace(
            go.Scatter(
                x=[entry["mean"]],
                y=[name],
                mode="markers",
                error_x=interval,
                name=f"{name}: mean, 95% CI",
                marker={"symbol": "line-ns-open", "size": 22, "color": "#333", "line": {"width": 3}},
                hovertemplate="mean: %{x:.4g}<extra></extra>",
            )
        )
    baselines = strip["baselines"]
    fig.add_trace(
        go.Scatter(
            x=list(baselines.values()),
            y=[escape(b) for b in baselines],
            mode="markers",
            name="baseline",
            marker={"symbol": "diamond", "size": 10, "color": "#7f7f7f"},
            hovertemplate="%{y}: %{x:.4g}<extra></extra>",
        )
    )
    order = [escape(m) for m in [*strip["cells"], *baselines]]
    better = {True: " (higher is better)", False: " (lower is better)"}.get(strip["higher_is_better"], "")
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=order[::-1])
    fig.update_layout(
        title=f"{escape(strip['metric'])} on the test split: each seed, and the mean over seeds",
        xaxis_title=escape(strip["metric"]) + better,
        showlegend=False,
    )
    return fragment(fig, 130 + 44 * len(order))


def search_trials(series: dict) -> str:
    """Every search trial's validation loss in trial order, per cell: complete trials filled,
    pruned ones open (their value is the last epoch reached); each cell's best so far over
    complete trials as a step line. Both cells' trials side by side show the equal budget."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for cell, found in series.items():
        name, c = escape(cell), colour(cell, [])
        for state, symbol in (("complete", "circle"), ("pruned", "circle-open")):
            trials = found[state]
            fig.add_trace(
                go.Scatter(
                    x=[t["number"] for t in trials],
                    y=[t["value"] for t in trials],
                    text=[_trial_text(t) for t in trials],
                    mode="markers",
                    name=f"{name} {state}",
                    legendgroup=name,
                    marker={"symbol": symbol, "size": 9, "color": c, "line": {"width": 2, "color": c}},
                    hovertemplate=f"{name} trial %{{x}} ({state}): %{{y:.4g}}<br>%{{text}}<extra></extra>",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=[n for n, _ in found["best"]],
                y=[v for _, v in found["best"]],
                mode="lines",
                line={"color": c, "shape": "hv"},
                name=f"{name} best so far",
                legendgroup=name,
                hovertemplate=f"{name} best after trial %{{x}}: %{{y:.4g}}<extra></extra>",
            )
        )
    fig.update_layout(
        title="Search: validation loss of every trial", xaxis_title="trial", yaxis_title="validation loss"
    )
    last = max((t["number"] for found in series.values() for t in found["complete"] + found["pruned"]), default=0)
    fig.update_xaxes(tick0=0, dtick=max(1, -(-last // 15)))  # whole trial numbers only
    return fragment(fig)


def _trial_text(trial: dict) -> str:
    params = ", ".join(f"{escape(str(k))} = {escape(str(v))}" for k, v in trial.get("params", {}).items())
    size = f"hidden {trial.get('hidden_size')}, {trial.get('parameters')} parameters, {trial.get('epochs')} epochs"
    return f"{params}<br>{size}" if params else size


def _transparent(hex_colour: str, alpha: float = 0.2) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


# ---- suites -----------------------------------------------------------------------------------


def critical_difference(friedman: dict, datasets: int) -> str:
    """Demšar's critical-difference diagram: each model at its average rank over the suite's
    datasets (1 = best, on the left), and a thick bar under the models that no Holm-adjusted
    pairwise test separates. Drawn here rather than with aeon's matplotlib figure, so that it
    looks like the rest of the page and needs no image."""
    import plotly.graph_objects as go

    ranks, order = friedman["average_ranks"], friedman["models"]
    fig = go.Figure()
    for i, model in enumerate(order):  # labels staggered upwards so close ranks stay readable
        height = 1 + 0.6 * (i % 3)
        fig.add_trace(
            go.Scatter(
                x=[ranks[model], ranks[model]],
                y=[0, height],
                mode="lines+markers+text",
                name=escape(model),
                text=["", f"{escape(model)} ({ranks[model]:.2f})"],
                textposition="top center",
                line={"color": colour(model, [m for m in order if m not in COLOURS]), "width": 1.5},
                marker={"size": [9, 0]},
                hovertemplate=f"{escape(model)}: average rank %{{x:.2f}}<extra></extra>",
            )
        )
    for j, clique in enumerate(friedman["cliques"]):
        members = [ranks[m] for m in clique]
        fig.add_trace(
            go.Scatter(
                x=[min(members) - 0.03, max(members) + 0.03],
                y=[-0.5 - 0.35 * j] * 2,
                mode="lines",
                line={"color": "#222", "width": 6},
                name="no significant difference" if j == 0 else None,
                showlegend=j == 0,
                legendgroup="clique",
                hovertemplate=escape(", ".join(clique)) + ": not separated<extra></extra>",
            )
        )
    fig.update_xaxes(
        range=[0.7, len(order) + 0.3],
        dtick=1,
        title_text="average rank (1 = best)",
        zeroline=False,
        showgrid=False,
        showline=True,
        linecolor="#333",
        ticks="outside",
    )
    fig.update_yaxes(visible=False, range=[-0.6 - 0.35 * max(len(friedman["cliques"]), 1), 3.2])
    fig.update_layout(
        title=f"Average ranks over {datasets} datasets (Friedman p = {friedman['p_value']:.3g})", showlegend=False
    )
    return fragment(fig, 320)


# The suite's answers (suite.ANSWERS): the page's answer colours, and a marker that says which
# cell a decided answer names (▼ below the diagonal: LSTM higher, ▲ above: GRU higher).
SUITE_ANSWERS = {
    "lstm_better": ("LSTM better", ANSWER_COLOURS["a_better"], "triangle-down"),
    "equivalent": ("practically equivalent", ANSWER_COLOURS["equivalent"], "circle"),
    "undecided": ("undecided", ANSWER_COLOURS["undecided"], "diamond"),
    "gru_better": ("GRU better", ANSWER_COLOURS["b_better"], "triangle-up"),
    "void": ("void", ANSWER_COLOURS["void"], "x"),
}


def lstm_vs_gru(rows: list[dict], metric: str, rope: dict | None = None) -> str:
    """Each dataset's LSTM score against its GRU score; above the diagonal GRU scored higher.
    Colour and marker: the dataset's own answer. The band: the suite's ROPE around the diagonal
    (where the two differ by less than it), when the ROPE is in the metric's units."""
    import plotly.graph_objects as go

    values = [v for row in rows for v in (row["scores"]["lstm"], row["scores"]["gru"])]
    low, high = min(values), max(values)
    fig = go.Figure()
    if rope and not rope["relative"] and rope["width"] > 0:
        width = rope["width"]
        fig.add_trace(  # the band's lower edge, then its upper edge filled down to it
            go.Scatter(
                x=[low, high],
                y=[low - width, high - width],
                mode="lines",
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[low, high],
                y=[low + width, high + width],
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor=ROPE_FILL,
                name=f"ROPE ±{width:.3g}",
                hoverinfo="skip",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[low, high],
            y=[low, high],
            mode="lines",
            name="equal scores",
            line={"color": "#999", "dash": "dot"},
            hoverinfo="skip",
        )
    )
    for answer, (words, hue, symbol) in SUITE_ANSWERS.items():
        part = [row for row in rows if row["answer"] == answer]
        if part:
            fig.add_trace(
                go.Scatter(
                    x=[row["scores"]["lstm"] for row in part],
                    y=[row["scores"]["gru"] for row in part],
                    text=[escape(f"{row['dataset']}: {row['answer_words']}") for row in part],
                    mode="markers",
                    marker={"size": 11, "color": hue, "symbol": symbol},
                    name=words,
                    hovertemplate="%{text}<br>LSTM %{x:.4g}, GRU %{y:.4g}<extra></extra>",
                )
            )
    fig.update_layout(
        title=f"LSTM vs GRU per dataset ({escape(metric)}, mean over seeds)",
        xaxis_title=f"LSTM {escape(metric)}",
        yaxis_title=f"GRU {escape(metric)}",
    )
    return fragment(fig, 420)


# The simplex's three regions: which of the three probabilities a posterior sample puts highest.
SIMPLEX_REGIONS = (
    ("LSTM better", COLOURS["lstm"]),
    ("practically equivalent", "#9467bd"),
    ("GRU better", COLOURS["gru"]),
)


def bayesian_simplex(bayes: dict, metric: str) -> str:
    """The Bayesian signed-rank test's posterior (Benavoli et al. 2017, Fig. 5): each point is one
    posterior sample of (P(LSTM better), P(practically equivalent), P(GRU better)) on the
    simplex, coloured by the largest of the three; the lines from the centre split the triangle
    into those three regions. The share of points in a region is its probability."""
    import numpy as np
    import plotly.graph_objects as go

    sample = np.asarray(bayes["posterior_sample"], dtype="float64").reshape(-1, 3)
    region = np.argmax(sample, axis=1)
    shares = (bayes["p_lstm_better"], bayes["p_equivalent"], bayes["p_gru_better"])
    fig = go.Figure()
    for k, (words, hue) in enumerate(SIMPLEX_REGIONS):
        part = sample[region == k]
        fig.add_trace(
            go.Scatterternary(
                a=part[:, 1],  # top: equivalent; bottom left: LSTM better; bottom right: GRU better
                b=part[:, 0],
                c=part[:, 2],
                mode="markers",
                name=f"{words}: P = {shares[k]:.2f}",
                marker={"size": 4, "color": hue, "opacity": 0.5},
                hovertemplate=f"{words}<extra></extra>",
            )
        )
    for b, c in ((0.5, 0.0), (0.0, 0.5), (0.5, 0.5)):  # centre to the edges' midpoints
        fig.add_trace(
            go.Scatterternary(
                a=[1 / 3, 1 - b - c],
                b=[1 / 3, b],
                c=[1 / 3, c],
                mode="lines",
                line={"color": "#333", "width": 1},
                showlegend=False,
                hoverinfo="skip",
            )
        )
    width = f"±{bayes['rope']:.3g} {escape(metric)}"
    if bayes.get("relative"):
        width = f"±{100 * bayes['rope']:.3g}% of each best baseline's {escape(metric)}"
    fig.update_layout(
        title=f"Bayesian signed-rank test over {bayes['n']} datasets (ROPE {width})",
        ternary={
            "sum": 1,
            "aaxis": {"title": {"text": "practically equivalent"}, "showticklabels": False},
            "baxis": {"title": {"text": "LSTM better"}, "showticklabels": False},
            "caxis": {"title": {"text": "GRU better"}, "showticklabels": False},
        },
    )
    return fragment(fig, 460, legend_px=40)


def cost_vs_score(rows: list[dict], metric: str) -> str:
    """Each cell's training time per run (mean over seeds) against its score, per dataset."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for cell in ("lstm", "gru"):
        fig.add_trace(
            go.Scatter(
                x=[row["train_seconds"][cell] for row in rows],
                y=[row["scores"][cell] for row in rows],
                text=[escape(row["dataset"]) for row in rows],
                mode="markers",
                name=cell,
                marker={"size": 10, "color": COLOURS[cell]},
                hovertemplate="%{text}: %{x:.3g} s, %{y:.4g}<extra>" + cell + "</extra>",
            )
        )
    fig.update_layout(
        title=f"Cost vs score ({escape(metric)})",
        xaxis_title="training time per run (s, log scale)",
        yaxis_title=escape(metric),
        xaxis_type="log",
    )
    return fragment(fig, 420)
