#pragma once
// The two tile engines of the attention main loop. Both hold the query rows of one work
// unit and its softmax_state, and run a key tile in three steps: scores (S = Q K^T),
// softmax (logits transform, mask, online-softmax update) and accumulate (O += P V).
//   rows_in_lanes.hpp  prefill: query rows along the lanes, lane-panel GEMMs
//   keys_in_lanes.hpp  decode: keys along the lanes, each key row loaded once for all rows
#include "attention_dims.hpp"
#include "keys_in_lanes.hpp"
#include "rows_in_lanes.hpp"
