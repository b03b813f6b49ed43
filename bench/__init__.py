"""vjm benchmarks: every figure is a ratio to a ceiling or a peer measured in the same run."""
