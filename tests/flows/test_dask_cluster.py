"""Training on a real Dask cluster whose workers share no disk with the project: a `dask
scheduler` and two `dask worker` processes, run as `nobody` (who cannot read the project
folder), each in its own temporary folder."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from processes import free_port, stop_process_group

REPO = Path(__file__).resolve().parents[2]
# What differs between two runs of the same computation: wall-clock times.
TIMINGS = {"train_seconds", "seconds_to_best", "train_samples_per_second", "last_fit_seconds"}

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root and runuser to start workers as another user"
)


def private_folder(prefix: str) -> Path:
    """A temporary folder only `nobody` (and root) can use: a worker's HOME, TMPDIR, local dir."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    shutil.chown(folder, "nobody", "nogroup")
    return folder


def package_copy() -> Path:
    """This checkout's package, readable by anyone: the workers import it from here, so they
    run the code under test (not necessarily world-readable where it lies)."""
    folder = Path(tempfile.mkdtemp(prefix="seqbench-src-"))
    shutil.copytree(REPO / "src/seqbench", folder / "seqbench", ignore=shutil.ignore_patterns("__pycache__"))
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def nobody_env(folder: Path, src: Path) -> list[str]:
    """`env -i` arguments: the worker's own folders, this checkout's package copy, then the test
    environment's installed packages (read in place: the venv is world-readable)."""
    import sysconfig

    env = {
        "HOME": folder,
        "TMPDIR": folder,
        "DASK_TEMPORARY_DIRECTORY": folder,
        "PREFECT_HOME": folder / "prefect",
        "PYTHONPATH": f"{src}:{sysconfig.get_paths()['purelib']}",
        "PATH": os.environ["PATH"],
        # A task whose worker dies is not started again by the scheduler (default: up to 3
        # times): the client's own retry (train.retries) is what the worker-loss test sees.
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
    }
    return ["env", "-i", *(f"{key}={value}" for key, value in env.items())]


