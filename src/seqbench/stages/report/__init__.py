"""The report stage: reports/index.html from every dataset's evaluation, search, training curves
and validation result. Jinja2 templates (autoescaped) plus Plotly figures; plotly.js is inlined
once, so the page opens from file:// with no network, and its Content-Security-Policy lets only
plotly.js and the figures' own scripts run (pages.py).

sections.py shapes the data each part shows, figures.py draws it, formatting.py holds the
template's number filters and metadata.py the "Run" block.
"""

from __future__ import annotations

from pathlib import Path

from seqbench.paths import Paths


def render_report(params_path: Path | str = "params.yaml", output: Path | str | None = None) -> Path:
    from seqbench.config import load_params
    from seqbench.io import atomic_path, write_json
    from seqbench.stages.report import figures
    from seqbench.stages.report.metadata import run_metadata
    from seqbench.stages.report.sections import dataset_section, suite_section

    params_path = Path(params_path)
    params = load_params(params_path)
    paths = Paths(params_path.resolve().parent)
    output = Path(output) if output else paths.report()
    sections = [dataset_section(paths, name, output.parent, dataset) for name, dataset in params.datasets.items()]
    forest = figures.forest_plot([s["forest"] for s in sections])
    suites = [suite_section(paths, name) for name in params.suites]
    html = render_html(sections, forest, run_metadata(paths.root, params_path, params), suites)
    with atomic_path(output) as tmp:
        tmp.write_text(html, encoding="utf-8")
    write_json(answers(sections), output.parent / ANSWERS)
    return output


# Beside the page: what it concludes, as the report stage's DVC output (dvc.yaml says why).
ANSWERS = "answers.json"


def answers(sections: list[dict]) -> dict:
    """Each dataset's verdicts in numbers and words: what the page concludes, without the
    measured costs, so the same results give the same bytes."""
    return {
        section["name"]: {
            "best_baseline": section["result"]["best_baseline"]["name"],
            "comparisons": [comparison_answer(c) for c in section["result"]["comparisons"]],
        }
        for section in sections
    }


def comparison_answer(comparison: dict) -> dict:
    effect = comparison["effect"]
    return {
        "a": comparison["a"],
        "b": comparison["b"],
        "metric": comparison["metric"],
        "answer": "void" if comparison.get("void") else comparison["verdict"]["answer"],
        "b_minus_a": effect["difference"],
        "interval": [effect["low"], effect["high"]],
        "p_holm": effect["p_holm"],
    }


def render_html(sections: list[dict], forest: str, metadata: dict, suites: list[dict] = ()) -> str:
    from markupsafe import Markup
    from plotly.offline import get_plotlyjs

    from seqbench.stages.report.pages import content_security_policy, environment, scripts_in
    from seqbench.stages.report.sections import RECOMMENDATION_RULE
    from seqbench.stats import ALPHA, VERDICT_RULE

    # The template marks nothing safe: plotly.js and the figures are Markup, everything else is escaped.
    plotly_js = Markup(get_plotlyjs())
    figure_scripts = [
        script for fragment in figure_fragments([sections, forest, list(suites)]) for script in scripts_in(fragment)
    ]
    csp = content_security_policy([plotly_js, *figure_scripts], images=True)
    return (
        environment()
        .get_template("index.html.j2")
        .render(
            sections=sections,
            forest=forest,
            suites=suites,
            meta=metadata,
            plotly_js=plotly_js,
            verdict_rule=VERDICT_RULE,
            recommendation_rule=RECOMMENDATION_RULE,
            alpha=ALPHA,
            csp=csp,
        )
    )


def figure_fragments(value) -> list[str]:
    """Every figure in `value` (nested dicts and lists): the Markup that figures.fragment returns.
    Only code makes Markup, never data, so only the figures' own scripts get allowed by hash."""
    from markupsafe import Markup

    if isinstance(value, Markup):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [fragment for item in value for fragment in figure_fragments(item)]
    return []
