"""What a trained model costs to run: inference latency and peak training memory.

Both are measured here, in the evaluate stage, on one machine for both cells, so the two are
comparable; the training-side costs (epochs, time to best, throughput) come from each run's
metrics.json.
"""

from __future__ import annotations

import statistics
import timeit

LATENCY_BATCHES = (1, 256)
REPEATS = 15


def first_batch(dataset, task: str, size: int):
    """The first `size` test items as one model input (fewer when the test set is smaller)."""
    from torch.utils.data import DataLoader

    from seqbench.data import collate_ragged

    collate = None if task == "forecast" else collate_ragged
    return next(iter(DataLoader(dataset, batch_size=min(size, len(dataset)), collate_fn=collate)))


def forward(model, batch, task: str):
    return model(batch[0]) if task == "forecast" else model(batch[0], batch[1])


def inference_latency(model, dataset, task: str) -> dict:
    """Median seconds per sample of a forward pass, at batch 1 and batch 256, after a warm-up."""
    import torch

    latency = {}
    with torch.inference_mode():
        for size in LATENCY_BATCHES:
            batch = first_batch(dataset, task, size)
            n = len(batch[-1])
            forward(model, batch, task)  # warm-up: first calls allocate and pick kernels
            times = timeit.repeat(lambda batch=batch: forward(model, batch, task), repeat=REPEATS, number=1)
            latency[f"batch_{size}"] = {"seconds_per_sample": statistics.median(times) / n, "batch": n}
    return latency


def peak_training_memory(run_dir: str, prepared_dir: str, batch_size: int) -> dict:
    """Peak memory that one training step (forward, backward, Adam update) adds at the run's
    batch size, above the loaded model and batch.

    On a GPU: torch's peak allocation. On a CPU, in a fresh process: freed memory is returned
    to the system, the kernel's high-water mark of resident memory is reset, and the step's
    peak is that mark minus the resident memory before the step (Linux).
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_measure_step, (run_dir, prepared_dir, batch_size))


def _measure_step(run_dir: str, prepared_dir: str, batch_size: int) -> dict:
    import gc

    import torch

    from seqbench.data import datasets_for
    from seqbench.predict import load_run
    from seqbench.prepare import load_prepared

    model, _ = load_run(run_dir)
    arrays, meta = load_prepared(prepared_dir)
    batch = first_batch(datasets_for(arrays, meta)["train"], meta["task"], batch_size)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).train()
    batch = [part.to(device).clone() for part in batch]
    optimizer = torch.optim.Adam(model.parameters())
    del arrays
    gc.collect()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    else:
        try:
            rss_before = _reset_peak_rss()
        except OSError:  # not Linux: no resettable peak to read
            return {"peak_bytes": None, "measure": "not measurable on this system"}
    loss, _ = model.loss(batch)
    loss.backward()
    optimizer.step()
    if device.type == "cuda":
        return {"peak_bytes": int(torch.cuda.max_memory_allocated()), "measure": "GPU peak allocation"}
    return {"peak_bytes": max(0, _status_kib("VmHWM") - rss_before) * 1024, "measure": "CPU peak resident growth"}


def _reset_peak_rss() -> int:
    """Give freed heap back to the system, reset the peak-RSS mark; return the RSS now (KiB)."""
    import ctypes

    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # 5: reset the peak resident set size (proc(5))
    return _status_kib("VmRSS")


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")
