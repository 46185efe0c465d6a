"""How much of a run's arithmetic may depend on the CPU it runs on: params.yaml's `train.numerics`.

native    torch, oneDNN and MKL dispatch by instruction set (AVX2, AVX-512, ...), and the fused
          GRU's kernel is compiled with -march=native. With threads fixed, a run is bit-identical
          on one machine for any number of workers; on another CPU its numbers differ (vector
          widths change the order of sums, FMA changes rounding), within seed noise.
portable  every library is held to baseline x86-64 code, before the run's first torch
          computation: PORTABLE_ENV below, and the GRU's kernel built without -march=native and
          without fused multiply-adds (models/fused_gru.py). Neither the CPU's vector units nor
          the outer environment then pick the kernels: tests/unit/test_numerics.py trains with
          ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA and MKL_CBWR asking for AVX2 outside and gets
          the same bytes as without (natively both cells' weights differ). What it does not fix:
          the library versions (constraints.txt pins them), a library that sizes its blocks by
          the CPU's caches (not measured across machines: one machine tested it), other
          architectures (there only ATen's setting applies) and a GPU, whose kernels are its own.
          It costs about twice native's training time (bench/numerics.py).

The three variables are read once per process, when torch first computes (ATen's dispatch, MKL's
first call, oneDNN's first kernel), not at `import torch`. So the mode belongs to the process: a
run (training.runs, orchestration.remote) or a search trial (training.trials) calls in_mode(),
which sets the process up when it has not computed yet (a worker's first task: the process and
Dask runners' workers, the pipeline's pool, which enters the mode before it warms up, and the
sequential runner's stage process), or checks that it already computes in that mode; where it
cannot (the process computed in the other mode before: a test session, a Dask worker shared with
another project), the run goes to a fresh Python process started with the variables set.
ATen's capability and MKL's branch are read back to check that they took; oneDNN's cannot be read
back, but it is fixed at the same moment (its first kernel comes after ATen's first dispatch).
"""

from __future__ import annotations

import json
import os

MODES = ("native", "portable")

# What `portable` sets. ATen: its kernels as compiled for no vector extension ("default"), not
# the AVX2 or AVX-512 copies. oneDNN (the LSTM's fused kernel): at most SSE4.1, the oldest ISA it
# still generates code for (the lowest value its documentation lists). MKL (the matmuls):
# conditional numerical reproducibility on its COMPATIBLE branch, SSE2 code for Intel and other
# CPUs alike, which MKL documents as reproducible wherever that branch runs at a fixed thread count.
PORTABLE_ENV = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_CBWR": "COMPATIBLE"}
# MKL's named constants (mkl_service.h): the branch query and the COMPATIBLE branch.
MKL_CBWR_BRANCH, MKL_CBWR_COMPATIBLE = 1, 3
# Set beside PORTABLE_ENV: the outer environment's own values of those variables (JSON), so that
# a process started from a portable one can still run natively.
OUTER = "SEQBENCH_NUMERICS_OUTER"

_mode: str | None = None  # this process's mode, once a run, a trial or the GRU's kernel fixed it


def current() -> str | None:
    return _mode


def settle() -> str:
    """This process's mode, fixing it as native when nothing chose one yet (the GRU's kernel is
    loading: a benchmark or a test computing outside any run)."""
    if _mode is None:
        enter("native")
    return _mode


def enter(mode: str) -> bool:
    """Make this process compute in `mode`. True when it does (set up now, or already); False
    when it cannot: it already computes in the other mode."""
    global _mode
    if mode not in MODES:
        from seqbench.errors import ConfigError

        raise ConfigError(f"train.numerics: must be one of {', '.join(MODES)}, not {mode!r}")
    if _mode is None:
        if mode == "portable":
            os.environ.setdefault(OUTER, json.dumps({key: os.environ.get(key) for key in PORTABLE_ENV}))
            os.environ.update(PORTABLE_ENV)
            if not portable_in_effect():  # torch computed here before: this process stays native
                restore_outer(os.environ)
                _mode = "native"
                return False
        else:
            restore_outer(os.environ)  # a process started from a portable one: as the user asked
        _mode = mode
    return _mode == mode


def restore_outer(env) -> None:
    """Put back, in `env`, the values PORTABLE_ENV's variables had before a portable process set them."""
    saved = env.pop(OUTER, None)
    if saved is None:
        return
    for key, value in json.loads(saved).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value


def portable_in_effect() -> bool:
    """Do ATen and MKL compute on the portable baseline in this process? Reading them fixes them,
    so this is asked only after PORTABLE_ENV is set."""
    import torch

    if torch.backends.cpu.get_cpu_capability() != "DEFAULT":
        return False
    branch = mkl_branch()
    return branch is None or branch == MKL_CBWR_COMPATIBLE


def mkl_branch() -> int | None:
    """MKL's code branch (mkl_cbwr_get), or None where torch's build exports no MKL to ask."""
    import ctypes
    from pathlib import Path

    import torch

    library = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        get = ctypes.CDLL(str(library)).mkl_serv_cbwr_get  # the same, already loaded library
    except (OSError, AttributeError):
        return None
    get.restype, get.argtypes = ctypes.c_int, [ctypes.c_int]
    return get(MKL_CBWR_BRANCH)


def in_mode(mode: str, function, *args):
    """function(*args) computed in numerics `mode`: in this process when it can be (see enter),
    else in a fresh Python process (its result or its exception comes back; its output goes
    where this process's does). `function` and `args` must pickle: a module-level function,
    plain values."""
    if enter(mode):
        return function(*args)
    import sys

    print(
        f"this process computes in {_mode} numerics: {function.__qualname__} runs in a fresh {mode} process",
        file=sys.stderr,
        flush=True,
    )
    return in_fresh_process(mode, function, *args)


def in_fresh_process(mode: str, function, *args):
    import pickle
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    env = dict(os.environ)
    restore_outer(env)
    if mode == "portable":
        env[OUTER] = json.dumps({key: env.get(key) for key in PORTABLE_ENV})
        env.update(PORTABLE_ENV)
    with tempfile.TemporaryDirectory(prefix="seqbench-numerics-") as tmp:
        folder = Path(tmp)
        (folder / "call.pkl").write_bytes(pickle.dumps((function, args)))
        code = "import sys; from seqbench.numerics import child_main; sys.exit(child_main())"
        done = subprocess.run([sys.executable, "-c", code, mode, tmp], env=env, stdin=subprocess.DEVNULL)
        result = folder / "result.pkl"
        if not result.exists():
            raise RuntimeError(
                f"the fresh process for {function.__qualname__} in {mode} numerics ended with exit code "
                f"{done.returncode} and no result"
            )
        ok, value = pickle.loads(result.read_bytes())
    if ok:
        return value
    raise value


def child_main() -> int:
    """In the fresh process: enter the mode first (before anything is unpickled), run the call,
    write (True, result) or (False, exception)."""
    import pickle
    import sys
    from pathlib import Path

    mode, folder = sys.argv[1], Path(sys.argv[2])
    if not enter(mode):
        raise RuntimeError(f"a fresh process could not enter {mode} numerics")
    function, args = pickle.loads((folder / "call.pkl").read_bytes())
    try:
        outcome = (True, function(*args))
    except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
        outcome = (False, exc)
    try:
        data = pickle.dumps(outcome)
        pickle.loads(data)  # what the parent will do
    except Exception:  # noqa: BLE001 - an exception that does not pickle back: its type and message
        value = outcome[1]
        data = pickle.dumps((False, RuntimeError(f"{type(value).__name__}: {value}")))
    (folder / "result.pkl").write_bytes(data)
    return 0
