"""The engine: training, benchmarking and batch-restore, built on archs/data/losses/metrics."""
