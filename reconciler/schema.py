"""The committed JSON Schema of manifests, generated from `reconciler.models`."""

from __future__ import annotations

import json

from reconciler.models import manifest_json_schema

SCHEMA_FILE = "manifest-v1.schema.json"


def render_schema() -> str:
    return json.dumps(manifest_json_schema(), indent=2, sort_keys=True) + "\n"
