"""The scheduled pipeline against a real `prefect server`: schedule, runs, artifact, one at a time."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest

from conftest import dvc_project, random_walk_prices, run_command, stop_process_group
from seqbench.errors import SeqbenchError
from seqbench.pipeline import DvcLockedError, repro_commands, run_dvc, stage_outcomes, verdict_table

TINY = {
    "train": {"seeds": [0], "max_epochs": 2, "hidden_size": 4, "batch_size": 32, "runner": "sequential"},
    "datasets": {"prices": {"kind": "stock", "source": "prices.csv", "symbol": "TOY", "lookback": 5}},
}


@pytest.fixture
def tiny_project(tmp_path):
    root = tmp_path / "project"
    env = dvc_project(root, TINY, {"prices.csv": random_walk_prices(120)})
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    return root, env


def test_stage_outcomes_read_dvc_repro_output():
    output = ("Running stage 'ingest@prices':\n> seqbench ingest prices\n"
              "Stage 'validate@prices' didn't change, skipping\nRunning stage 'report':\n")
    assert stage_outcomes(output) == {"ran": ["ingest@prices", "report"], "skipped": ["validate@prices"]}


def test_a_subset_of_datasets_reproduces_their_stages_then_the_report():
    assert repro_commands(["a", "b"], ["a", "b"]) == [["repro"]]
    assert repro_commands(["b"], ["a", "b"]) == [["repro", "evaluate@b"], ["repro", "--single-item", "report"]]


def test_verdict_table_without_evaluations_says_so(tmp_path):
    table = verdict_table(tmp_path, ["prices"], {"ran": ["ingest@prices"], "skipped": []})
    assert "| prices | — | not evaluated |" in table and "no report rendered yet" in table
    assert "Stages run: ingest@prices. Skipped as unchanged: none." in table


def test_a_held_dvc_lock_gives_a_clear_message(tiny_project):
    root, env = tiny_project
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from dvc.repo import Repo; r = Repo('.'); r.lock.lock(); "
         "print('locked', flush=True); time.sleep(60)"],
        cwd=root, env=env, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(DvcLockedError, match="another DVC command is working in"):
            run_dvc(["repro"], root, on_line=lambda line: None)
    finally:
        holder.kill()
        holder.wait()
    assert not (root / "data" / "raw").exists()  # nothing ran (data/ itself holds its README, as in a clone)


def test_a_failing_stage_fails_with_dvcs_error(tiny_project):
    root, _ = tiny_project
    (root / "prices.csv").write_text("not,a,price,file\n1,2,3,4\n")
    with pytest.raises(SeqbenchError, match="failed to reproduce 'ingest@prices'"):
        run_dvc(["repro"], root, on_line=lambda line: None)


def test_the_pipeline_flow_fails_with_the_stage_error_and_no_traceback(tiny_project):
    root, env = tiny_project
    (root / "prices.csv").write_text("when,price\n2020-01-01,1\n")
    process = subprocess.run([sys.executable, "flows/pipeline.py"], cwd=root, env=env, capture_output=True,
                             text=True, timeout=300)
    output = process.stdout + process.stderr
    assert process.returncode == 1
    assert "Traceback" not in output
    assert "error: `dvc repro` failed" in output and "missing column(s) date" in output


# ---- the deployment on a real server --------------------------------------------------------


def flow_runs(client, deployment_id):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    return client.read_flow_runs(flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id])))


def wait_for(predicate, timeout: float, what: str, poll: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def api(prefect_server):
    """This test process's Prefect client settings pointed at the real server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: prefect_server["PREFECT_API_URL"]}):
        yield prefect_server


