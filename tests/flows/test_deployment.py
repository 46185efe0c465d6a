"""The scheduled pipeline against a real `prefect server`: schedule, runs, artifact, one at a time."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest

from processes import run_command, stop_process_group
from seqbench.errors import SeqbenchError
from seqbench.orchestration.dvc import StageFailed, captured_output, plan_stages, reproduce_stage, verdict_table

PLAN = [
    "ingest@prices",
    "validate@prices",
    "prepare@prices",
    "search@prices",
    "train@prices",
    "evaluate@prices",
    "report",
]


def test_stages_are_planned_in_dvcs_order_and_a_subset_ends_with_the_report(tiny_project, tmp_path, monkeypatch):
    import yaml

    root, _ = tiny_project
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["datasets"]["other"] = params["datasets"]["prices"]
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)  # DVC addresses stages from the working folder: the plan must not depend on it
    everything = plan_stages(root, ["prices", "other"], ["prices", "other"])
    assert sorted(everything) == sorted(
        PLAN[:-1] + [name.replace("prices", "other") for name in PLAN[:-1]] + ["report"]
    )
    assert everything[-1] == "report" and everything.index("ingest@other") < everything.index("train@other")
    # A subset: the chosen datasets' stages up to their evaluation, then the report alone.
    assert plan_stages(root, ["prices"], ["prices", "other"]) == PLAN
    (root / "dvc.yaml").write_text("stages: [not, a, mapping]\n")
    with pytest.raises(SeqbenchError, match="cannot plan the pipeline in"):
        plan_stages(root, ["prices"], ["prices"])


def test_verdict_table_without_evaluations_says_so_and_lists_the_stages(tmp_path):
    stages = [
        {"stage": "ingest@prices", "outcome": "ran", "seconds": 1.25},
        {"stage": "validate@prices", "outcome": "failed", "seconds": 0.5},
        {"stage": "report", "outcome": "not run", "seconds": None},
    ]
    table = verdict_table(tmp_path, ["prices"], stages)
    assert "| prices | — | not evaluated |" in table and "no report rendered yet" in table
    assert "| ingest@prices | ran | 1.2 s |" in table and "| report | not run | — |" in table


def test_a_stages_output_is_captured_line_by_line_and_redacted():
    import os

    lines = []
    with captured_output(lines.append):
        subprocess.run(["sh", "-c", "echo fetching https://ann:hunter2@example.com/x.csv; echo oops >&2"], check=True)
        os.write(1, b"from this process\n")  # e.g. DVC's own messages
    assert lines == ["fetching https://ann:***@example.com/x.csv", "oops", "from this process"]


def test_a_held_dvc_lock_makes_a_stage_wait_not_fail(tiny_project):
    root, env = tiny_project
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from dvc.repo import Repo; r = Repo('.'); r.lock.lock(); "
            "print('locked', flush=True); time.sleep(6); r.lock.unlock()",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        lines = []
        assert reproduce_stage(root, "ingest@prices", lines.append)  # waits for the lock, then runs
        assert time.monotonic() - started > 3  # DVC alone gives up after ~3 s
        assert "Running stage 'ingest@prices':" in lines and "> seqbench ingest prices" in lines
        assert reproduce_stage(root, "validate@prices", lines.append)  # never ran before: runs
        assert not reproduce_stage(root, "validate@prices", lines.append)  # now unchanged: skipped
        assert "Stage 'validate@prices' didn't change, skipping" in lines
    finally:
        holder.kill()
        holder.wait()


def test_a_failing_stage_fails_with_its_own_error(tiny_project):
    root, _ = tiny_project
    (root / "prices.csv").write_text("when,price\n2020-01-01,1\n")
    with pytest.raises(StageFailed, match=r"stage 'ingest@prices' failed: .*missing column\(s\) date"):
        reproduce_stage(root, "ingest@prices", on_line=lambda line: None)


def test_a_failed_stage_fails_its_task_and_the_run_reports_the_rest_as_not_run(tiny_project, api):
    import re

    from prefect import get_client
    from prefect.artifacts import Artifact
    from prefect.client.schemas.filters import LogFilter, LogFilterTaskRunId
    from prefect.client.schemas.objects import StateType

    root, env = tiny_project
    (root / "prices.csv").write_text("when,price\n2020-01-01,1\n")
    process = subprocess.run(
        [sys.executable, "flows/pipeline.py"], cwd=root, env={**env, **api}, capture_output=True, text=True, timeout=300
    )
    output = process.stdout + process.stderr
    assert process.returncode == 1
    assert "Traceback" not in output
    assert "error: stage 'ingest@prices' failed:" in output and "missing column(s) date" in output
    assert "not run: validate@prices, prepare@prices" in output
    flow_run_id = re.search(r"flow-run/([0-9a-f-]{36})", output).group(1)
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(flow_run_id).state_type == StateType.FAILED
        stages = [run for run in task_runs(client, flow_run_id) if run.name in PLAN]
        assert [run.name for run in stages] == ["ingest@prices"]  # nothing after the failed stage was started
        assert stages[0].state_type == StateType.FAILED and "missing column(s) date" in stages[0].state.message
        # The stage's output (DVC's lines and the command's) is in its task run's log.
        logs = [
            log.message
            for log in client.read_logs(log_filter=LogFilter(task_run_id=LogFilterTaskRunId(any_=[stages[0].id])))
        ]
        assert "Running stage 'ingest@prices':" in logs and "error: prices.csv: missing column(s) date" in "\n".join(
            logs
        )
    artifact = Artifact.get("seqbench-verdicts")
    assert "| ingest@prices | failed |" in artifact.data and "| report | not run | — |" in artifact.data


def task_runs(client, flow_run_id) -> list:
    """The flow run's task runs, in the order they started."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    return client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), sort=TaskRunSort.EXPECTED_START_TIME_ASC
    )


