"""Bank account service (the seed's bank example)."""
