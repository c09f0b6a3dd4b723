"""canary.ops.kube.kubectl's pure parts: the JSON stream of `kubectl get --watch -o json`."""

import io
import json

from canary.ops.kube.kubectl import json_stream


def test_json_stream_splits_pretty_printed_documents() -> None:
    docs = [{"a": 1, "b": {"c": [1, 2]}}, {"a": 2}]
    text = "".join(json.dumps(d, indent=4) + "\n" for d in docs)
    assert list(json_stream(io.StringIO(text))) == docs