# ---- the deployment on a real server --------------------------------------------------------


def flow_runs(client, deployment_id):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    return client.read_flow_runs(
        flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]))
    )


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
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        with get_client(sync_client=True) as client:
            deployment = wait_for(lambda: _deployment(client, name), 90, "the deployment to register")
            assert deployment.global_concurrency_limit.limit == 1
            assert deployment.schedules and deployment.schedules[0].schedule.interval.total_seconds() == 30

            first = wait_for(
                lambda: _in_state(flow_runs(client, deployment.id), StateType.RUNNING), 120, "a scheduled run to start"
            )[0]
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
            # Each stage a task run named by it, in DVC's order: the first run ran them all; the
            # second found them all up to date (its source unchanged) and shows them as Skipped.
            ran = {run.name: run for run in task_runs(client, first.id)}
            assert [name for name in ran if name in PLAN] == PLAN
            assert all(ran[name].state_name == "Completed" for name in PLAN)
            assert ran["train@prices"].total_run_time.total_seconds() > 0
            again = {run.name: run for run in task_runs(client, by_hand.id)}
            assert {again[name].state_name for name in PLAN} == {"Skipped"}
            assert {again[name].state_type for name in PLAN} == {StateType.COMPLETED}
    finally:
        stop_process_group(serving)
        log.close()

    assert (root / "reports/index.html").exists()
    artifact = Artifact.get("seqbench-verdicts")
    assert artifact is not None and "| prices | rmse |" in artifact.data
    assert "| validate@prices | skipped |" in artifact.data and "| ingest@prices | skipped |" in artifact.data
    assert f"`{(root / 'reports/index.html').resolve()}`" in artifact.data  # a path, not a file:// link
    # The second run found everything up to date and left a consistent workspace.
    status = run_command(["dvc", "status"], root, env)
    assert "Data and pipelines are up to date" in status, status  # no stage is always changed
    serve_log = (root.parent / "serve.log").read_text()
    assert "skipped: ingest@prices, validate@prices, prepare@prices" in serve_log  # ingest too: source unchanged


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
    run_command(
        [
            sys.executable,
            "flows/deploy.py",
            "--name",
            name,
            "--pool",
            name,
            "--cron",
            "0 3 * * *",
            "--timezone",
            "Europe/Berlin",
        ],
        root,
        env,
    )
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
        process = subprocess.run(
            [sys.executable, "flows/serve.py"], cwd=root, env=run_env, capture_output=True, text=True, timeout=120
        )
        assert process.returncode == 1 and message in process.stderr and "Traceback" not in process.stderr
        assert "make server" in process.stderr


def test_a_bad_cron_is_rejected_with_its_source(tiny_project, api):
    root, env = tiny_project
    process = subprocess.run(
        [sys.executable, "flows/serve.py", "--cron", "99 * * * *"],
        cwd=root,
        env={**env, **api},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 1 and "--cron/--timezone: Invalid cron string" in process.stderr


def test_a_flow_run_with_a_params_path_outside_the_project_is_refused(tmp_path, prefect_server):
    """Whoever reaches the Prefect API could start the deployment with params_path set to a folder
    holding a planted dvc.yaml: the flow runs only the project it belongs to."""
    import os
    from pathlib import Path

    foreign = tmp_path / "elsewhere"
    foreign.mkdir()
    (foreign / "params.yaml").write_text("datasets: {prices: {kind: stock, source: p.csv}}\n")
    (foreign / "dvc.yaml").write_text("stages:\n  planted:\n    cmd: touch PWNED\n")
    flows = Path(__file__).resolve().parents[2] / "flows" / "pipeline.py"
    code = "import runpy, sys; runpy.run_path(sys.argv[1])['pipeline'](params_path=sys.argv[2])"
    env = {**os.environ, **prefect_server}
    process = subprocess.run([sys.executable, "-c", code, str(flows), str(foreign / "params.yaml")], env=env,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert process.returncode != 0
    assert "is outside this project" in process.stderr, process.stderr[-3000:]
    assert sorted(p.name for p in foreign.iterdir()) == ["dvc.yaml", "params.yaml"]  # nothing ran there
