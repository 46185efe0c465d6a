// One GRU layer and direction over a whole sequence, forward and backward, on the CPU.
//
// torch runs nn.GRU on a CPU through its cell step by step from Python-visible autograd: some
// two dozen kernel launches per time step, which at this tool's sizes cost more than the
// arithmetic. Here the Python side computes the input projection of all steps in one matmul;
// each step is then one matmul (h @ W_hh^T + b_hh) and one fused elementwise pass, and the
// backward pass is the mirror image, with W_hh's gradient summed in one matmul at the end.
//
// Equations (torch's form: the reset gate scales the hidden part, b_hn included):
//   r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z), n = tanh(gi_n + r * gh_n),
//   h' = (1 - z) * n + z * h, where gi = W_ih x + b_ih and gh = W_hh h + b_hh.
//
// Variable lengths: sequence b is valid for t < lengths[b]. A step past its end keeps h and
// outputs 0, as a packed nn.GRU does. The reverse direction walks t from T-1 down to 0, so a
// sequence's padded steps come first and leave h0 untouched until its last valid step.
//
// Layouts: time-major. gi [T, B, 3H]; out [T, B, H]; states [T+1, B, H] holds h before each
// step in processing order (states[0] = h0); gates [T, B, 4H] holds r, z, n, gh_n in processing
// order, which is all the backward pass needs.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>

namespace {

// exp(x) in float without a library call, so that the compiler vectorises the gate loops (a
// libm call per element costs more than the step's matmul at this tool's sizes): Cephes' expf,
// a degree-5 polynomial after reducing x by multiples of ln 2, within 2 ulp of expf on the
// clamped range. Doubles (gradcheck, float64 training) use std::exp.
inline float exp_of(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  // k = round(x / ln 2), by the float-rounding trick (no floor call to block vectorisation).
  const float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - k * 0.693359375f) - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e_r = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;  // 2^k, k in [-126, 127]
  float two_k;
  std::memcpy(&two_k, &bits, sizeof two_k);
  return e_r * two_k;
}

inline double exp_of(double x) { return std::exp(x); }

template <typename scalar_t>
inline scalar_t sigmoid(scalar_t x) {
  return scalar_t(1) / (scalar_t(1) + exp_of(-x));
}

// tanh through the same exp: 2 sigmoid(2x) - 1 (absolute error ~1e-7 near 0 in float).
template <typename scalar_t>
inline scalar_t tanh_of(scalar_t x) {
  return scalar_t(2) / (scalar_t(1) + exp_of(scalar_t(-2) * x)) - scalar_t(1);
}

// One sequence's step, forward: the gates from its input and hidden projections (x: gi's
// row, g: gh's row), the new hidden state (h_next; h itself on a padded step) and its output.
template <typename scalar_t>
void forward_row(const scalar_t* __restrict__ x, const scalar_t* __restrict__ g, const scalar_t* __restrict__ h,
                 scalar_t* __restrict__ h_next, scalar_t* __restrict__ saved, scalar_t* __restrict__ o, int64_t H,
                 bool valid) {
  const scalar_t keep = valid ? scalar_t(1) : scalar_t(0);
  for (int64_t j = 0; j < H; ++j) {
    const scalar_t r = sigmoid(x[j] + g[j]);
    const scalar_t z = sigmoid(x[H + j] + g[H + j]);
    const scalar_t gh_n = g[2 * H + j];
    const scalar_t n = tanh_of(x[2 * H + j] + r * gh_n);
    const scalar_t h_new = (scalar_t(1) - z) * n + z * h[j];
    saved[j] = r;
    saved[H + j] = z;
    saved[2 * H + j] = n;
    saved[3 * H + j] = gh_n;
    h_next[j] = h[j] + keep * (h_new - h[j]);
    o[j] = keep * h_new;
  }
}

