"""What the speech stages (talker, code_predictor, code2wav) say of a checkpoint without them."""

NO_TALKER = ("this checkpoint has no Talker (no speech output, like Qwen3-Omni's Captioner): use the captioner "
             "graph, or a checkpoint with speech output")
