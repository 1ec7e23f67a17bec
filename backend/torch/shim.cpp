// strata's C ABI over ATen: see shim.h. Built by tools/setup.ts (backend/torch/build.ts) against Debian's
// libtorch-dev, an installed PyTorch, or $STRATA_LIBTORCH; loaded by backend/torch/ffi.ts.
//
// Layout conventions: tensors are stored as tfjs sees them (NHWC feature maps, HWIO filters). Convolutions and
// pooling run on NCHW *views* of NHWC storage, which ATen treats as channels-last tensors: no layout copies.
#include "shim.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/version.h>
#ifdef STRATA_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <cmath>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#define ST_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace {

thread_local std::string g_error;
at::Device g_device = at::kCPU;
std::string g_device_name = "cpu";
std::mutex g_live_mutex;
std::unordered_set<at::Tensor*> g_live;

at::ScalarType scalar_type(int dtype) {
  switch (dtype) {
    case ST_F32: return at::kFloat;
    case ST_I32: return at::kInt;
    case ST_BOOL: return at::kBool;
  }
  throw std::runtime_error("unknown dtype code " + std::to_string(dtype));
}

at::TensorOptions options(int dtype) { return at::TensorOptions().dtype(scalar_type(dtype)).device(g_device); }

st_t wrap(at::Tensor t) {
  auto* h = new at::Tensor(std::move(t));
  std::lock_guard<std::mutex> lock(g_live_mutex);
  g_live.insert(h);
  return h;
}

at::Tensor& T(st_t h) {
  if (h == nullptr) throw std::runtime_error("null tensor handle");
  return *static_cast<at::Tensor*>(h);
}

// A 0-d CPU tensor may stand for a scalar next to device tensors (uploads of scalars stay on the host, so that
// they never synchronise the GPU); ops that need every operand on the device move it there.
at::Tensor on_device(const at::Tensor& t) { return t.device() == g_device ? t : t.to(g_device); }

at::Tensor to_dtype(const at::Tensor& t, int dtype) {
  auto st = scalar_type(dtype);
  return t.scalar_type() == st ? t : t.to(st);
}

std::vector<int64_t> dims(const int32_t* v, int n) { return std::vector<int64_t>(v, v + n); }

template <typename F>
st_t guard(F&& f) {
  try {
    return wrap(f());
  } catch (const std::exception& e) {
    g_error = e.what();
  } catch (...) {
    g_error = "unknown C++ exception";
  }
  return nullptr;
}

template <typename F>
int guard_int(F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    g_error = e.what();
  } catch (...) {
    g_error = "unknown C++ exception";
  }
  return -1;
}

// NCHW view of an NHWC tensor (channels-last strides) and back.
at::Tensor nchw(const at::Tensor& x) { return x.permute({0, 3, 1, 2}); }
at::Tensor nhwc(const at::Tensor& x) { return x.permute({0, 2, 3, 1}).contiguous(); }

// OIHW weight from an HWIO (or, depthwise, [H, W, in, multiplier]) filter.
at::Tensor oihw(const at::Tensor& f, bool depthwise) {
  if (!depthwise) return f.permute({3, 2, 0, 1});
  return f.permute({2, 3, 0, 1}).reshape({f.size(2) * f.size(3), 1, f.size(0), f.size(1)});
}

bool symmetric(const int32_t* pads) { return pads[0] == pads[1] && pads[2] == pads[3]; }

// The memory format convolution gradients run in. cuDNN runs channels-last natively; libtorch 1.13's CPU
// convolution_backward corrupts the heap on channels-last operands (seen with Debian's build), so on the CPU
// they are made contiguous NCHW first.
at::Tensor conv_operand(const at::Tensor& t) {
  return g_device.is_cuda() ? t : t.contiguous();
}

at::Tensor activate(at::Tensor y, int activation, st_t prelu, double alpha) {
  switch (activation) {
    case 0: return y;
    case 1: return at::relu(y);
    case 2: return at::clamp(y, 0, 6);
    case 3: return at::elu(y);
    case 4: return at::sigmoid(y);
    case 5: return at::leaky_relu(y, alpha);
    case 6: return at::prelu(y, on_device(T(prelu)));
  }
  throw std::runtime_error("unknown activation code " + std::to_string(activation));
}

// Device-resident copies of small host tables (resize indices and weights), keyed by their bytes: uploads
// would otherwise synchronise the GPU on every call.
std::mutex g_table_mutex;
std::unordered_map<std::string, at::Tensor> g_tables;

at::Tensor table(const void* data, int64_t n, at::ScalarType type) {
  size_t bytes = n * (type == at::kFloat ? 4 : 4);
  std::string key(static_cast<const char*>(data), bytes);
  key.push_back(type == at::kFloat ? 'f' : 'i');
  std::lock_guard<std::mutex> lock(g_table_mutex);
  auto it = g_tables.find(key);
  if (it != g_tables.end()) return it->second;
  auto host = at::from_blob(const_cast<void*>(data), {n}, at::TensorOptions().dtype(type)).clone();
  auto t = type == at::kInt ? host.to(at::kLong).to(g_device) : host.to(g_device);
  if (g_tables.size() > 4096) g_tables.clear();
  g_tables.emplace(key, t);
  return t;
}

}  // namespace

