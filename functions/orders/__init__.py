"""Order service (the seed's order system)."""
