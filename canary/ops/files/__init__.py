"""Adapter to this machine's files: small documents the CLI remembers between runs, and YAML parses."""
