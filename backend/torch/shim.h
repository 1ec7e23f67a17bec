/*
 * strata's C ABI over ATen (PyTorch's kernel library), loaded by backend/torch/ffi.ts with Deno.dlopen.
 *
 * A tensor handle is an owned `at::Tensor*` (st_t). Functions that make tensors return a new handle, or NULL
 * on failure with the reason in st_last_error(); functions returning int return 0 on success, -1 on failure.
 * Shapes and axes are int32 arrays (tfjs's own limits); dtypes are ST_F32, ST_I32, ST_BOOL.
 */
#ifndef STRATA_TORCH_SHIM_H
#define STRATA_TORCH_SHIM_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void* st_t;

enum { ST_F32 = 0, ST_I32 = 1, ST_BOOL = 2 };

/* Set-up and introspection. */
const char* st_last_error(void);
const char* st_version(void);
int st_abi_version(void);
int st_cuda_available(void);
int st_init(int use_cuda, int threads, int tf32_matmul, int tf32_cudnn, int cudnn_benchmark);
const char* st_device_name(void);
int st_num_threads(void);
/* out[0] live handles, out[1] bytes of the distinct storages they hold, out[2] CUDA bytes allocated now
   (caching allocator, 0 on the CPU), out[3] CUDA peak bytes. */
int st_memory(double* out);
int st_synchronize(void);

/* Host <-> tensor. */
st_t st_from_host(const void* data, int dtype, const int32_t* shape, int rank);
int st_to_host(st_t t, void* out, int64_t nbytes);
/* A second handle on the same tensor (cheap: shares storage), e.g. to keep it alive for an async read. */
st_t st_ref(st_t t);
void st_free(st_t t);

/* Element-wise. out_dtype: the tfjs dtype of the result (the result is cast to it when ATen's differs). */
st_t st_unary(int op, st_t x, int out_dtype);
st_t st_unary_scalar(int op, st_t x, double a, double b, int out_dtype);
st_t st_binary(int op, st_t a, st_t b, int out_dtype);
st_t st_select(st_t cond, st_t a, st_t b);
st_t st_cast(st_t x, int dtype);
st_t st_fill(const int32_t* shape, int rank, double value, int dtype);
st_t st_range(double start, double step, int64_t n, int dtype);

/* Reductions over `axes` (n_axes may be 0: a copy). */
st_t st_reduce(int op, st_t x, const int32_t* axes, int n_axes, int keep_dims, int out_dtype);
st_t st_arg_reduce(int op, st_t x, int axis);
st_t st_softmax(st_t x, int axis, int log);
st_t st_cumsum(st_t x, int axis, int exclusive, int reverse, int out_dtype);
st_t st_cumprod(st_t x, int axis, int exclusive, int reverse, int out_dtype);
int st_topk(st_t x, int k, int sorted, st_t* out_values_indices);

/* Shape and layout. */
st_t st_reshape(st_t x, const int32_t* shape, int rank);
st_t st_transpose(st_t x, const int32_t* perm, int rank);
st_t st_strided_slice(st_t x, const int32_t* begin, const int32_t* end, const int32_t* strides, int rank);
st_t st_concat(const st_t* xs, int n, int axis);
st_t st_stack(const st_t* xs, int n, int axis);
int st_unstack(st_t x, int axis, st_t* out);
int st_split(st_t x, const int32_t* sizes, int n, int axis, st_t* out);
st_t st_tile(st_t x, const int32_t* reps, int rank);
st_t st_pad(st_t x, const int32_t* before_after, int rank, double value);
st_t st_mirror_pad(st_t x, const int32_t* before_after, int rank, int reflect);
st_t st_reverse(st_t x, const int32_t* axes, int n_axes);
st_t st_broadcast_to(st_t x, const int32_t* shape, int rank);
st_t st_gather(st_t x, st_t indices, int axis, int batch_dims);
st_t st_gather_nd(st_t x, st_t indices);
st_t st_one_hot(st_t indices, int depth, double on, double off, int dtype);
st_t st_unsorted_segment_sum(st_t x, st_t segment_ids, int num_segments);
st_t st_scatter_nd(st_t indices, st_t updates, const int32_t* shape, int rank);

/* Linear algebra and convolution (tfjs layouts: NHWC maps, HWIO filters). */
st_t st_matmul(st_t a, st_t b, int transpose_a, int transpose_b);
/* activation: 0 none, 1 relu, 2 relu6, 3 elu, 4 sigmoid, 5 leaky relu (alpha), 6 prelu (prelu_weights) */
st_t st_fused_matmul(st_t a, st_t b, int transpose_a, int transpose_b, st_t bias, int activation, st_t prelu_weights,
                     double alpha);
/* pads: top, bottom, left, right. */
st_t st_conv2d(st_t x, st_t filter, const int32_t* strides, const int32_t* pads, const int32_t* dilations,
               int depthwise, st_t bias, int activation, st_t prelu_weights, double alpha);
st_t st_conv2d_backprop_input(st_t dy, st_t filter, const int32_t* input_shape, const int32_t* strides,
                              const int32_t* pads, const int32_t* dilations, int depthwise);
st_t st_conv2d_backprop_filter(st_t x, st_t dy, const int32_t* filter_shape, const int32_t* strides,
                               const int32_t* pads, const int32_t* dilations, int depthwise);
/* kind 0 max, 1 avg; pads top, bottom, left, right. */
st_t st_pool2d(int kind, st_t x, const int32_t* window, const int32_t* strides, const int32_t* pads);
st_t st_pool2d_grad(int kind, st_t dy, st_t x, const int32_t* window, const int32_t* strides, const int32_t* pads);
/* Separable resampling of NHWC maps: out[y][x] = Σ over the two taps of rows/cols with weights (host-computed
   index and weight tables, so every tfjs resize mode is exact). */
st_t st_resize(st_t x, const int32_t* row_idx, const float* row_w, int out_h, const int32_t* col_idx,
               const float* col_w, int out_w, int taps);
st_t st_resize_grad(st_t dy, const int32_t* row_idx, const float* row_w, int in_h, const int32_t* col_idx,
                    const float* col_w, int in_w, int taps);

/* Fused normalisation over the last axis (LayerNorm) or all but the last (BatchNorm, train mode). */
int st_layer_norm(st_t x, st_t weight, st_t bias, double eps, st_t* out_y_mean_rstd);
int st_layer_norm_backward(st_t dy, st_t x, st_t mean, st_t rstd, st_t weight, st_t* out_dx_dw_db);
int st_batch_norm_train(st_t x, st_t weight, st_t bias, double eps, st_t* out_y_mean_var_rstd);
int st_batch_norm_backward(st_t dy, st_t x, st_t mean, st_t rstd, st_t weight, st_t* out_dx_dw_db);

/* Clips `grads` by their global L2 norm (coefficient min(1, max_norm / (norm + 1e-6)); max_norm <= 0: no
   clipping) and applies Adam update number `step` (1-based) in place to params, exp_avg, exp_avg_sq. Returns the norm before
   clipping as a new 0-d handle. */
st_t st_adam_clip(const st_t* params, const st_t* grads, const st_t* exp_avg, const st_t* exp_avg_sq, int n,
                  double lr, double beta1, double beta2, double eps, int64_t step, double max_norm);
/* Dropout mask scaled by 1/(1-rate), from ATen's generator seeded with `seed`. */
st_t st_dropout_mask(const int32_t* shape, int rank, double rate, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif
