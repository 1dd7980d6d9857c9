"""prompt: text, system prompt and media as a tokenised ChatML prompt with one placeholder per media item."""
