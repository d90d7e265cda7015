// One Gated DeltaNet layer from a Hugging Face checkpoint (Qwen3-Next's linear attention,
// --prefix model.layers.0.linear_attn. for a whole model): bash examples/run.sh runs it on a
// random layer; --help lists the options.
#include "gated_deltanet.hpp"

int main(int argc, char** argv) {
    seqmix_examples::demo_description d{"gated_deltanet", "a Gated DeltaNet layer (Qwen3-Next), prefill and decode",
                                        /*reads_token_ids=*/false};
    d.prefix_flag = true;
    return seqmix_examples::recurrent_demo_main<seqmix_examples::gated_deltanet_layer<>>(d, argc, argv);
}