def nobody_python(src: Path) -> str:
    """An interpreter `nobody` can run with the test environment's packages: the venv's own, or,
    where that lives in a folder nobody cannot enter (a pyenv build under /root), the system's
    build of the same Python version (the packages' compiled parts fit any build of it)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for python in (sys.executable, f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        check = subprocess.run(
            [
                "runuser",
                "-u",
                "nobody",
                "--",
                *nobody_env(Path("/tmp"), src),
                python,
                "-s",
                "-c",
                "import distributed, torch, seqbench",
            ],
            capture_output=True,
            cwd="/tmp",
        )
        if check.returncode == 0:
            return python
    pytest.skip(f"no Python {version} that the user nobody can run with this environment's packages")


def as_nobody(python: str, module: str, args: list, folder: Path, src: Path, log: Path) -> subprocess.Popen:
    command = ["runuser", "-u", "nobody", "--", *nobody_env(folder, src), python, "-s", "-m", module, *map(str, args)]
    return subprocess.Popen(command, cwd=folder, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def certificates(folder: Path) -> dict:
    """A throw-away CA and one certificate it signed for 127.0.0.1, which the scheduler, the
    workers and the client all present (as in Dask's own TLS tests): {ca_file, cert, key}."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def certificate(subject, key, issuer, issuer_key, ca: bool):
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
            )
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "seqbench test CA")])
    ca = certificate(ca_name, ca_key, ca_name, ca_key, ca=True)
    cert = certificate(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), key, ca_name, ca_key, ca=False
    )
    files = {"ca_file": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    files["ca_file"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    folder.chmod(0o755)
    for path in files.values():
        path.chmod(0o644)  # the workers (nobody) read them
    return {name: str(path) for name, path in files.items()}


@contextlib.contextmanager
def dask_cluster(tls: bool = False):
    """(scheduler address, worker folders, ...): a scheduler and two one-thread workers as
    nobody; with `tls`, on a tls:// address that takes only clients with the test CA's certificate."""
    src = package_copy()
    python = nobody_python(src)
    folders = {name: private_folder(f"dask-{name}-") for name in ("scheduler", "worker-a", "worker-b")}
    logs = Path(tempfile.mkdtemp(prefix="dask-logs-"))
    certs = Path(tempfile.mkdtemp(prefix="dask-certs-"))
    security, tls_args = None, []
    if tls:
        security = certificates(certs)
        tls_args = ["--tls-ca-file", security["ca_file"], "--tls-cert", security["cert"], "--tls-key", security["key"]]
    port = free_port()
    address = f"{'tls' if tls else 'tcp'}://127.0.0.1:{port}"
    processes = [
        as_nobody(
            python,
            "distributed.cli.dask_scheduler",
            [
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--no-dashboard",
                *(["--protocol", "tls"] if tls else []),
                *tls_args,
            ],
            folders["scheduler"],
            src,
            logs / "scheduler.log",
        )
    ]
    for name in ("worker-a", "worker-b"):
        processes.append(
            as_nobody(
                python,
                "distributed.cli.dask_worker",
                [
                    address,
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--name",
                    name,
                    "--local-directory",
                    folders[name],
                    *tls_args,
                ],
                folders[name],
                src,
                logs / f"{name}.log",
            )
        )
    try:
        wait_for_workers(address, 2, processes, logs, security)
        yield SimpleNamespace(
            address=address,
            folders=[folders["worker-a"], folders["worker-b"]],
            logs=logs,
            workers=dict(zip(("worker-a", "worker-b"), processes[1:])),
            tls=security,
        )
    finally:
        for process in reversed(processes):
            stop_process_group(process)
        for folder in [src, logs, certs, *folders.values()]:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def cluster():
    with dask_cluster() as started:
        yield started


def wait_for_workers(
    address: str, count: int, processes: list, logs: Path, tls: dict | None = None, timeout: float = 60
) -> None:
    import distributed
    from distributed.security import Security

    security = (
        Security(
            tls_ca_file=tls["ca_file"], tls_client_cert=tls["cert"], tls_client_key=tls["key"], require_encryption=True
        )
        if tls
        else None
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            with distributed.Client(address, timeout=5, set_as_default=False, security=security) as client:
                client.wait_for_workers(count, timeout=max(1, deadline - time.monotonic()))
                return
        except (OSError, TimeoutError):
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(
                    "the Dask cluster did not start:\n"
                    + "\n".join(f"{log.name}: {log.read_text()[-1500:]}" for log in logs.glob("*.log"))
                ) from None
            time.sleep(0.5)


def run_flow(root: Path, prefect_server: dict, **train) -> subprocess.CompletedProcess:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"].update(train)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run(
        [sys.executable, str(REPO / "flows/train.py"), "toy", "--params", str(root / "params.yaml")],
        cwd=root,
        env={**os.environ, **prefect_server},
        capture_output=True,
        text=True,
        timeout=300,
    )


def outcome(root: Path) -> dict:
    """Every run's metrics (timings left out) and weights."""
    runs = {}
    for folder in sorted((root / "models/toy/runs").glob("*/seed*")):
        metrics = json.loads((folder / "metrics.json").read_text())
        curves = [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in metrics.pop("curves")]
        runs[f"{folder.parent.name}/{folder.name}"] = (
            {k: v for k, v in metrics.items() if k not in TIMINGS},
            curves,
            torch.load(folder / "model.pt", weights_only=True),
        )
    return runs


def test_workers_without_the_project_disk_train_what_the_process_runner_trains(
    prepared_stock, prefect_server, cluster, tmp_path
):
    address, worker_folders, logs = cluster.address, cluster.folders, cluster.logs
    root = prepared_stock.root
    twin = tmp_path.parent / f"{tmp_path.name}-twin"
    shutil.copytree(root, twin)
    for folder in (root, twin):
        shutil.chown(folder, "root", "root")
        folder.chmod(0o700)
    assert subprocess.run(["runuser", "-u", "nobody", "--", "ls", str(root)], capture_output=True).returncode != 0

    started = time.monotonic()
    shipped = run_flow(root, prefect_server, runner="dask", dask_address=address)
    assert shipped.returncode == 0, shipped.stderr[-4000:]
    print(f"dask flow: {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    local = run_flow(twin, prefect_server, runner="process")
    assert local.returncode == 0, local.stderr[-4000:]
    print(f"process flow: {time.monotonic() - started:.1f} s")

    remote_runs, local_runs = outcome(root), outcome(twin)
    assert sorted(remote_runs) == ["gru/seed0", "gru/seed1", "lstm/seed0", "lstm/seed1"]
    for run, (metrics, curves, weights) in local_runs.items():
        assert remote_runs[run][0] == metrics, run
        assert remote_runs[run][1] == curves, run
        assert all(torch.equal(remote_runs[run][2][k], weights[k]) for k in weights), run
    for run in remote_runs:  # what the train flow, the report and a resume read came back too
        folder = root / "models/toy/runs" / run
        for name in ("config.json", "checkpoints/last.ckpt", "checkpoints/best.ckpt", "untrained.pt"):
            assert (folder / name).is_file(), f"{run}/{name}"
        assert list((folder / "dvclive").rglob("*.tsv")), run
    summary = json.loads((root / "reports/train/toy.json").read_text())
    assert all(cell["runs"] == 2 for cell in summary["cells"].values())

    # Both workers trained (their epoch lines are in their own logs), and kept nothing of the project.
    for worker in ("worker-a", "worker-b"):
        assert "epoch 3/3" in (logs / f"{worker}.log").read_text(), worker
    left = [
        path
        for folder in worker_folders
        for path in folder.rglob("*")
        if path.suffix in {".npz", ".pt", ".ckpt", ".tsv"}
        or path.name in {"metrics.json", "config.json"}
        or path.name.startswith("seqbench-run-")
    ]
    assert left == []


def test_an_unreachable_scheduler_is_one_clear_error(prepared_stock, prefect_server):
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    result = run_flow(prepared_stock.root, prefect_server, runner="dask", dask_address=address, dask_timeout_s=3)
    assert result.returncode == 1
    assert f"cannot reach the Dask scheduler at {address}" in result.stderr and "within 3 s" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 60
    assert not (prepared_stock.root / "models/toy/runs").exists()


@pytest.mark.parametrize("retries", [1, 0])
def test_a_run_lost_with_its_worker_is_retried_then_reported_by_name(prepared_stock, prefect_server, cluster, retries):
    """Worker a is killed in its first run: the scheduler gives up the runs it held, the one it
    was training and any waiting there for it (KilledWorker); with a retry left the client
    submits them again and they train on worker b; without, the flow fails naming them, after
    the other runs' results are saved."""
    import signal
    import threading

    def kill_worker_a_in_its_first_run():
        log = cluster.logs / "worker-a.log"
        while not (found := re.search(r"toy (\w+) seed(\d) epoch 1/", log.read_text())):
            time.sleep(0.05)
        killed.append(f"{found[1]} seed{found[2]}")
        os.killpg(cluster.workers["worker-a"].pid, signal.SIGKILL)

    killed = []
    killer = threading.Thread(target=kill_worker_a_in_its_first_run, daemon=True)
    killer.start()
    result = run_flow(
        prepared_stock.root,
        prefect_server,
        runner="dask",
        dask_address=cluster.address,
        max_epochs=6,
        patience=6,
        retries=retries,
    )
    assert not killer.is_alive() and len(killed) == 1
    summary = json.loads((prepared_stock.root / "reports/train/toy.json").read_text())
    if retries:
        assert result.returncode == 0, result.stderr[-4000:]
        assert f"toy {killed[0]}: lost with its workers (KilledWorker); submitting it again" in result.stderr
        assert summary["failed_runs"] == {} and all(cell["runs"] == 2 for cell in summary["cells"].values())
    else:
        assert result.returncode == 1
        failed = summary["failed_runs"]
        assert killed[0] in failed and all(error.startswith("KilledWorker") for error in failed.values())
        assert f"{len(failed)} of 4 training runs of 'toy' failed: " in result.stderr
        assert f"{killed[0]}: KilledWorker" in result.stderr and "Traceback" not in result.stderr
        assert sum(cell["runs"] for cell in summary["cells"].values()) == 4 - len(failed)


def test_a_tls_scheduler_takes_the_certificates_from_params(prepared_stock, prefect_server):
    """A tls:// scheduler that requires encryption: the runs train through it with
    train.dask_tls's certificates, and the address without them is refused by name."""
    with dask_cluster(tls=True) as tls_cluster:
        assert re.search(rf"Scheduler at:\s+{tls_cluster.address}", (tls_cluster.logs / "scheduler.log").read_text())
        root = prepared_stock.root
        refused = run_flow(
            root,
            prefect_server,
            runner="dask",
            dask_address=tls_cluster.address.replace("tls", "tcp"),
            dask_timeout_s=3,
        )
        assert refused.returncode == 1 and "cannot reach the Dask scheduler" in refused.stderr
        assert "Traceback" not in refused.stderr
        result = run_flow(
            root, prefect_server, runner="dask", dask_address=tls_cluster.address, dask_tls=tls_cluster.tls
        )
        assert result.returncode == 0, result.stderr[-4000:]
        summary = json.loads((root / "reports/train/toy.json").read_text())
        assert all(cell["runs"] == 2 for cell in summary["cells"].values())
        trained_on = [
            worker
            for worker in ("worker-a", "worker-b")
            if "epoch 3/3" in (tls_cluster.logs / f"{worker}.log").read_text()
        ]
        assert trained_on, "no worker trained"
