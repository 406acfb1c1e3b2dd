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
  return (two_sided(cell, opt) ? 2 : 1) * d.rows() * d.GH();  // dG
}

int bias_rows(Cell cell, const SeqOptions& opt) { return two_sided(cell, opt) ? 2 : 1; }

index_t train_cache_columns(Cell cell, int a, const Dims& d) {
  if (!cell_info(cell).has_cache_array(a)) return 0;
  return a == kGatesArray ? d.GH() : d.H;
}

index_t train_cache_elements(Cell cell, const Dims& d) {
  index_t cols = 0;
  for (int a = 0; a < kCacheArrayCount; ++a) cols += train_cache_columns(cell, a, d);
  return d.rows() * cols;
}

index_t forward_call_elements(Cell cell, const Dims& d, const SeqOptions& opt, bool training) {
  const index_t outputs = d.rows() * d.H + cell_info(cell).states * d.B * d.H;
  const index_t kept = training ? train_cache_elements(cell, d) + d.rows() * d.I : 0;
  return outputs + forward_workspace_size(cell, d, opt) + kept;
}

index_t backward_call_elements(Cell cell, const Dims& d, const SeqOptions& opt, bool has_bias) {
  const index_t grads = d.rows() * d.I + (d.I + d.H) * d.GH() +
                        (has_bias ? bias_rows(cell, opt) * d.GH() : 0) +
                        cell_info(cell).states * d.B * d.H;
  return grads + backward_workspace_size(cell, d, opt);
}

}  // namespace rnnkit
