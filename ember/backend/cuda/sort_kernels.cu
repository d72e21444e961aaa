// CUDA sort, top-k and cumulative sum (see sort_kernels.h).
//
// Sort: every element becomes an unsigned radix key whose ascending order is the
// CPU comparator's order (NaN canonicalised to one largest key, -0 to +0, signed
// and floating-point bit patterns made monotone; descending inverts the key, so
// NaN comes first and ties still keep ascending positions), the lines are laid
// out one after another, and CUB's stable segmented radix sort sorts the
// (key, position) pairs of every line at once. The first k positions of each
// line then pick the original elements. Top-k sorts the whole line: fine for the
// sizes models use (a vocabulary of 50257 is one segment).
//
// Cumsum: one block per line with a CUB block scan when the axis is innermost
// and long; otherwise one thread per line walking the axis (coalesced across
// the inner positions).
#include "ember/backend/cuda/sort_kernels.h"

#include <cub/block/block_scan.cuh>
#include <cub/device/device_segmented_sort.cuh>

#include "ember/backend/cuda/kernel_utils.cuh"

namespace ember::cuda {
namespace {

// ---- sort keys -----------------------------------------------------------------

template <typename T> struct key_type { using type = uint8_t; };  // uint8_t, bool
template <> struct key_type<float> { using type = uint32_t; };
template <> struct key_type<double> { using type = uint64_t; };
template <> struct key_type<__nv_bfloat16> { using type = uint16_t; };
template <> struct key_type<__half> { using type = uint16_t; };
template <> struct key_type<int32_t> { using type = uint32_t; };
template <> struct key_type<int64_t> { using type = uint64_t; };
template <typename T> using radix_key_t = typename key_type<T>::type;

// IEEE bits (NaN and zero already canonical) to an unsigned key in numeric order.
template <typename K>
__device__ __forceinline__ K float_bits_key(K bits) {
  constexpr K sign = K(K(1) << (sizeof(K) * 8 - 1));
  return (bits & sign) ? K(~bits) : K(bits | sign);
}

__device__ __forceinline__ uint16_t half_bits(__nv_bfloat16 v) { return __bfloat16_as_ushort(v); }
__device__ __forceinline__ uint16_t half_bits(__half v) { return __half_as_ushort(v); }

template <typename T>
__device__ __forceinline__ radix_key_t<T> sort_key(T v) {
  using K = radix_key_t<T>;
  if constexpr (std::is_same_v<T, float>) {
    K b = v != v ? K(0x7fc00000u) : (v == 0.0f ? K(0) : K(__float_as_uint(v)));
    return float_bits_key<K>(b);
  } else if constexpr (std::is_same_v<T, double>) {
    K b = v != v ? K(0x7ff8000000000000ull) : (v == 0.0 ? K(0) : K(__double_as_longlong(v)));
    return float_bits_key<K>(b);
  } else if constexpr (std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>) {
    constexpr bool bf = std::is_same_v<T, __nv_bfloat16>;
    K b = half_bits(v);
    K mag = K(b & 0x7fffu);
    K inf = bf ? K(0x7f80u) : K(0x7c00u);
    if (mag > inf) b = bf ? K(0x7fc0u) : K(0x7e00u);  // NaN
    else if (mag == 0) b = 0;                          // -0 == +0
    return float_bits_key<K>(b);
  } else if constexpr (std::is_same_v<T, int32_t> || std::is_same_v<T, int64_t>) {
    constexpr K sign = K(K(1) << (sizeof(K) * 8 - 1));
    return K(K(v) ^ sign);
  } else {
    return K(v);  // uint8_t, bool
  }
}

template <typename T>
void make_keys(const T* x, radix_key_t<T>* keys, int64_t* pos, int64_t total, int64_t n, int64_t inner, bool descending) {
  using K = radix_key_t<T>;
  for_each_index(total, "sort", [=] __device__(int64_t t) {
    int64_t line = t / n, j = t - line * n;
    int64_t o = line / inner, i = line - o * inner;
    K key = sort_key<T>(x[(o * n + j) * inner + i]);
    keys[t] = descending ? K(~key) : key;
    pos[t] = j;
  });
}

void make_offsets(int64_t* offsets, int64_t lines, int64_t n) {
  for_each_index(lines + 1, "sort", [=] __device__(int64_t l) { offsets[l] = l * n; });
}

template <typename T>
void write_sorted(const T* x, const int64_t* sorted, T* values, int64_t* indices, int64_t outer, int64_t n, int64_t k,
                  int64_t inner) {
  for_each_index(outer * k * inner, "sort", [=] __device__(int64_t t) {
    int64_t r = t / inner, i = t - r * inner;
    int64_t o = r / k, kk = r - o * k;
    int64_t from = sorted[(o * inner + i) * n + kk];
    values[t] = x[(o * n + from) * inner + i];  // the original element, bit for bit
    indices[t] = from;
  });
}

template <typename T>
void sort_typed(const Tensor& x, int64_t outer, int64_t n, int64_t inner, int64_t k, bool descending, Tensor& values,
                Tensor& indices) {
  using K = radix_key_t<T>;
  const Device dev = x.device();
  const int64_t lines = outer * inner, total = lines * n;
  DType key_dtype = sizeof(K) == 1 ? DType::u8 : sizeof(K) == 2 ? DType::bf16 : sizeof(K) == 4 ? DType::i32 : DType::i64;
  Tensor keys_in = Tensor::empty({total}, key_dtype, dev), keys_out = Tensor::empty({total}, key_dtype, dev);
  Tensor pos_in = Tensor::empty({total}, DType::i64, dev), pos_out = Tensor::empty({total}, DType::i64, dev);
  Tensor offsets = Tensor::empty({lines + 1}, DType::i64, dev);
  K* kin = static_cast<K*>(keys_in.raw_data());
  K* kout = static_cast<K*>(keys_out.raw_data());
  int64_t* pin = data_of<int64_t>(pos_in);
  int64_t* pout = data_of<int64_t>(pos_out);
  int64_t* off = data_of<int64_t>(offsets);

  make_keys<T>(data_of<T>(x), kin, pin, total, n, inner, descending);
  make_offsets(off, lines, n);
  size_t temp_bytes = 0;
  check(cub::DeviceSegmentedSort::StableSortPairs(nullptr, temp_bytes, kin, kout, pin, pout, total, lines, off, off + 1,
                                                  stream()),
        "sort");
  Tensor temp = Tensor::empty({int64_t(std::max<size_t>(temp_bytes, 1))}, DType::u8, dev);
  check(cub::DeviceSegmentedSort::StableSortPairs(temp.raw_data(), temp_bytes, kin, kout, pin, pout, total, lines, off,
                                                  off + 1, stream()),
        "sort");
  check_launch("sort");
  write_sorted<T>(data_of<T>(x), pout, data_of<T>(values), data_of<int64_t>(indices), outer, n, k, inner);
}

// ---- cumsum ----------------------------------------------------------------------

template <typename T>
using scan_t = std::conditional_t<std::is_integral_v<T>, int64_t, double>;

// One thread per line: coalesced across `inner`.
template <typename T>
void cumsum_lines(const T* x, T* out, int64_t lines, int64_t n, int64_t inner, bool reverse) {
  using A = scan_t<T>;
  for_each_index(lines, "cumsum", [=] __device__(int64_t l) {
    int64_t o = l / inner, i = l - o * inner;
    const int64_t base = o * n * inner + i;
    A acc = A(0);
    for (int64_t p = 0; p < n; ++p) {
      int64_t e = base + (reverse ? n - 1 - p : p) * inner;
      acc += A(load(x + e));
      store(out + e, acc);
    }
  });
}

constexpr int kScanThreads = 256;
constexpr int kScanItems = 4;

template <typename A>
struct RunningPrefix {
  A total;
  __device__ A operator()(A block_sum) {
    A before = total;
    total += block_sum;
    return before;
  }
};

// One block per contiguous line (inner == 1): tiles of kScanThreads * kScanItems,
// each thread scanning kScanItems consecutive elements serially.
template <typename T>
__global__ void cumsum_block_kernel(const T* x, T* out, int64_t lines, int64_t n, bool reverse) {
  using A = scan_t<T>;
  using Scan = cub::BlockScan<A, kScanThreads>;
  __shared__ typename Scan::TempStorage temp;
  constexpr int64_t tile = int64_t(kScanThreads) * kScanItems;
  for (int64_t line = blockIdx.x; line < lines; line += gridDim.x) {
    const T* src = x + line * n;
    T* dst = out + line * n;
    RunningPrefix<A> prefix{A(0)};
    for (int64_t t0 = 0; t0 < n; t0 += tile) {
      A v[kScanItems];
      A sum = A(0);
      for (int q = 0; q < kScanItems; ++q) {
        int64_t p = t0 + int64_t(threadIdx.x) * kScanItems + q;
        v[q] = p < n ? A(load(src + (reverse ? n - 1 - p : p))) : A(0);
        sum += v[q];
      }
      A before;
      Scan(temp).ExclusiveSum(sum, before, prefix);
      __syncthreads();  // temp is reused by the next tile
      for (int q = 0; q < kScanItems; ++q) {
        int64_t p = t0 + int64_t(threadIdx.x) * kScanItems + q;
        before += v[q];
        if (p < n) store(dst + (reverse ? n - 1 - p : p), before);
      }
    }
  }
}

template <typename T>
void cumsum_typed(const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool reverse, Tensor& out) {
  if constexpr (std::is_same_v<T, bool>) {
    fail("cumsum", "bool tensors must be cast to an integer type first");
  } else {
    const T* xp = data_of<T>(x);
    T* op = data_of<T>(out);
    if (inner == 1 && n >= 2048) {
      unsigned blocks = unsigned(std::min<int64_t>(outer, 65535));
      cumsum_block_kernel<T><<<blocks, kScanThreads, 0, stream()>>>(xp, op, outer, n, reverse);
      check_launch("cumsum");
    } else {
      cumsum_lines<T>(xp, op, outer * inner, n, inner, reverse);
    }
  }
}

}  // namespace

void sort_lines(const Tensor& x, int64_t outer, int64_t n, int64_t inner, int64_t k, bool descending,
                Tensor& values, Tensor& indices) {
  if (outer * inner == 0 || k == 0) return;
  visit_device_dtype(x.dtype(), "sort", [&]<typename T>() {
    sort_typed<T>(x, outer, n, inner, k, descending, values, indices);
  });
}

void cumsum(const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool reverse, Tensor& out) {
  if (outer * n * inner == 0) return;
  visit_device_dtype(x.dtype(), "cumsum", [&]<typename T>() { cumsum_typed<T>(x, outer, n, inner, reverse, out); });
}

}  // namespace ember::cuda
