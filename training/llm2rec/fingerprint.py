"""A short, stable name for a JSON-able value: what names cells, trial configurations and encoder recipes."""

import hashlib
import json


def fingerprint(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]
