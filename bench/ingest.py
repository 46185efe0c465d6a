"""Ingest + validate a synthetic 1,000,000-row stock table, beside a plain pandas read/write.

Each side runs in its own process, so its peak RSS is its own. Both the work alone (after
imports) and the whole process are timed; the printed ratios are seqbench / plain pandas,
measured in this one run on this machine.

Target: work within 3x of the plain read/write, and peak memory under 1.5 GiB.

    python bench/ingest.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

# Each snippet prints {"work_s": ...}; peak RSS comes from the process's own rusage.
PLAIN = """
import time, pandas as pd
start = time.perf_counter()
pd.read_csv("prices.csv").to_parquet("plain.parquet")
work = time.perf_counter() - start
"""

SEQBENCH = """
import time
from seqbench.ingest import ingest
from seqbench.validate import validate
import great_expectations  # import cost belongs to the process time, not the work time
start = time.perf_counter()
ingest("bench", "params.yaml")
report = validate("bench", "params.yaml")
work = time.perf_counter() - start
assert report["rows_validated"] == ROWS, report["rows_validated"]
"""

FOOTER = """
import json, resource
print(json.dumps({"work_s": work, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_table(folder: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd

    symbols = 100
    days = rows // symbols
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("1980-01-01", periods=days).strftime("%Y-%m-%d")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, size=(symbols, days)), axis=1)).ravel()
    spread = np.abs(rng.normal(0, 0.005, size=close.size)) * close
    table = pd.DataFrame(
        {
            "date": np.tile(dates, symbols),
            "symbol": np.repeat([f"S{i:03d}" for i in range(symbols)], days),
            "open": close,
            "high": close + spread,
            "low": close - spread,
            "close": close,
            "volume": rng.integers(1_000, 1_000_000, size=close.size),
        }
    )
    table.to_csv(folder / "prices.csv", index=False)
    (folder / "params.yaml").write_text(
        textwrap.dedent(
            """\
            datasets:
              bench:
                kind: stock
                source: prices.csv
            """
        )
    )


def measure(code: str, folder: Path) -> dict:
    started = time.perf_counter()
    process = subprocess.run([sys.executable, "-c", code + FOOTER], cwd=folder, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        sys.exit(f"benchmark step failed:\n{process.stderr}")
    result = json.loads(process.stdout.strip().splitlines()[-1])
    return {**result, "process_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"writing a synthetic {args.rows:,}-row stock CSV …", flush=True)
        make_table(folder, args.rows)
        print("timing plain pandas read_csv + to_parquet …", flush=True)
        plain = measure(PLAIN, folder)
        print("timing seqbench ingest + validate …", flush=True)
        ours = measure(SEQBENCH.replace("ROWS", str(args.rows)), folder)

    rows = args.rows
    print()
    print(f"{'':28}{'plain pandas':>14}{'seqbench':>14}{'ratio':>9}")
    for label, key in (("work (s)", "work_s"), ("whole process (s)", "process_s")):
        print(f"{label:28}{plain[key]:14.2f}{ours[key]:14.2f}{ours[key] / plain[key]:8.2f}x")
    print(f"{'work rows/s':28}{rows / plain['work_s']:14,.0f}{rows / ours['work_s']:14,.0f}")
    print(
        f"{'peak RSS (MiB)':28}{plain['peak_rss_mib']:14.0f}{ours['peak_rss_mib']:14.0f}"
        f"{ours['peak_rss_mib'] / plain['peak_rss_mib']:8.2f}x"
    )
    ratio = ours["work_s"] / plain["work_s"]
    print()
    print(f"target: work within 3x of plain -> {ratio:.2f}x: {'met' if ratio <= 3 else 'NOT met'}")
    peak = ours["peak_rss_mib"]
    print(f"target: peak RSS under 1536 MiB -> {peak:.0f} MiB: {'met' if peak < 1536 else 'NOT met'}")


if __name__ == "__main__":
    main()