def test_scheduled_runs_complete_one_at_a_time_and_publish_the_verdicts(tiny_project, api):
    from prefect import get_client
    from prefect.artifacts import Artifact
    from prefect.client.schemas.objects import StateType
    from prefect.deployments import run_deployment

    root, env = tiny_project
    env = {**env, **api, "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    name = f"test-{uuid.uuid4().hex[:8]}"
    log = open(root.parent / "serve.log", "w")
    serving = subprocess.Popen(
        [sys.executable, "flows/serve.py", "--name", name, "--interval", "30"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        with get_client(sync_client=True) as client:
            deployment = wait_for(lambda: _deployment(client, name), 90, "the deployment to register")
            assert deployment.global_concurrency_limit.limit == 1
            assert deployment.schedules and deployment.schedules[0].schedule.interval.total_seconds() == 30

            first = wait_for(lambda: _in_state(flow_runs(client, deployment.id), StateType.RUNNING), 120,
                             "a scheduled run to start")[0]
            assert first.auto_scheduled
            by_hand = run_deployment(f"seqbench-pipeline/{name}", timeout=0)
            deadline = time.monotonic() + 400
            seen_waiting = False
            # Watch: never two runs in the workspace at once; the hand-triggered run waits its turn.
            while True:
                runs = flow_runs(client, deployment.id)
                active = [r for r in runs if r.state_type in (StateType.RUNNING, StateType.PENDING)]
                assert len(active) <= 1, [(r.name, r.state_name) for r in active]
                mine = next(r for r in runs if r.id == by_hand.id)
                seen_waiting |= mine.state_name == "AwaitingConcurrencySlot"
                assert mine.state_type not in (StateType.FAILED, StateType.CRASHED), mine.state
                if mine.state_type == StateType.COMPLETED:
                    break
                assert time.monotonic() < deadline, "the hand-triggered run never completed"
                time.sleep(1)
            assert seen_waiting
            first = client.read_flow_run(first.id)
            assert first.state_type == StateType.COMPLETED, first.state
    finally:
        stop_process_group(serving)
        log.close()

    assert (root / "reports/index.html").exists()
    artifact = Artifact.get("seqbench-verdicts")
    assert artifact is not None and "| prices | rmse |" in artifact.data
    assert "Skipped as unchanged: validate@prices" in artifact.data  # the last run: all up to date
    assert (root / "reports/index.html").resolve().as_uri() in artifact.data
    # The second run found everything up to date and left a consistent workspace.
    status = run_command(["dvc", "status"], root, env)
    assert "Data and pipelines are up to date" in status or "changed deps" not in status
    serve_log = (root.parent / "serve.log").read_text()
    assert "skipped as unchanged: validate@prices" in serve_log


def _deployment(client, name):
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_deployment_by_name(f"seqbench-pipeline/{name}")
    except ObjectNotFound:
        return None


def _in_state(runs, state_type):
    return [r for r in runs if r.state_type == state_type]



def test_dvc_repro_alone_trains_with_its_own_temporary_server(tiny_project):
    """Without PREFECT_API_URL a training stage still runs: it starts a temporary server."""
    root, env = tiny_project
    output = run_command(["dvc", "repro", "train@prices"], root, env)
    assert output.count("Stopping temporary server") == 1
    assert (root / "models/prices/runs/gru/seed0/metrics.json").exists()


def test_deploy_registers_on_a_process_pool_and_a_worker_runs_it(tiny_project, api):
    from prefect import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.deployments import run_deployment

    root, env = tiny_project
    env = {**env, **api, "PREFECT_WORKER_QUERY_SECONDS": "2"}
    name = f"pool-{uuid.uuid4().hex[:8]}"
    run_command([sys.executable, "flows/deploy.py", "--name", name, "--pool", name, "--cron", "0 3 * * *",
                 "--timezone", "Europe/Berlin"], root, env)
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"seqbench-pipeline/{name}")
        assert deployment.work_pool_name == name
        assert deployment.schedules[0].schedule.cron == "0 3 * * *"
        assert deployment.schedules[0].schedule.timezone == "Europe/Berlin"
        run = run_deployment(f"seqbench-pipeline/{name}", timeout=0)
        run_command(["prefect", "worker", "start", "--pool", name, "--run-once"], root, env, timeout=400)
        assert client.read_flow_run(run.id).state_type == StateType.COMPLETED
    assert (root / "reports/index.html").exists()


def test_serve_without_a_reachable_server_says_to_start_one(tiny_project):
    root, env = tiny_project
    for url, message in ((None, "schedules need a Prefect server"), ("http://127.0.0.1:1/api", "cannot reach")):
        run_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
        if url:
            run_env["PREFECT_API_URL"] = url
        process = subprocess.run([sys.executable, "flows/serve.py"], cwd=root, env=run_env, capture_output=True,
                                 text=True, timeout=120)
        assert process.returncode == 1 and message in process.stderr and "Traceback" not in process.stderr
        assert "make server" in process.stderr


def test_a_bad_cron_is_rejected_with_its_source(tiny_project, api):
    root, env = tiny_project
    process = subprocess.run([sys.executable, "flows/serve.py", "--cron", "99 * * * *"], cwd=root,
                             env={**env, **api}, capture_output=True, text=True, timeout=120)
    assert process.returncode == 1 and "--cron/--timezone: Invalid cron string" in process.stderr
