"""Experiments: program-side changes measured by the bench before anyone proposes them for the product."""