// One sequence's step, backward: from dh (the gradient reaching h', overwritten with the
// direct part of h's gradient, g * z) and dout, the gradients of gi's and gh's rows.
template <typename scalar_t>
void backward_row(const scalar_t* __restrict__ saved, const scalar_t* __restrict__ h,
                  const scalar_t* __restrict__ dout, scalar_t* __restrict__ dh, scalar_t* __restrict__ dgi,
                  scalar_t* __restrict__ dgh, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const scalar_t r = saved[j], z = saved[H + j], n = saved[2 * H + j], gh_n = saved[3 * H + j];
    const scalar_t g = dh[j] + dout[j];
    const scalar_t dn = g * (scalar_t(1) - z) * (scalar_t(1) - n * n);
    const scalar_t dz = g * (h[j] - n) * z * (scalar_t(1) - z);
    const scalar_t dr = dn * gh_n * r * (scalar_t(1) - r);
    dgi[j] = dr;
    dgi[H + j] = dz;
    dgi[2 * H + j] = dn;
    dgh[j] = dr;
    dgh[H + j] = dz;
    dgh[2 * H + j] = dn * r;
    dh[j] = g * z;  // the direct path h -> h'; the path through W_hh is added by the caller
  }
}

void check_inputs(const at::Tensor& w_hh, const at::Tensor& lengths, int64_t T, int64_t B, int64_t H) {
  TORCH_CHECK(w_hh.dim() == 2 && w_hh.size(0) == 3 * H && w_hh.size(1) == H, "w_hh must be [3H, H]");
  TORCH_CHECK(lengths.dim() == 1 && lengths.size(0) == B, "lengths must be [B]");
  TORCH_CHECK(T > 0, "the sequence needs at least one step");
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gru_forward(
    const at::Tensor& gi_in, const at::Tensor& h0_in, const at::Tensor& w_hh, const at::Tensor& b_hh,
    const at::Tensor& lengths_in, bool reverse) {
  const auto gi = gi_in.contiguous();
  const auto lengths = lengths_in.to(at::kLong).contiguous();
  const int64_t T = gi.size(0), B = gi.size(1), H = h0_in.size(1);
  TORCH_CHECK(gi.dim() == 3 && gi.size(2) == 3 * H, "gi must be [T, B, 3H]");
  TORCH_CHECK(h0_in.dim() == 2 && h0_in.size(0) == B, "h0 must be [B, H]");
  check_inputs(w_hh, lengths, T, B, H);

  auto states = at::empty({T + 1, B, H}, gi.options());
  auto gates = at::empty({T, B, 4 * H}, gi.options());
  auto out = at::empty({T, B, H}, gi.options());
  auto gh = at::empty({B, 3 * H}, gi.options());
  states.select(0, 0).copy_(h0_in);
  const auto w_hh_t = w_hh.t();
  const int64_t* len = lengths.data_ptr<int64_t>();

  AT_DISPATCH_FLOATING_TYPES(gi.scalar_type(), "seqbench_gru_forward", [&] {
    const scalar_t* gi_p = gi.data_ptr<scalar_t>();
    const scalar_t* gh_p = gh.data_ptr<scalar_t>();
    scalar_t* states_p = states.data_ptr<scalar_t>();
    scalar_t* gates_p = gates.data_ptr<scalar_t>();
    scalar_t* out_p = out.data_ptr<scalar_t>();
    for (int64_t k = 0; k < T; ++k) {
      const int64_t t = reverse ? T - 1 - k : k;
      at::addmm_out(gh, b_hh, states.select(0, k), w_hh_t);
      for (int64_t b = 0; b < B; ++b) {
        const bool valid = t < len[b];
        const scalar_t* __restrict__ x = gi_p + (t * B + b) * 3 * H;
        const scalar_t* __restrict__ g = gh_p + b * 3 * H;
        const scalar_t* __restrict__ h = states_p + (k * B + b) * H;
        scalar_t* __restrict__ h_next = states_p + ((k + 1) * B + b) * H;
        scalar_t* __restrict__ saved = gates_p + (k * B + b) * 4 * H;
        scalar_t* __restrict__ o = out_p + (t * B + b) * H;
        forward_row(x, g, h, h_next, saved, o, H, valid);
      }
    }
  });
  // h_n is a copy, not a view of `states`: an op's outputs must not alias each other.
  return {out, states.select(0, T).clone(), states, gates};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gru_backward(
    const at::Tensor& grad_out_in, const at::Tensor& grad_hn, const at::Tensor& states, const at::Tensor& gates,
    const at::Tensor& w_hh, const at::Tensor& lengths_in, bool reverse) {
  const auto grad_out = grad_out_in.contiguous();
  const auto lengths = lengths_in.to(at::kLong).contiguous();
  const int64_t T = gates.size(0), B = gates.size(1), H = gates.size(2) / 4;
  check_inputs(w_hh, lengths, T, B, H);
  TORCH_CHECK(states.is_contiguous() && gates.is_contiguous(), "saved tensors must be contiguous");

  auto grad_gi = at::empty({T, B, 3 * H}, gates.options());
  // d(gh) per step, in processing order: the rows of W_hh's gradient matmul.
  auto grad_gh = at::empty({T, B, 3 * H}, gates.options());
  auto dh = grad_hn.contiguous().clone();
  const int64_t* len = lengths.data_ptr<int64_t>();

  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "seqbench_gru_backward", [&] {
    const scalar_t* dout_p = grad_out.data_ptr<scalar_t>();
    const scalar_t* states_p = states.data_ptr<scalar_t>();
    const scalar_t* gates_p = gates.data_ptr<scalar_t>();
    scalar_t* dgi_p = grad_gi.data_ptr<scalar_t>();
    scalar_t* dgh_p = grad_gh.data_ptr<scalar_t>();
    scalar_t* dh_p = dh.data_ptr<scalar_t>();
    for (int64_t k = T - 1; k >= 0; --k) {
      const int64_t t = reverse ? T - 1 - k : k;
      for (int64_t b = 0; b < B; ++b) {
        scalar_t* __restrict__ dgi = dgi_p + (t * B + b) * 3 * H;
        scalar_t* __restrict__ dgh = dgh_p + (k * B + b) * 3 * H;
        if (t >= len[b]) {  // a padded step: h passed through, nothing to learn from it
          std::fill(dgi, dgi + 3 * H, scalar_t(0));
          std::fill(dgh, dgh + 3 * H, scalar_t(0));
          continue;
        }
        const scalar_t* __restrict__ saved = gates_p + (k * B + b) * 4 * H;
        const scalar_t* __restrict__ h = states_p + (k * B + b) * H;
        const scalar_t* __restrict__ dout = dout_p + (t * B + b) * H;
        scalar_t* __restrict__ dh_b = dh_p + b * H;
        backward_row(saved, h, dout, dh_b, dgi, dgh, H);
      }
      // Padded rows have d(gh) = 0, so this leaves their dh as it was.
      dh.addmm_(grad_gh.select(0, k), w_hh);
    }
  });
  const auto dgh_rows = grad_gh.view({T * B, 3 * H});
  auto grad_w_hh = dgh_rows.t().mm(states.narrow(0, 0, T).reshape({T * B, H}));
  auto grad_b_hh = dgh_rows.sum(0);
  return {grad_gi, dh, grad_w_hh, grad_b_hh};
}

}  // namespace

TORCH_LIBRARY(seqbench, m) {
  m.def(
      "gru_forward(Tensor gi, Tensor h0, Tensor w_hh, Tensor b_hh, Tensor lengths, bool reverse)"
      " -> (Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "gru_backward(Tensor grad_out, Tensor grad_hn, Tensor states, Tensor gates, Tensor w_hh, Tensor lengths,"
      " bool reverse) -> (Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(seqbench, CPU, m) {
  m.impl("gru_forward", &gru_forward);
  m.impl("gru_backward", &gru_backward);
}
