#pragma once
// Each bench_<op>.cpp registers its benchmarks; bench_main.cpp calls them all.
void register_ceiling_benchmarks();
void register_softmax_attention_benchmarks();
void register_linear_attention_benchmarks();
void register_chunk_size_sweep();
void register_decode_validation_benchmark();
