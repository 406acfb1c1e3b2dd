// Sizes of the caller-provided workspace, of the training cache and of whole calls, per cell:
// the one place they are computed (cells.hpp documents each). Per-cell facts come from the
// cell list (cells.def), never from a test of which cell it is.
#include "rnnkit/cells.hpp"

namespace rnnkit {

namespace {
// A kOptResetAfter cell with reset_after: input-side and recurrent-side bias (and dG) apart.
bool two_sided(Cell cell, const SeqOptions& opt) {
  return cell_info(cell).reads(kOptResetAfter) && opt.reset_after;
}
}  // namespace

index_t forward_workspace_size(Cell, const Dims& d, const SeqOptions&) {
  return d.rows() * d.GH();  // XP: the input projection of every step
}

index_t backward_workspace_size(Cell cell, const Dims& d, const SeqOptions& opt) {
  // dG, and for projected cells dR (B*T, P): dL/dr_t, for dprojection_kernel.
  return (two_sided(cell, opt) ? 2 : 1) * d.rows() * d.GH() +
         (cell_info(cell).projected ? d.rows() * d.P : 0);
}

int bias_rows(Cell cell, const SeqOptions& opt) { return two_sided(cell, opt) ? 2 : 1; }

index_t train_cache_columns(Cell cell, int a, const Dims& d) {
  if (!cell_info(cell).has_cache_array(a)) return 0;
  if (a == kGatesArray) return d.GH();
  return a == kHPrevArray ? d.S() : d.H;  // h_prev is P wide for projected cells
}

index_t train_cache_elements(Cell cell, const Dims& d) {
  index_t cols = 0;
  for (int a = 0; a < kCacheArrayCount; ++a) cols += train_cache_columns(cell, a, d);
  return d.rows() * cols;
}

index_t forward_call_elements(Cell cell, const Dims& d, const SeqOptions& opt, bool training) {
  // y and h_last are S wide (H, or P projected); c_last H wide.
  const index_t outputs =
      d.rows() * d.S() + d.B * d.S() + (cell_info(cell).states - 1) * d.B * d.H;
  const index_t kept = training ? train_cache_elements(cell, d) + d.rows() * d.I : 0;
  return outputs + forward_workspace_size(cell, d, opt) + kept;
}

index_t backward_call_elements(Cell cell, const Dims& d, const SeqOptions& opt, bool has_bias) {
  const index_t grads = d.rows() * d.I + (d.I + d.S()) * d.GH() + d.H * d.P +
                        (has_bias ? bias_rows(cell, opt) * d.GH() : 0) + d.B * d.S() +
                        (cell_info(cell).states - 1) * d.B * d.H;
  return grads + backward_workspace_size(cell, d, opt);
}

}  // namespace rnnkit
