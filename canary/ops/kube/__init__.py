"""Adapter to the kube-apiserver: `kubectl` (kubectl.py), one HTTPS connection (https.py), and the reader
that uses the connection and falls back to kubectl (direct.py)."""
