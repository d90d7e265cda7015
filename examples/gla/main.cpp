// One gated linear attention layer from a flash-linear-attention checkpoint (--prefix
// model.layers.0.attn. for a whole GLA model): bash examples/run.sh runs it on a random
// layer; --help lists the options.
#include "gla.hpp"

int main(int argc, char** argv) {
    seqmix_examples::demo_description d{"gla", "a gated linear attention layer (fla's GLA), prefill and decode",
                                        /*reads_token_ids=*/false};
    d.prefix_flag = true;
    return seqmix_examples::recurrent_demo_main<seqmix_examples::gla_layer<>>(d, argc, argv);
}
