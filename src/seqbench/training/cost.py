"""What a trained model costs: the cell's own work, the kernel torch ran it with, inference
latency and peak training memory.

Latency and memory are measured here, in the evaluate stage, on one machine for both cells, so
the two are comparable; the training-side costs (epochs, time to best, throughput) come from
each run's metrics.json.

A measured time is the library's as much as the cell's: on a CPU torch runs unpacked nn.LSTM
input through oneDNN's fused kernel and packed LSTM input through its own loop over the time
steps; the GRU runs seqbench's fused C++ kernel (models/fused_gru.py), or torch's loop where that
could not be built. So next to the times stand the kernel that actually ran (read from the ops a
forward pass dispatched) and the multiply-adds the cell's equations need (from its shapes), which
no kernel changes.
"""

from __future__ import annotations

import statistics
import timeit

LATENCY_BATCHES = (1, 256)
REPEATS = 15

ONEDNN, CUDNN, MIOPEN, STEP_LOOP = "oneDNN fused LSTM", "cuDNN", "MIOpen", "torch step-by-step loop"
SEQBENCH_GRU = "seqbench fused GRU (C++)"
# The op each fused RNN kernel dispatches; a forward pass with none of them went through torch's
# own loop (one matrix multiply and the gates' arithmetic per step and layer).
FUSED_OPS = {"mkldnn_rnn_layer": ONEDNN, "_cudnn_rnn": CUDNN, "miopen_rnn": MIOPEN, "gru_forward": SEQBENCH_GRU}
PACK_OP = "_pack_padded_sequence"


# ---- the cell's own work --------------------------------------------------------------------


def multiply_adds_per_step(model) -> int:
    """The recurrent layers' multiply-adds for one time step of one sequence, forward pass, from
    the shapes of the model's nn.LSTM / nn.GRU modules.

    Per layer and direction, each gate multiplies the input by W_i<gate> [H, I] and the hidden
    state by W_h<gate> [H, H]: gates * H * (I + H), with 4 gates for the LSTM and 3 for the GRU,
    and I the layer's input width (the model's input for layer 0, H or 2H above it). Biases,
    the gates' nonlinearities and the elementwise products are not counted: they grow as H, not
    as H * (I + H). Training adds the backward pass, about twice this again.
    """
    from torch import nn

    total = 0
    for rnn in model.modules():
        if isinstance(rnn, nn.LSTM):
            gates = 4
        elif isinstance(rnn, nn.GRU):
            gates = 3
        else:
            continue
        directions = 2 if rnn.bidirectional else 1
        hidden = rnn.hidden_size
        for layer in range(rnn.num_layers):
            width = rnn.input_size if layer == 0 else hidden * directions
            total += directions * gates * hidden * (width + hidden)
    return total


def sequence_length(arrays: dict, meta: dict) -> tuple[float | None, str | None]:
    """(steps per sequence, where the number comes from): the lookback of fixed windows, or the
    mean length of variable-length sequences over all prepared splits."""
    import numpy as np

    if "offsets" in arrays:
        lengths = np.diff(arrays["offsets"])
        if len(lengths):
            return round(float(lengths.mean()), 2), "mean length of the prepared sequences"
    if meta.get("lookback"):
        return float(meta["lookback"]), "lookback"
    return None, None


def cell_multiply_adds(model, arrays: dict, meta: dict) -> dict:
    """The cell's own forward cost: multiply-adds per step and per (average) sequence."""
    per_step = multiply_adds_per_step(model)
    steps, source = sequence_length(arrays, meta)
    return {
        "per_step": per_step,
        "per_sequence": None if steps is None else round(per_step * steps),
        "sequence_length": steps,
        "sequence_length_from": source,
        "counts": "recurrent weight multiply-adds (gates x H x (I + H) per layer and direction), forward pass",
    }


# ---- the kernel torch picked ----------------------------------------------------------------


def dispatched_ops(run) -> set[str]:
    """The names of the aten ops that `run()` dispatched (e.g. "mkldnn_rnn_layer")."""
    from torch.utils._python_dispatch import TorchDispatchMode

    seen: set[str] = set()

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.add(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    with Recorder():
        run()
    return seen


def observed_kernel(run) -> dict:
    """Which RNN kernel a forward pass `run()` went through, and whether its input was packed.

    Read from what torch did, not from the cell's name: the choice depends on the device, on
    packing (the classifier packs when bidirectional or on a GPU), on the dtype, and on
    torch.backends.mkldnn being available and enabled, and changes between torch versions
    (torch 2.13 sends packed LSTM input whose sequences all have one length to oneDNN too).
    Call it without inference_mode (no_grad is fine): under inference_mode the recorder sees
    aten::lstm whole, not the kernel inside it.
    """
    ops = dispatched_ops(run)
    name = next((kernel for op, kernel in FUSED_OPS.items() if op in ops), STEP_LOOP)
    return {"name": name, "packed": PACK_OP in ops}


def training_kernel(model, dataset, batch_size: int, device: str) -> dict:
    """The kernel a training step ran on the run's device: observed with one forward pass in
    training mode, with gradients, on a batch of the run's size. A device this machine lacks
    (trained on a GPU, evaluated without one) is not observed: on CUDA torch uses cuDNN for
    both cells, packed or not, while torch.backends.cudnn is enabled (its default)."""
    import torch

    target = torch.device(device)
    if not (target.type == "cpu" or (target.type == "cuda" and torch.cuda.is_available())):
        return {"name": CUDNN if target.type == "cuda" else None, "packed": None, "device": device, "observed": False}
    batch = [part.to(target) for part in first_batch(model, dataset, batch_size)]
    was_training = model.training
    model.to(target).train()
    try:
        with torch.enable_grad():
            kernel = observed_kernel(lambda: model.loss(batch))
    finally:
        model.to("cpu").train(was_training)
    return {**kernel, "device": device, "observed": True}


def first_batch(model, dataset, size: int):
    """The first `size` items of `dataset` as one batch of `model`'s (fewer when the dataset is
    smaller)."""
    from torch.utils.data import DataLoader

    return next(iter(DataLoader(dataset, batch_size=min(size, len(dataset)), collate_fn=model.collate_fn)))


def forward(model, batch):
    return model(*model.inputs(batch))


def inference_latency(model, dataset) -> dict:
    """Median seconds per sample of a forward pass, at batch 1 and batch 256, after a warm-up;
    with the kernel each batch ran (one batch of ragged sequences can take another path than
    a single sequence)."""
    import torch

    latency = {}
    for size in LATENCY_BATCHES:
        batch = first_batch(model, dataset, size)
        n = len(batch[-1])
        with torch.no_grad():  # not inference_mode: see observed_kernel
            kernel = observed_kernel(lambda batch=batch: forward(model, batch))
        with torch.inference_mode():
            forward(model, batch)  # warm-up: first calls allocate and pick kernels
            times = timeit.repeat(lambda batch=batch: forward(model, batch), repeat=REPEATS, number=1)
        latency[f"batch_{size}"] = {
            "seconds_per_sample": statistics.median(times) / n,
            "batch": n,
            "kernel": kernel["name"],
            "packed": kernel["packed"],
        }
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

    from seqbench.models import datasets_for
    from seqbench.training.predict import load_run
    from seqbench.training.prepared import load_prepared

    model, _ = load_run(run_dir)
    prepared = load_prepared(prepared_dir)
    arrays, meta = prepared.arrays, prepared.meta
    batch = first_batch(model, datasets_for(arrays, meta)["train"], batch_size)
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
