"""Benchmarks for gateway-canary (`make bench`): figures are printed and saved, never asserted."""
