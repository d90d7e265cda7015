// Mamba-2 from a Hugging Face checkpoint (Mamba2Model / Mamba2ForCausalLM): bash
// examples/run.sh runs it on a random model; --help lists the options.
#include "mamba2.hpp"

int main(int argc, char** argv) {
    const seqmix_examples::demo_description d{"mamba2", "Mamba-2 (state space duality), prefill and decode",
                                              /*reads_token_ids=*/true};
    return seqmix_examples::recurrent_demo_main<seqmix_examples::mamba2_model<>>(d, argc, argv);
}
