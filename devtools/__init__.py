"""What the integration tests, the benchmarks and the demo share: the project's environment and one driver of
the real `pulumi` CLI. Not part of the product (canary/), and not installed with it: it is imported from a
checkout (pytest, `python -m bench` and `python -m scripts.demo` all run from the repo root).
"""
