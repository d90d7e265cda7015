// Mamba from a Hugging Face checkpoint (MambaModel / MambaForCausalLM): bash examples/run.sh
// runs it on a random model; --help lists the options.
#include "mamba.hpp"

int main(int argc, char** argv) {
    const seqmix_examples::demo_description d{"mamba", "Mamba (selective state spaces), prefill and decode",
                                              /*reads_token_ids=*/true};
    return seqmix_examples::recurrent_demo_main<seqmix_examples::mamba_model<>>(d, argc, argv);
}
