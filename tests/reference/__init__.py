"""Reference data and helpers comparing tfxai with iNNvestigate and zennit (see README.md)."""
