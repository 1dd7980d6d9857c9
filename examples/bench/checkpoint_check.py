"""How long `omnigraph validate GRAPH --checkpoint DIR` takes on a checkpoint the size of the released
Qwen3-Omni-30B-A3B-Instruct (28,010 tensors in 15 shards): a header-only fake of its layout, so no download.
Also the check's CPU seconds, the process's peak memory, and whether torch._dynamo got imported (the models are
built on meta without torch's Python meta kernels, which would import it: runtime/checkpoint_meta.py).

    python examples/bench/checkpoint_check.py [--graph qwen3_omni]
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time

from omnigraph.runtime.checkpoint_check import check_checkpoint
from omnigraph.nodes.qwen3.checkpoint_configs import preset_config
from omnigraph.nodes.qwen3.header_only import entries, write_header_only
from omnigraph.runtime.validate import load_graph

# The released 30B-A3B sizes (its config.json), over the `small` preset's layout.
RELEASED = {
    "thinker_config.audio_config": dict(d_model=1280, encoder_layers=32, encoder_attention_heads=20,
                                        encoder_ffn_dim=5120, downsample_hidden_size=480, output_dim=2048),
    "thinker_config.vision_config": dict(depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16,
                                         num_position_embeddings=2304, deepstack_visual_indexes=[8, 16, 24],
                                         out_hidden_size=2048),
    "thinker_config.text_config": dict(hidden_size=2048, num_hidden_layers=48, num_attention_heads=32,
                                       num_key_value_heads=4, head_dim=128, moe_intermediate_size=768,
                                       num_experts=128, num_experts_per_tok=8, max_position_embeddings=65536),
    "talker_config": dict(thinker_hidden_size=2048),
    "talker_config.text_config": dict(hidden_size=1024, intermediate_size=2048, num_hidden_layers=20,
                                      num_attention_heads=16, num_key_value_heads=2, head_dim=128,
                                      moe_intermediate_size=384, num_experts=128, num_experts_per_tok=6,
                                      shared_expert_intermediate_size=768, max_position_embeddings=65536,
                                      mrope_section=[24, 20, 20]),
    "talker_config.code_predictor_config": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=5,
                                                num_attention_heads=16, num_key_value_heads=8, head_dim=128),
    "code2wav_config": dict(hidden_size=1024, num_hidden_layers=8, num_attention_heads=16,
                            num_key_value_heads=16, intermediate_size=3072, decoder_dim=1536),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--graph", default="qwen3_omni")
    args = parser.parse_args()
    config = preset_config("small", "bfloat16", RELEASED)
    graph = load_graph(args.graph)
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        write_header_only(folder, config, shards=15, dtype="BF16")
        t1, cpu = time.perf_counter(), time.process_time()
        report = check_checkpoint(graph, folder)
        t2, cpu = time.perf_counter(), time.process_time() - cpu
        print(f"{len(entries(config))} tensors in 15 shards (header-only fake written in {t1 - t0:.2f} s)")
        print(f"check of '{args.graph}': {len(report.nodes)} nodes, {report.tensors} tensors in {t2 - t1:.2f} s "
              f"({cpu:.2f} CPU s; peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
              f"torch._dynamo imported: {'torch._dynamo' in sys.modules})")


if __name__ == "__main__":
    main()
