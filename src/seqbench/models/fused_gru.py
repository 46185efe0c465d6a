"""A GRU that runs as fast as its equations on a CPU: torch's nn.GRU, with its CPU forward and
backward passes done by a small C++ kernel (fused_gru.cpp) instead of torch's step-by-step loop.

Why: on a CPU, nn.LSTM runs oneDNN's fused kernel but nn.GRU runs its cell through autograd one
time step at a time, some two dozen kernel launches per step. At the sizes this tool trains
(hidden 30-128, batches of 4-64) the launches, not the arithmetic, are the cost: 3-10x an
LSTM's epoch time for 3/4 of its multiply-adds, so "at what cost" would measure torch's kernels.

FusedGRU is an nn.GRU: same parameters, names and initialisation, so state dicts load either way
and everything that inspects an nn.GRU still works. It takes the fused path on the CPU for
float32/float64 input with biases (what the models use: layers with dropout between them,
bidirectional, packed variable-length input); anything else, a GPU above all (cuDNN), goes to
nn.GRU's own forward.

The kernel is compiled with torch.utils.cpp_extension on first use and cached (`make install`
builds it once, into torch's extensions folder, TORCH_EXTENSIONS_DIR). Where it cannot be built,
FusedGRU warns once and runs nn.GRU; the cost table names the kernel that actually ran.

Two builds, one per `train.numerics` mode (numerics.py), and a process loads only its
own mode's (both register the same torch ops): native compiles for this CPU (-march=native: wider
vectors, and the compiler fuses a*b+c into one FMA where the CPU has one, which rounds once
instead of twice); portable compiles for the x86-64 baseline with contraction off, so every
operation rounds as the source says on any CPU. The kernel's matmuls and sums are torch's, held
to the baseline by the mode's environment. Portable keeps the fused kernel rather than nn.GRU's
step-by-step loop: bench/numerics.py measured what each costs.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

SOURCE = Path(__file__).with_name("fused_gru.cpp")
EXTENSION = "seqbench_fused_gru"
# The compiler flags of each numerics mode's build (see the module's docstring).
FLAGS = {"native": ["-O3", "-march=native"], "portable": ["-O3", "-ffp-contract=off"]}


@functools.cache
def kernel_available() -> bool:
    """Build (or load the cached build of) the C++ kernel once per process: the build of this
    process's numerics mode (a first use with none chosen fixes the mode as native). False, with
    one warning, where it cannot be built: no compiler, no ninja, a failed compile."""
    from seqbench.numerics import settle

    mode = settle()
    if any(other != mode for other in _loaded):
        raise RuntimeError(f"the {mode} GRU kernel cannot load beside another build in one process")
    try:
        from torch.utils.cpp_extension import load

        put_ninja_on_path()
        source = build_source(mode)
        load(
            name=EXTENSION if mode == "native" else f"{EXTENSION}_{mode}",
            sources=[str(source)],
            extra_cflags=FLAGS[mode],
            build_directory=str(source.parent),
            is_python_module=False,
            verbose=False,
        )
        _loaded.add(mode)
        return True
    except Exception as error:  # noqa: BLE001 - any build failure means the same thing: fall back
        first_line = (str(error).strip() or type(error).__name__).splitlines()[0]
        warnings.warn(
            f"seqbench's fused CPU GRU could not be built ({first_line}); training uses torch's nn.GRU, "
            "which is correct but several times slower on a CPU. Install a C++ compiler (g++) and ninja "
            "to get the fast kernel.",
            RuntimeWarning,
            stacklevel=2,
        )
        return False


def put_ninja_on_path() -> None:
    """torch runs `ninja` from PATH: put the ninja wheel's binary first, so that every process
    builds with the same ninja (another version's .ninja_log makes it rebuild everything), also
    where a script runs the venv's python without the venv's bin on PATH."""
    import os

    try:
        import ninja
    except ImportError:
        return  # a system ninja, if any
    path = os.environ.get("PATH", "")
    if not path.startswith(ninja.BIN_DIR + os.pathsep):
        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + path


_loaded: set[str] = set()  # the numerics mode whose build this process loaded


def build_source(mode: str = "native") -> Path:
    """The kernel's source, copied into its build folder under torch's extensions folder
    (TORCH_EXTENSIONS_DIR), named by what the build depends on: the source's bytes, the mode's
    flags, this CPU's features and the torch installation. So every checkout of the project using
    one venv (a clone, a test's temporary copy) shares one build, and a home folder shared by
    different machines does not: -march=native compiles for this CPU's vector units (the gates'
    elementwise pass is vectorised)."""
    import hashlib
    import os
    import platform
    import tempfile

    from torch.utils.cpp_extension import _get_build_directory

    code = SOURCE.read_bytes()
    try:
        cpu = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        cpu = platform.processor() or platform.machine()
    # The torch it compiles against (each venv its own build: a shared one would be rebuilt,
    # its include paths changed, whenever another venv loaded it).
    against = f"{torch.__version__} {Path(torch.__file__).parent}"
    flags = " ".join(FLAGS[mode])
    tag = hashlib.sha256(code + cpu.encode() + against.encode() + flags.encode()).hexdigest()[:16]
    name = EXTENSION if mode == "native" else f"{EXTENSION}_{mode}"
    folder = Path(_get_build_directory(f"{name}-{tag}", verbose=False))  # created if missing
    copy = folder / SOURCE.name
    if not copy.is_file() or copy.read_bytes() != code:
        with tempfile.NamedTemporaryFile(dir=folder, delete=False) as partial:
            partial.write(code)
        os.replace(partial.name, copy)  # atomic: processes building at once see all or nothing
    return copy


class _GRULayer(torch.autograd.Function):
    """One layer and direction: gi = the input projection of every step (computed by the caller,
    so autograd handles W_ih), h0, W_hh, b_hh -> (outputs [T, B, H], h_n [B, H])."""

    @staticmethod
    def forward(ctx, gi, h0, w_hh, b_hh, lengths, reverse):
        out, h_n, states, gates = torch.ops.seqbench.gru_forward(gi, h0, w_hh, b_hh, lengths, reverse)
        ctx.save_for_backward(states, gates, w_hh, lengths)
        ctx.reverse = reverse
        return out, h_n

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out, grad_hn):
        states, gates, w_hh, lengths = ctx.saved_tensors
        grad_gi, grad_h0, grad_w_hh, grad_b_hh = torch.ops.seqbench.gru_backward(
            grad_out, grad_hn, states, gates, w_hh, lengths, ctx.reverse
        )
        return grad_gi, grad_h0, grad_w_hh, grad_b_hh, None, None


class FusedGRU(nn.GRU):
    """nn.GRU with a fused CPU kernel; see the module's docstring."""

    def forward(self, input, hx=None):
        if not self._fused_applies(input):
            return super().forward(input, hx)
        packed = isinstance(input, PackedSequence)
        if packed:
            steps, lengths = pad_packed_sequence(input)  # time-major, the caller's batch order
        else:
            steps = input.transpose(0, 1) if self.batch_first else input
            lengths = torch.full((steps.shape[1],), steps.shape[0], dtype=torch.long)
        output, h_n = self._run(steps, lengths, hx)
        if packed:
            return _repack(output, lengths, input), h_n
        return (output.transpose(0, 1) if self.batch_first else output), h_n

    def _fused_applies(self, input) -> bool:
        data = input.data if isinstance(input, PackedSequence) else input
        return (
            data.device.type == "cpu"
            and data.dtype in (torch.float32, torch.float64)
            and (isinstance(input, PackedSequence) or data.dim() == 3)
            and self.bias
            and kernel_available()
        )

    def _run(self, steps: torch.Tensor, lengths: torch.Tensor, hx):
        directions = 2 if self.bidirectional else 1
        if hx is None:
            hx = steps.new_zeros(self.num_layers * directions, steps.shape[1], self.hidden_size)
        layer_input, finals = steps, []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                w_ih, w_hh, b_ih, b_hh = (getattr(self, name + suffix) for name in self._flat_names)
                gi = F.linear(layer_input, w_ih, b_ih)
                out, h_n = _GRULayer.apply(gi, hx[layer * directions + direction], w_hh, b_hh, lengths, bool(direction))
                outputs.append(out)
                finals.append(h_n)
            layer_input = outputs[0] if directions == 1 else torch.cat(outputs, dim=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        return layer_input, torch.stack(finals)

    _flat_names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _repack(output: torch.Tensor, lengths: torch.Tensor, like: PackedSequence) -> PackedSequence:
    """Time-major padded output -> a PackedSequence laid out exactly as the input `like`."""
    if like.sorted_indices is not None:
        output, lengths = output.index_select(1, like.sorted_indices), lengths[like.sorted_indices]
    data = pack_padded_sequence(output, lengths, enforce_sorted=True).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


if __name__ == "__main__":  # `python -m seqbench.models.fused_gru`: build it now (make install)
    # Not an error when it fails: training falls back to nn.GRU, and the warning says why.
    print("fused GRU kernel:", "built" if kernel_available() else "not built; the GRU will run torch's nn.GRU")
