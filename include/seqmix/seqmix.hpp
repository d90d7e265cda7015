#pragma once
// seqmix: efficient attention and sequence-mixing kernels for CPUs (header-only, C++17).
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/tensor.hpp"
#include "core/tensor_view.hpp"
#include "ops/gated_linear_attention.hpp"
#include "ops/linear_attention.hpp"
#include "ops/softmax_attention.hpp"
#include "reference/gated_linear_attention.hpp"
#include "reference/linear_attention.hpp"
#include "reference/softmax_attention.hpp"
#include "version.hpp"
