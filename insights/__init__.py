"""A store's own numbers for its owner: visits by day and hour, repeat rate, topics, offer funnels, points."""
