"""text_context: the Talker context of a text-only prompt, without running the Thinker."""
