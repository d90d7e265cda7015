#pragma once
// What each translation unit of the ABI test reports about the seqmix code it runs.
struct abi_report {
    const char* abi;                 // seqmix::abi_name() as seen by the unit
    int float_lanes;                 // simd::width<float>
    bool openmp;                     // built with OpenMP
    double attention_error;          // causal softmax_attention vs the double reference
    double gla_error;                // gated_linear_attention vs the double reference
    const void* attention_symbol;    // &seqmix::softmax_attention<...> as the unit sees it
    unsigned long long output_bits;  // a hash of the bits of both operators' outputs
    bool executor_same_bits;         // the same outputs run on a seqmix::thread_pool of 3
};
abi_report abi_tu_avx2();
abi_report abi_tu_sse2();
abi_report abi_tu_native_omp();     // this build's target, with OpenMP
abi_report abi_tu_native_serial();  // the same target without OpenMP
