"""What every HTML page the project writes shares: one autoescaped Jinja environment (data is
text unless code marks it otherwise), and a Content-Security-Policy for the page's <meta>.

The policy is defence in depth behind the escaping: a page fetches nothing (default-src 'none')
and runs only the inline scripts the code put there, each allowed by its SHA-256 hash. A script
that reached a page through data, past an escaping mistake, has no hash and does not run.
"""

from __future__ import annotations

import base64
import hashlib
import re

# The body of each <script> element in a trusted fragment (Plotly's output).
SCRIPT_BODY = re.compile(r"<script\b[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def environment():
    import jinja2

    from seqbench.stages.report.formatting import FILTERS

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("seqbench.stages.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=visible,
    )
    env.filters.update(FILTERS)
    return env


def visible(value):
    """Every value a template prints: data text with its control characters written out (\\x1b),
    as on the terminal (redact.escape_controls); the code's own Markup (plotly.js, the figures)
    as it is."""
    from markupsafe import Markup

    from seqbench.redact import escape_controls

    if isinstance(value, str) and not isinstance(value, Markup):
        return escape_controls(value)
    return value


def script_hash(body: str) -> str:
    """A CSP source allowing exactly this inline script (hashed as the browser hashes it)."""
    digest = hashlib.sha256(body.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def scripts_in(fragment: str) -> list[str]:
    return SCRIPT_BODY.findall(fragment)


def content_security_policy(scripts: list[str] = (), images: bool = False) -> str:
    """No fetch of any kind; inline styles (Plotly sets style attributes); `scripts` by hash;
    with `images`, data: and blob: images (Plotly's "download as PNG" draws through one)."""
    policy = ["default-src 'none'", "style-src 'unsafe-inline'", "base-uri 'none'", "form-action 'none'"]
    if scripts:
        policy.append("script-src " + " ".join(dict.fromkeys(script_hash(s) for s in scripts)))
    if images:
        policy.append("img-src data: blob:")
    return "; ".join(policy)
