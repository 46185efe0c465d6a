"""The report stage: reports/index.html from every dataset's evaluation, search, training curves
and validation result. Jinja2 templates (autoescaped) plus Plotly figures; plotly.js is inlined
once, so the page opens from file:// with no network.

sections.py shapes the data each part shows, figures.py draws it, formatting.py holds the
template's number filters and metadata.py the "Run" block.
"""

from __future__ import annotations

from pathlib import Path

from seqbench.paths import Paths


def render_report(params_path: Path | str = "params.yaml", output: Path | str | None = None) -> Path:
    from seqbench.config import load_params
    from seqbench.io import atomic_path
    from seqbench.report import figures
    from seqbench.report.metadata import run_metadata
    from seqbench.report.sections import dataset_section

    params_path = Path(params_path)
    params = load_params(params_path)
    paths = Paths(params_path.resolve().parent)
    output = Path(output) if output else paths.root / "reports" / "index.html"
    sections = [dataset_section(paths, name, output.parent) for name in params.datasets]
    forest = figures.forest_plot([s["forest"] for s in sections])
    html = render_html(sections, forest, run_metadata(paths.root, params_path, params))
    with atomic_path(output) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return output


def render_html(sections: list[dict], forest: str, metadata: dict) -> str:
    import jinja2
    from plotly.offline import get_plotlyjs

    from seqbench.report.formatting import FILTERS
    from seqbench.stats import ALPHA, VERDICT_RULE

    env = jinja2.Environment(loader=jinja2.PackageLoader("seqbench.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters.update(FILTERS)
    return env.get_template("index.html.j2").render(
        sections=sections, forest=forest, meta=metadata, plotly_js=get_plotlyjs(), verdict_rule=VERDICT_RULE,
        alpha=ALPHA,
    )
