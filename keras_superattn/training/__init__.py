"""The training harness of the tutorials and benchmarks: side-by-side
comparisons of the variants (`experiments`), their callbacks, reports and
timing."""