extern "C" {

const char* st_last_error(void) { return g_error.c_str(); }

const char* st_version(void) { return TORCH_VERSION; }

int st_abi_version(void) { return 1; }

int st_cuda_available(void) {
  try {
    return at::hasCUDA() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

int st_init(int use_cuda, int threads, int tf32_matmul, int tf32_cudnn, int cudnn_benchmark) {
  return guard_int([&] {
    if (use_cuda) {
      if (!at::hasCUDA()) throw std::runtime_error("this libtorch has no CUDA, or no GPU is visible");
      g_device = at::Device(at::kCUDA, 0);
      g_device_name = "cuda:0";
    } else {
      g_device = at::kCPU;
      g_device_name = "cpu";
    }
    if (threads > 0) at::set_num_threads(threads);
    auto& ctx = at::globalContext();
    ctx.setAllowTF32CuBLAS(tf32_matmul != 0);
    ctx.setAllowTF32CuDNN(tf32_cudnn != 0);
    ctx.setBenchmarkCuDNN(cudnn_benchmark != 0);
  });
}

const char* st_device_name(void) { return g_device_name.c_str(); }

int st_num_threads(void) { return at::get_num_threads(); }

int st_memory(double* out) {
  return guard_int([&] {
    std::lock_guard<std::mutex> lock(g_live_mutex);
    std::unordered_set<const void*> storages;
    double bytes = 0;
    for (auto* h : g_live) {
      if (!h->defined() || !h->has_storage()) continue;
      const void* key = h->storage().unsafeGetStorageImpl();
      if (storages.insert(key).second) bytes += static_cast<double>(h->storage().nbytes());
    }
    out[0] = static_cast<double>(g_live.size());
    out[1] = bytes;
    out[2] = 0;
    out[3] = 0;
#ifdef STRATA_WITH_CUDA
    if (g_device.is_cuda()) {
      auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(g_device.index());
      out[2] = static_cast<double>(stats.allocated_bytes[0].current);
      out[3] = static_cast<double>(stats.allocated_bytes[0].peak);
    }
#endif
  });
}

int st_synchronize(void) {
  return guard_int([&] {
    if (g_device.is_cuda()) {
      // A tiny device-to-host copy waits for all queued work on the current stream.
      at::zeros({1}, options(ST_F32)).cpu();
    }
  });
}

st_t st_from_host(const void* data, int dtype, const int32_t* shape, int rank) {
  return guard([&] {
    auto sizes = dims(shape, rank);
    auto host_opts = at::TensorOptions().dtype(scalar_type(dtype));
    int64_t n = 1;
    for (auto s : sizes) n *= s;
    if (!g_device.is_cuda() || rank == 0) {
      auto t = at::empty(sizes, host_opts);
      if (n > 0) std::memcpy(t.data_ptr(), data, n * t.element_size());
      return t;
    }
    // Through pinned memory, so the upload is queued on the stream instead of synchronising the device.
    auto pinned = at::empty(sizes, host_opts.pinned_memory(true));
    if (n > 0) std::memcpy(pinned.data_ptr(), data, n * pinned.element_size());
    return pinned.to(g_device, /*non_blocking=*/true);
  });
}

int st_to_host(st_t h, void* out, int64_t nbytes) {
  return guard_int([&] {
    auto t = T(h).contiguous();
    if (t.device() != at::kCPU) t = t.cpu();
    if (t.scalar_type() == at::kLong) t = t.to(at::kInt);
    if (t.scalar_type() == at::kDouble) t = t.to(at::kFloat);
    int64_t bytes = t.numel() * t.element_size();
    if (bytes != nbytes) {
      throw std::runtime_error("read of " + std::to_string(nbytes) + " bytes from a tensor of " +
                               std::to_string(bytes) + " bytes");
    }
    if (bytes > 0) std::memcpy(out, t.data_ptr(), bytes);
  });
}

st_t st_ref(st_t h) {
  return guard([&] { return T(h); });
}

void st_free(st_t h) {
  if (h == nullptr) return;
  auto* t = static_cast<at::Tensor*>(h);
  {
    std::lock_guard<std::mutex> lock(g_live_mutex);
    g_live.erase(t);
  }
  delete t;
}

st_t st_unary(int op, st_t hx, int out_dtype) {
  return guard([&] {
    const auto& x = T(hx);
    at::Tensor y;
    switch (op) {
      case 0: y = at::neg(x); break;
      case 1: y = at::exp(x); break;
      case 2: y = at::log(x); break;
      case 3: y = at::sqrt(x); break;
      case 4: y = at::rsqrt(x); break;
      case 5: y = at::mul(x, x); break;
      case 6: y = at::abs(x); break;
      case 7: y = at::sign(x); break;
      case 8: y = at::floor(x); break;
      case 9: y = at::ceil(x); break;
      case 10: y = at::round(x); break;
      case 11: y = at::relu(x); break;
      case 12: y = at::clamp(x, 0, 6); break;
      case 13: y = at::sigmoid(x); break;
      case 14: y = at::tanh(x); break;
      case 15: y = at::sin(x); break;
      case 16: y = at::cos(x); break;
      case 17: y = at::erf(x); break;
      case 18: y = at::reciprocal(x); break;
      case 19: y = at::log1p(x); break;
      case 20: y = at::expm1(x); break;
      case 21: y = at::softplus(x); break;
      case 22: y = at::logical_not(x); break;
      case 23: y = at::isnan(x); break;
      case 24: y = at::elu(x); break;
      case 25: y = at::selu(x); break;
      case 26: y = at::isinf(x); break;
      case 27: y = at::isfinite(x); break;
      case 28: y = at::tan(x); break;
      case 29: y = at::asin(x); break;
      case 30: y = at::acos(x); break;
      case 31: y = at::atan(x); break;
      case 32: y = at::sinh(x); break;
      case 33: y = at::cosh(x); break;
      case 34: y = at::asinh(x); break;
      case 35: y = at::acosh(x); break;
      case 36: y = at::atanh(x); break;
      case 37: y = x.clone(); break;
      default: throw std::runtime_error("unknown unary op code " + std::to_string(op));
    }
    return to_dtype(y, out_dtype);
  });
}

st_t st_unary_scalar(int op, st_t hx, double a, double b, int out_dtype) {
  return guard([&] {
    const auto& x = T(hx);
    at::Tensor y;
    switch (op) {
      case 0: y = at::leaky_relu(x, a); break;
      case 1: {  // Step: 1 where x > 0, `a` elsewhere, NaN kept (as tfjs).
        // ReLU's gradient calls it once per activation: on a contiguous CPU float tensor one pass over the
        // data (7 ATen ops cost ~0.6 ms per call at micro size); elsewhere the composed ops.
        if (x.is_cpu() && x.scalar_type() == at::kFloat && x.is_contiguous()) {
          y = at::empty_like(x);
          const float* src = x.data_ptr<float>();
          float* dst = y.data_ptr<float>();
          const float alpha = static_cast<float>(a);
          const int64_t n = x.numel();
          for (int64_t i = 0; i < n; i++) dst[i] = src[i] > 0 ? 1.0f : (src[i] != src[i] ? src[i] : alpha);
        } else {
          auto stepped = (x > 0).to(x.scalar_type());
          if (a != 0) stepped = stepped * (1 - a) + a;
          y = at::where(at::isnan(x), x, stepped);
        }
        break;
      }
      case 2: y = at::clamp(x, a, b); break;
      case 3: y = at::elu(x, a); break;
      default: throw std::runtime_error("unknown unary-scalar op code " + std::to_string(op));
    }
    return to_dtype(y, out_dtype);
  });
}

st_t st_binary(int op, st_t ha, st_t hb, int out_dtype) {
  return guard([&] {
    const auto& a = T(ha);
    const auto& b = T(hb);
    at::Tensor y;
    switch (op) {
      case 0: y = at::add(a, b); break;
      case 1: y = at::sub(a, b); break;
      case 2: y = at::mul(a, b); break;
      case 3: y = at::div(a, b); break;
      case 4: y = at::maximum(a, b); break;
      case 5: y = at::minimum(a, b); break;
      case 6: y = at::pow(a, b); break;
      case 7: {
        auto d = at::sub(a, b);
        y = at::mul(d, d);
        break;
      }
      case 8: y = at::div(a, b, "floor"); break;
      case 9: y = at::remainder(a, b); break;
      case 10: y = at::eq(a, b); break;
      case 11: y = at::ne(a, b); break;
      case 12: y = at::gt(a, b); break;
      case 13: y = at::ge(a, b); break;
      case 14: y = at::lt(a, b); break;
      case 15: y = at::le(a, b); break;
      case 16: y = at::logical_and(a, b); break;
      case 17: y = at::logical_or(a, b); break;
      case 18: y = at::atan2(a, b); break;
      case 19: y = at::where(a < 0, at::mul(a, b), a); break;  // Prelu with broadcast alpha
      default: throw std::runtime_error("unknown binary op code " + std::to_string(op));
    }
    // Two host scalars give a host scalar: it stays there (moving it would synchronise the GPU).
    return to_dtype(y, out_dtype);
  });
}

st_t st_select(st_t cond, st_t a, st_t b) {
  return guard([&] { return on_device(at::where(T(cond).to(at::kBool), T(a), T(b))); });
}

st_t st_cast(st_t x, int dtype) {
  return guard([&] {
    const auto& t = T(x);
    auto st = scalar_type(dtype);
    if (st == at::kBool) return on_device(t != 0);
    // tfjs truncates floats towards zero when casting to int32, as ATen does.
    return on_device(t.to(st));
  });
}

st_t st_fill(const int32_t* shape, int rank, double value, int dtype) {
  return guard([&] {
    auto sizes = dims(shape, rank);
    return at::full(sizes, value, options(dtype));
  });
}

st_t st_range(double start, double step, int64_t n, int dtype) {
  return guard([&] {
    auto idx = at::arange(n, at::TensorOptions().dtype(at::kDouble).device(g_device));
    return to_dtype(idx * step + start, dtype);
  });
}

st_t st_reduce(int op, st_t hx, const int32_t* axes_p, int n_axes, int keep_dims, int out_dtype) {
  return guard([&] {
    const auto& x = T(hx);
    if (n_axes == 0) return to_dtype(x.clone(), out_dtype);
    auto axes = dims(axes_p, n_axes);
    bool keep = keep_dims != 0;
    at::Tensor y;
    switch (op) {
      case 0: y = at::sum(x, axes, keep); break;
      case 1: y = at::mean(x.is_floating_point() ? x : x.to(at::kFloat), axes, keep); break;
      case 2: y = at::amax(x, axes, keep); break;
      case 3: y = at::amin(x, axes, keep); break;
      case 4: {
        y = x.scalar_type() == at::kBool ? x.to(at::kInt) : x;
        std::vector<int64_t> sorted(axes);
        std::sort(sorted.rbegin(), sorted.rend());
        for (auto a : sorted) y = at::prod(y, a, keep);
        break;
      }
      case 5: {  // All
        y = x.to(at::kBool);
        std::vector<int64_t> sorted(axes);
        std::sort(sorted.rbegin(), sorted.rend());
        for (auto a : sorted) y = at::all(y, a, keep);
        break;
      }
      case 6: {  // Any
        y = x.to(at::kBool);
        std::vector<int64_t> sorted(axes);
        std::sort(sorted.rbegin(), sorted.rend());
        for (auto a : sorted) y = at::any(y, a, keep);
        break;
      }
      default: throw std::runtime_error("unknown reduction op code " + std::to_string(op));
    }
    return to_dtype(y, out_dtype);
  });
}

st_t st_arg_reduce(int op, st_t x, int axis) {
  return guard([&] {
    auto y = op == 0 ? at::argmax(T(x), axis) : at::argmin(T(x), axis);
    return y.to(at::kInt);
  });
}

st_t st_softmax(st_t x, int axis, int log) {
  return guard([&] { return log ? at::log_softmax(T(x), axis) : at::softmax(T(x), axis); });
}

st_t st_cumsum(st_t hx, int axis, int exclusive, int reverse, int out_dtype) {
  return guard([&] {
    auto x = T(hx);
    if (reverse) x = at::flip(x, {axis});
    auto y = at::cumsum(x, axis);
    if (exclusive) y = y - x;
    if (reverse) y = at::flip(y, {axis});
    return to_dtype(y, out_dtype);
  });
}

st_t st_cumprod(st_t hx, int axis, int exclusive, int reverse, int out_dtype) {
  return guard([&] {
    auto x = T(hx);
    if (reverse) x = at::flip(x, {axis});
    auto y = at::cumprod(x, axis);
    if (exclusive) {
      // Shift by one along the axis, starting from 1.
      auto ones = at::ones_like(x.narrow(axis, 0, 1));
      y = at::cat({ones, y.narrow(axis, 0, x.size(axis) - 1)}, axis);
    }
    if (reverse) y = at::flip(y, {axis});
    return to_dtype(y, out_dtype);
  });
}

int st_topk(st_t x, int k, int sorted, st_t* out) {
  return guard_int([&] {
    auto r = at::topk(T(x), k, -1, true, sorted != 0);
    out[0] = wrap(std::get<0>(r));
    out[1] = wrap(std::get<1>(r).to(at::kInt));
  });
}

st_t st_reshape(st_t x, const int32_t* shape, int rank) {
  return guard([&] { return T(x).reshape(dims(shape, rank)); });
}

st_t st_transpose(st_t x, const int32_t* perm, int rank) {
  return guard([&] { return T(x).permute(dims(perm, rank)); });
}

st_t st_strided_slice(st_t hx, const int32_t* begin, const int32_t* end, const int32_t* strides, int rank) {
  return guard([&] {
    auto y = T(hx);
    for (int d = 0; d < rank; d++) {
      int64_t b = begin[d], e = end[d], s = strides[d];
      if (s > 0) {
        if (b == 0 && e == y.size(d) && s == 1) continue;
        y = y.slice(d, b, std::max(b, e), s);
      } else {
        // Negative stride: reverse the axis, then a positive-stride slice. Elements b, b+s, … (> e).
        int64_t n = y.size(d);
        int64_t count = b > e ? (b - e + (-s) - 1) / (-s) : 0;
        auto flipped = at::flip(y, {d});
        int64_t fb = n - 1 - b;
        y = flipped.slice(d, fb, fb + (count - 1) * (-s) + 1, -s);
      }
    }
    return y;
  });
}

st_t st_concat(const st_t* xs, int n, int axis) {
  return guard([&] {
    std::vector<at::Tensor> ts;
    ts.reserve(n);
    for (int i = 0; i < n; i++) ts.push_back(on_device(T(xs[i])));
    return at::cat(ts, axis);
  });
}

st_t st_stack(const st_t* xs, int n, int axis) {
  return guard([&] {
    std::vector<at::Tensor> ts;
    ts.reserve(n);
    for (int i = 0; i < n; i++) ts.push_back(on_device(T(xs[i])));
    return at::stack(ts, axis);
  });
}

int st_unstack(st_t x, int axis, st_t* out) {
  return guard_int([&] {
    auto parts = at::unbind(T(x), axis);
    for (size_t i = 0; i < parts.size(); i++) out[i] = wrap(parts[i]);
  });
}

int st_split(st_t x, const int32_t* sizes, int n, int axis, st_t* out) {
  return guard_int([&] {
    int64_t offset = 0;
    for (int i = 0; i < n; i++) {
      out[i] = wrap(T(x).narrow(axis, offset, sizes[i]));
      offset += sizes[i];
    }
  });
}

st_t st_tile(st_t x, const int32_t* reps, int rank) {
  return guard([&] { return T(x).repeat(dims(reps, rank)); });
}

st_t st_pad(st_t hx, const int32_t* before_after, int rank, double value) {
  return guard([&] {
    // ATen lists padding from the last axis backwards.
    std::vector<int64_t> pad;
    for (int d = rank - 1; d >= 0; d--) {
      pad.push_back(before_after[2 * d]);
      pad.push_back(before_after[2 * d + 1]);
    }
    return at::constant_pad_nd(T(hx), pad, value);
  });
}

st_t st_mirror_pad(st_t hx, const int32_t* before_after, int rank, int reflect) {
  return guard([&] {
    // Built from slices and flips so every rank and both modes work the same way.
    auto y = T(hx);
    for (int d = 0; d < rank; d++) {
      int64_t lo = before_after[2 * d], hi = before_after[2 * d + 1];
      if (lo == 0 && hi == 0) continue;
      int64_t n = y.size(d);
      int64_t off = reflect ? 1 : 0;
      std::vector<at::Tensor> parts;
      if (lo > 0) parts.push_back(at::flip(y.narrow(d, off, lo), {d}));
      parts.push_back(y);
      if (hi > 0) parts.push_back(at::flip(y.narrow(d, n - hi - off, hi), {d}));
      y = at::cat(parts, d);
    }
    return y;
  });
}

st_t st_reverse(st_t x, const int32_t* axes, int n_axes) {
  return guard([&] { return n_axes == 0 ? T(x).clone() : at::flip(T(x), dims(axes, n_axes)); });
}

st_t st_broadcast_to(st_t x, const int32_t* shape, int rank) {
  return guard([&] { return on_device(T(x).expand(dims(shape, rank)).contiguous()); });
}

st_t st_gather(st_t hx, st_t hi, int axis, int batch_dims) {
  return guard([&] {
    const auto& x = T(hx);
    auto idx = on_device(T(hi)).to(at::kLong);
    if (batch_dims == 0) {
      // out shape: x.shape[:axis] + idx.shape + x.shape[axis+1:]
      auto flat = at::index_select(x, axis, idx.reshape({-1}));
      std::vector<int64_t> shape(x.sizes().begin(), x.sizes().begin() + axis);
      for (auto s : idx.sizes()) shape.push_back(s);
      for (int64_t d = axis + 1; d < x.dim(); d++) shape.push_back(x.size(d));
      return flat.reshape(shape);
    }
    // Batched gather (tfjs batchDims): loop over the flattened batch.
    std::vector<int64_t> batch(x.sizes().begin(), x.sizes().begin() + batch_dims);
    int64_t nb = 1;
    for (auto s : batch) nb *= s;
    auto xb = x.reshape([&] {
      std::vector<int64_t> s{nb};
      for (int64_t d = batch_dims; d < x.dim(); d++) s.push_back(x.size(d));
      return s;
    }());
    auto ib = idx.reshape({nb, -1});
    std::vector<at::Tensor> outs;
    for (int64_t b = 0; b < nb; b++) outs.push_back(at::index_select(xb[b], axis - batch_dims, ib[b]));
    std::vector<int64_t> shape(x.sizes().begin(), x.sizes().begin() + axis);
    for (int64_t d = batch_dims; d < idx.dim(); d++) shape.push_back(idx.size(d));
    for (int64_t d = axis + 1; d < x.dim(); d++) shape.push_back(x.size(d));
    return at::stack(outs, 0).reshape(shape);
  });
}

st_t st_gather_nd(st_t hx, st_t hi) {
  return guard([&] {
    const auto& x = T(hx);
    auto idx = on_device(T(hi)).to(at::kLong);
    int64_t k = idx.size(-1);
    std::vector<at::Tensor> index;
    for (int64_t j = 0; j < k; j++) index.push_back(idx.select(-1, j));
    std::vector<c10::optional<at::Tensor>> opt(index.begin(), index.end());
    return at::index(x, c10::List<c10::optional<at::Tensor>>(opt));
  });
}

st_t st_one_hot(st_t hi, int depth, double on, double off, int dtype) {
  return guard([&] {
    auto idx = on_device(T(hi)).to(at::kLong);
    // tfjs gives an all-`off` row for indices outside [0, depth); ATen's one_hot rejects them.
    auto valid = (idx >= 0).logical_and(idx < depth);
    auto clamped = at::where(valid, idx, at::zeros_like(idx));
    auto hot = at::one_hot(clamped, depth).logical_and(valid.unsqueeze(-1));
    auto f = hot.to(at::kFloat) * (on - off) + off;
    return to_dtype(f, dtype);
  });
}

st_t st_unsorted_segment_sum(st_t hx, st_t hs, int num_segments) {
  return guard([&] {
    const auto& x = T(hx);
    auto seg = on_device(T(hs)).to(at::kLong).reshape({-1});
    // segment ids index the leading axes of x covered by the ids tensor
    int64_t lead = T(hs).dim();
    std::vector<int64_t> rest(x.sizes().begin() + lead, x.sizes().end());
    std::vector<int64_t> flat_shape{seg.size(0)};
    flat_shape.insert(flat_shape.end(), rest.begin(), rest.end());
    std::vector<int64_t> out_shape{num_segments};
    out_shape.insert(out_shape.end(), rest.begin(), rest.end());
    auto valid = (seg >= 0).logical_and(seg < num_segments);
    auto xf = x.reshape(flat_shape);
    auto out = at::zeros(out_shape, x.options());
    if (valid.all().item<bool>()) return out.index_add_(0, seg, xf);
    auto keep = valid.nonzero().reshape({-1});
    return out.index_add_(0, seg.index_select(0, keep), xf.index_select(0, keep));
  });
}

st_t st_scatter_nd(st_t hi, st_t hu, const int32_t* shape, int rank) {
  return guard([&] {
    auto idx = on_device(T(hi)).to(at::kLong);
    const auto& u = on_device(T(hu));
    auto out = at::zeros(dims(shape, rank), u.options());
    int64_t k = idx.size(-1);
    std::vector<c10::optional<at::Tensor>> index;
    for (int64_t j = 0; j < k; j++) index.push_back(idx.select(-1, j));
    return out.index_put_(c10::List<c10::optional<at::Tensor>>(index), u, /*accumulate=*/true);
  });
}

st_t st_matmul(st_t a, st_t b, int ta, int tb) {
  return guard([&] {
    auto A = on_device(T(a));
    auto B = on_device(T(b));
    if (ta) A = A.transpose(-1, -2);
    if (tb) B = B.transpose(-1, -2);
    return at::matmul(A, B);
  });
}

st_t st_fused_matmul(st_t a, st_t b, int ta, int tb, st_t bias, int activation, st_t prelu, double alpha) {
  return guard([&] {
    auto A = on_device(T(a));
    auto B = on_device(T(b));
    if (ta) A = A.transpose(-1, -2);
    if (tb) B = B.transpose(-1, -2);
    at::Tensor y;
    if (bias != nullptr && A.dim() == 2 && B.dim() == 2 && T(bias).dim() <= 1) {
      y = at::addmm(on_device(T(bias)), A, B);
    } else {
      y = at::matmul(A, B);
      if (bias != nullptr) y = y + T(bias);
    }
    return activate(y, activation, prelu, alpha);
  });
}

st_t st_conv2d(st_t hx, st_t hf, const int32_t* strides, const int32_t* pads, const int32_t* dilations, int depthwise,
               st_t bias, int activation, st_t prelu, double alpha) {
  return guard([&] {
    auto x = nchw(on_device(T(hx)));
    auto w = conv_operand(oihw(on_device(T(hf)), depthwise != 0));
    int64_t groups = depthwise ? x.size(1) : 1;
    std::vector<int64_t> padding{pads[0], pads[2]};
    if (!symmetric(pads)) {
      x = at::constant_pad_nd(x, {pads[2], pads[3], pads[0], pads[1]}, 0);
      padding = {0, 0};
    }
    x = conv_operand(x);
    auto y = at::convolution(x, w, c10::nullopt, dims(strides, 2), padding, dims(dilations, 2), false, {0, 0},
                             groups);
    auto out = nhwc(y);
    if (bias != nullptr) out = out + on_device(T(bias));
    return activate(out, activation, prelu, alpha);
  });
}

st_t st_conv2d_backprop_input(st_t hdy, st_t hf, const int32_t* input_shape, const int32_t* strides,
                              const int32_t* pads, const int32_t* dilations, int depthwise) {
  return guard([&] {
    auto dy = conv_operand(nchw(on_device(T(hdy))));
    auto w = conv_operand(oihw(on_device(T(hf)), depthwise != 0));
    int64_t n = input_shape[0], h = input_shape[1], wd = input_shape[2], c = input_shape[3];
    bool sym = symmetric(pads);
    int64_t hp = sym ? h : h + pads[0] + pads[1];
    int64_t wp = sym ? wd : wd + pads[2] + pads[3];
    std::vector<int64_t> padding = sym ? std::vector<int64_t>{pads[0], pads[2]} : std::vector<int64_t>{0, 0};
    // Only the input's shape and memory format matter for the data gradient.
    auto input = at::empty({n, c, hp, wp}, dy.options().memory_format(
                                              g_device.is_cuda() ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
    int64_t groups = depthwise ? c : 1;
    auto grads = at::convolution_backward(dy, input, w, c10::nullopt, dims(strides, 2), padding, dims(dilations, 2),
                                          false, {0, 0}, groups, {true, false, false});
    auto dx = std::get<0>(grads);
    if (!sym) dx = dx.narrow(2, pads[0], h).narrow(3, pads[2], wd);
    return nhwc(dx);
  });
}

st_t st_conv2d_backprop_filter(st_t hx, st_t hdy, const int32_t* filter_shape, const int32_t* strides,
                               const int32_t* pads, const int32_t* dilations, int depthwise) {
  return guard([&] {
    auto x = nchw(on_device(T(hx)));
    auto dy = conv_operand(nchw(on_device(T(hdy))));
    bool sym = symmetric(pads);
    std::vector<int64_t> padding = sym ? std::vector<int64_t>{pads[0], pads[2]} : std::vector<int64_t>{0, 0};
    if (!sym) x = at::constant_pad_nd(x, {pads[2], pads[3], pads[0], pads[1]}, 0);
    x = conv_operand(x);
    int64_t fh = filter_shape[0], fw = filter_shape[1], fi = filter_shape[2], fo = filter_shape[3];
    std::vector<int64_t> wshape = depthwise ? std::vector<int64_t>{fi * fo, 1, fh, fw} : std::vector<int64_t>{fo, fi, fh, fw};
    auto weight = at::empty(wshape, dy.options());
    int64_t groups = depthwise ? fi : 1;
    auto grads = at::convolution_backward(dy, x, weight, c10::nullopt, dims(strides, 2), padding, dims(dilations, 2),
                                          false, {0, 0}, groups, {false, true, false});
    auto dw = std::get<1>(grads);
    if (depthwise) return dw.reshape({fi, fo, fh, fw}).permute({2, 3, 0, 1}).contiguous();
    return dw.permute({2, 3, 1, 0}).contiguous();
  });
}

st_t st_pool2d(int kind, st_t hx, const int32_t* window, const int32_t* strides, const int32_t* pads) {
  return guard([&] {
    auto x = nchw(on_device(T(hx)));
    std::vector<int64_t> k = dims(window, 2), s = dims(strides, 2);
    if (kind == 0) {
      auto padded = at::constant_pad_nd(x, {pads[2], pads[3], pads[0], pads[1]}, -INFINITY);
      return nhwc(at::max_pool2d(padded, k, s));
    }
    // Average over the window's valid (unpadded) elements, as tfjs: sum pool / count pool.
    auto padded = at::constant_pad_nd(x, {pads[2], pads[3], pads[0], pads[1]}, 0);
    auto ones = at::constant_pad_nd(at::ones({1, 1, x.size(2), x.size(3)}, x.options()),
                                    {pads[2], pads[3], pads[0], pads[1]}, 0);
    auto sum = at::avg_pool2d(padded, k, s, {0, 0}, false, true, 1);
    auto count = at::avg_pool2d(ones, k, s, {0, 0}, false, true, 1);
    return nhwc(sum / count);
  });
}

st_t st_pool2d_grad(int kind, st_t hdy, st_t hx, const int32_t* window, const int32_t* strides,
                    const int32_t* pads) {
  return guard([&] {
    auto x = nchw(on_device(T(hx)));
    auto dy = nchw(on_device(T(hdy)));
    std::vector<int64_t> k = dims(window, 2), s = dims(strides, 2);
    at::Tensor dpadded;
    if (kind == 0) {
      auto padded = at::constant_pad_nd(x, {pads[2], pads[3], pads[0], pads[1]}, -INFINITY).contiguous();
      auto r = at::max_pool2d_with_indices(padded, k, s);
      dpadded = at::max_pool2d_with_indices_backward(dy.contiguous(), padded, k, s, {0, 0}, {1, 1}, false,
                                                     std::get<1>(r));
    } else {
      auto padded = at::constant_pad_nd(x, {pads[2], pads[3], pads[0], pads[1]}, 0).contiguous();
      auto ones = at::constant_pad_nd(at::ones({1, 1, x.size(2), x.size(3)}, x.options()),
                                      {pads[2], pads[3], pads[0], pads[1]}, 0);
      auto count = at::avg_pool2d(ones, k, s, {0, 0}, false, true, 1);
      dpadded = at::avg_pool2d_backward((dy / count).contiguous(), padded, k, s, {0, 0}, false, true, 1);
    }
    auto dx = dpadded.narrow(2, pads[0], x.size(2)).narrow(3, pads[2], x.size(3));
    return nhwc(dx);
  });
}

st_t st_resize(st_t hx, const int32_t* row_idx, const float* row_w, int out_h, const int32_t* col_idx,
               const float* col_w, int out_w, int taps) {
  return guard([&] {
    auto x = on_device(T(hx));
    auto ri = table(row_idx, (int64_t)out_h * taps, at::kInt).reshape({taps, out_h});
    auto rw = table(row_w, (int64_t)out_h * taps, at::kFloat).reshape({taps, 1, out_h, 1, 1});
    auto ci = table(col_idx, (int64_t)out_w * taps, at::kInt).reshape({taps, out_w});
    auto cw = table(col_w, (int64_t)out_w * taps, at::kFloat).reshape({taps, 1, 1, out_w, 1});
    at::Tensor rows;
    for (int t = 0; t < taps; t++) {
      auto part = at::index_select(x, 1, ri[t]) * rw[t];
      rows = t == 0 ? part : rows + part;
    }
    at::Tensor out;
    for (int t = 0; t < taps; t++) {
      auto part = at::index_select(rows, 2, ci[t]) * cw[t];
      out = t == 0 ? part : out + part;
    }
    return out;
  });
}

st_t st_resize_grad(st_t hdy, const int32_t* row_idx, const float* row_w, int in_h, const int32_t* col_idx,
                    const float* col_w, int in_w, int taps) {
  return guard([&] {
    auto dy = on_device(T(hdy));
    int64_t n = dy.size(0), out_h = dy.size(1), out_w = dy.size(2), c = dy.size(3);
    auto ri = table(row_idx, out_h * taps, at::kInt).reshape({taps, out_h});
    auto rw = table(row_w, out_h * taps, at::kFloat).reshape({taps, 1, out_h, 1, 1});
    auto ci = table(col_idx, out_w * taps, at::kInt).reshape({taps, out_w});
    auto cw = table(col_w, out_w * taps, at::kFloat).reshape({taps, 1, 1, out_w, 1});
    auto mid = at::zeros({n, out_h, in_w, c}, dy.options());
    for (int t = 0; t < taps; t++) mid.index_add_(2, ci[t], dy * cw[t]);
    auto dx = at::zeros({n, in_h, in_w, c}, dy.options());
    for (int t = 0; t < taps; t++) dx.index_add_(1, ri[t], mid * rw[t]);
    return dx;
  });
}

int st_layer_norm(st_t hx, st_t hw, st_t hb, double eps, st_t* out) {
  return guard_int([&] {
    const auto& x = on_device(T(hx));
    int64_t d = x.size(-1);
    auto r = at::native_layer_norm(x, {d}, on_device(T(hw)), on_device(T(hb)), eps);
    out[0] = wrap(std::get<0>(r));
    out[1] = wrap(std::get<1>(r));
    out[2] = wrap(std::get<2>(r));
  });
}

int st_layer_norm_backward(st_t hdy, st_t hx, st_t hmean, st_t hrstd, st_t hw, st_t* out) {
  return guard_int([&] {
    const auto& x = on_device(T(hx));
    int64_t d = x.size(-1);
    auto w = on_device(T(hw));
    auto bias = at::zeros_like(w);
    auto r = at::native_layer_norm_backward(on_device(T(hdy)).contiguous(), x.contiguous(), {d}, T(hmean), T(hrstd),
                                            w, bias, {true, true, true});
    out[0] = wrap(std::get<0>(r));
    out[1] = wrap(std::get<1>(r));
    out[2] = wrap(std::get<2>(r));
  });
}

int st_batch_norm_train(st_t hx, st_t hw, st_t hb, double eps, st_t* out) {
  return guard_int([&] {
    const auto& x = on_device(T(hx));
    int64_t c = x.size(-1);
    auto x2 = x.reshape({-1, c});
    auto r = at::native_batch_norm(x2, on_device(T(hw)), on_device(T(hb)), {}, {}, true, 0.1, eps);
    auto var = at::var(x2, {0}, /*unbiased=*/false, /*keepdim=*/false);
    out[0] = wrap(std::get<0>(r).reshape(x.sizes()));
    out[1] = wrap(std::get<1>(r));
    out[2] = wrap(var);
    out[3] = wrap(std::get<2>(r));
  });
}

int st_batch_norm_backward(st_t hdy, st_t hx, st_t hmean, st_t hrstd, st_t hw, st_t* out) {
  return guard_int([&] {
    const auto& x = on_device(T(hx));
    int64_t c = x.size(-1);
    auto x2 = x.reshape({-1, c});
    auto dy2 = on_device(T(hdy)).reshape({-1, c});
    auto r = at::native_batch_norm_backward(dy2, x2, on_device(T(hw)), {}, {}, T(hmean), T(hrstd), true, 1e-5,
                                            {true, true, true});
    out[0] = wrap(std::get<0>(r).reshape(x.sizes()));
    out[1] = wrap(std::get<1>(r));
    out[2] = wrap(std::get<2>(r));
  });
}

st_t st_adam_clip(const st_t* hp, const st_t* hg, const st_t* hm, const st_t* hv, int n, double lr, double beta1,
                  double beta2, double eps, int64_t step, double max_norm) {
  return guard([&] {
    // Bias corrections in float64 from the step count, as training/adam.ts computes them.
    double bc1 = 1 - std::pow(beta1, (double)step);
    double bc2_sqrt = std::sqrt(1 - std::pow(beta2, (double)step));
    std::vector<at::Tensor> P, G, M, V;
    P.reserve(n);
    G.reserve(n);
    M.reserve(n);
    V.reserve(n);
    for (int i = 0; i < n; i++) {
      // In-place updates must not reach another holder of the same storage (a tfjs clone or an async read
      // keeps one): such a tensor is replaced by a private copy first.
      for (auto* list : {&hp, &hm, &hv}) {
        auto& t = T(const_cast<st_t>((*list)[i]));
        if (t.use_count() > 1 || !t.is_contiguous() || (t.has_storage() && t.storage().use_count() > 1)) {
          t = t.clone(at::MemoryFormat::Contiguous);
        }
      }
      P.push_back(T(const_cast<st_t>(hp[i])));
      // Contiguous: the fused and foreach kernels walk each tensor's storage linearly.
      G.push_back(on_device(T(const_cast<st_t>(hg[i]))).contiguous());
      M.push_back(T(const_cast<st_t>(hm[i])));
      V.push_back(T(const_cast<st_t>(hv[i])));
    }
    auto norms = at::_foreach_norm(G, 2);
    auto total = at::linalg_vector_norm(at::stack(norms), 2);
    at::Tensor coef;
    if (max_norm > 0) {
      coef = at::clamp_max(max_norm / (total + 1e-6), 1.0);
    }
    std::vector<at::Tensor> Gc;
    if (max_norm > 0) {
      Gc.reserve(n);
      for (auto& g : G) Gc.push_back(g * coef);
    } else {
      Gc = G;
    }
    at::_foreach_mul_(M, beta1);
    at::_foreach_add_(M, Gc, 1 - beta1);
    at::_foreach_mul_(V, beta2);
    at::_foreach_addcmul_(V, Gc, Gc, 1 - beta2);
    auto denom = at::_foreach_sqrt(V);
    at::_foreach_div_(denom, bc2_sqrt);
    at::_foreach_add_(denom, eps);
    at::_foreach_addcdiv_(P, M, denom, -lr / bc1);
    return total;
  });
}

st_t st_dropout_mask(const int32_t* shape, int rank, double rate, uint64_t seed) {
  return guard([&] {
    auto gen = at::globalContext().defaultGenerator(g_device);
    {
      // Released before bernoulli_, which takes the same (non-recursive) generator lock itself.
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_current_seed(seed);
    }
    auto keep = at::empty(dims(shape, rank), options(ST_F32)).bernoulli_(1 - rate, gen);
    return keep * (1.0 / (1 - rate));
  });
}

}  // extern "C"
