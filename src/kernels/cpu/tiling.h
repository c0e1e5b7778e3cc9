#pragma once
// Cache blocking shared by the distance kernels: work items are (row block of x) x (row block of w),
// sized so that a block of w rows stays in L2 while every x row of the block streams past it.

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

namespace lipkit::kernels::cpu {

struct Tiling {
  int64_t rows, cols, row_block, col_block, row_blocks, col_blocks;
  /// rows: B (x rows), cols: M (w rows), n: inner length, elem: bytes per element, col_multiple:
  /// the register tile width the column block must be a multiple of.
  Tiling(int64_t rows_, int64_t cols_, int64_t n, int64_t elem, int64_t col_multiple)
      : rows(rows_), cols(cols_) {
    const int64_t l2_budget = 192 * 1024;
    col_block = std::max<int64_t>(col_multiple, l2_budget / std::max<int64_t>(1, n * elem) /
                                                    col_multiple * col_multiple);
    col_block = std::min(col_block, (cols + col_multiple - 1) / col_multiple * col_multiple);
    row_block = 64;
    row_blocks = (rows + row_block - 1) / row_block;
    col_blocks = (cols + col_block - 1) / col_block;
  }
  /// f(b0, b1, m0, m1) on every item, in parallel over the cores.
  template <typename F>
  void run(const F& f) const {
    at::parallel_for(0, row_blocks * col_blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t rb = t % row_blocks, cb = t / row_blocks;
        const int64_t b0 = rb * row_block, m0 = cb * col_block;
        f(b0, std::min(rows, b0 + row_block), m0, std::min(cols, m0 + col_block));
      }
    });
  }
  /// f(b, m) for every pair, block by block, in parallel.
  template <typename F>
  void run_pairs(const F& f) const {
    run([&](int64_t b0, int64_t b1, int64_t m0, int64_t m1) {
      for (int64_t b = b0; b < b1; ++b)
        for (int64_t m = m0; m < m1; ++m) f(b, m);
    });
  }
};

}  // namespace lipkit::kernels::cpu
