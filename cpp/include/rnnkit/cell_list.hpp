// The cells as data: the Cell enum and a constexpr table, both generated from cells.def.
// Code that differs per cell reads this table (or indexes arrays by Cell) instead of
// switching over Cell; the few switches left have no `default:` and the build turns
// -Wswitch into an error, so a new cell cannot silently run another cell's code.
#pragma once

namespace rnnkit {

// The arrays of a TrainCache (cells.hpp), in this order; a cell's `cache` column is a set
// of these bits.
enum CacheArray : int {
  kGatesArray = 0, kHPrevArray, kCPrevArray, kAuxArray, kMArray, kCacheArrayCount
};
enum : unsigned {
  kCacheGates = 1u << kGatesArray,  // (B*T, G*H) activated gates
  kCacheHPrev = 1u << kHPrevArray,  // (B*T, H)   state entering the step (P wide: proj)
  kCacheCPrev = 1u << kCPrevArray,  // (B*T, H)   cell state entering the step
  kCacheAux = 1u << kAuxArray,      // (B*T, H)   per-cell extra (cells.hpp, TrainCache)
  kCacheM = 1u << kMArray,          // (B*T, H)   proj cells: m_t, the input of the projection
};
inline constexpr const char* kCacheArrayNames[kCacheArrayCount] = {"gates", "h_prev", "c_prev",
                                                                    "aux", "m"};

// SeqOptions fields a cell reads besides go_backwards (a cell's `options` column), in the
// order they appear as keyword arguments of <name>_forward.
enum : unsigned {
  kOptActivation = 1u << 0,           // SeqOptions::activation (candidate, LSTM cell output)
  kOptRecurrentActivation = 1u << 1,  // SeqOptions::recurrent_activation (gates)
  kOptResetAfter = 1u << 2,  // SeqOptions::reset_after (two-row bias, two-sided dG)
};

enum class Cell : int {
#define RNNKIT_CELL(Enum, name, gates, states, cache, options, proj) Enum,
#include "rnnkit/cells.def"
#undef RNNKIT_CELL
};

inline constexpr int kCellCount = 0
#define RNNKIT_CELL(Enum, name, gates, states, cache, options, proj) +1
#include "rnnkit/cells.def"
#undef RNNKIT_CELL
    ;

struct CellInfo {
  Cell cell;
  const char* name;        // "lstm": the Python functions lstm_forward / lstm_backward
  const char* cache_name;  // "LSTMCache": how messages name this cell's cache
  int gates;               // G
  int states;              // 1 (h) or 2 (h, c)
  unsigned cache;          // kCache* bits
  unsigned options;        // kOpt* bits
  bool projected;          // projection_kernel (H, P): h, y P wide (cells.def, `proj`)

  constexpr bool has_cache_array(int a) const { return (cache >> a) & 1u; }
  constexpr bool reads(unsigned option) const { return (options & option) != 0; }
};

inline constexpr CellInfo kCells[kCellCount] = {
#define RNNKIT_CELL(Enum, name, gates, states, cache, options, proj) \
  {Cell::Enum, #name, #Enum "Cache", gates, states, cache, options, proj != 0},
#include "rnnkit/cells.def"
#undef RNNKIT_CELL
};

constexpr const CellInfo& cell_info(Cell cell) { return kCells[static_cast<int>(cell)]; }

// Gate counts G: the trailing axis of kernel / recurrent_kernel is G*H wide, gate blocks
// side by side in Keras order: SimpleRNN [h], LSTM [i | f | c | o], GRU [z | r | h].
constexpr int gate_count(Cell cell) { return cell_info(cell).gates; }
constexpr const char* cell_name(Cell cell) { return cell_info(cell).name; }

namespace cell_list_checks {
constexpr bool well_formed() {
  for (int i = 0; i < kCellCount; ++i) {
    const CellInfo& c = kCells[i];
    if (static_cast<int>(c.cell) != i || c.states < 1 || c.states > 2) return false;
    // The recurrent tiles are compiled for 1..4 gates (recurrent_tile.hpp, gate_tile_matmul).
    if (c.gates < 1 || c.gates > 4) return false;
    if (!c.has_cache_array(kGatesArray) || !c.has_cache_array(kHPrevArray)) return false;
    if (c.has_cache_array(kCPrevArray) != (c.states == 2)) return false;
    // A projected cell caches m_t (the projection's input) for dprojection_kernel.
    if (c.has_cache_array(kMArray) != c.projected) return false;
  }
  return true;
}
static_assert(well_formed(),
              "cells.def: each cell needs 1 to 4 gates (recurrent_tile.hpp's gate_tile_matmul), "
              "states 1 or 2, the gates and h_prev cache "
              "arrays, c_prev exactly when it has a cell state and m exactly when it is "
              "projected");
}  // namespace cell_list_checks

}  // namespace rnnkit
