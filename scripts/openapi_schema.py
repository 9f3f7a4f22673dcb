"""Write `.cog/openapi_schema.json` from the runner, as `cog build` would.

The real Cog server (coglet) validates typed inputs against this file and answers HTTP 422
when they break it. The Go `cog` CLI that normally writes it is not installable on the dev
and CI machines, so this script builds the same OpenAPI document from the runner's signature
with Cog's own inspector. `make schema` rewrites it; a test fails when the committed file is stale.

Usage: python scripts/openapi_schema.py --write | --check
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / ".cog" / "openapi_schema.json"


def build_schema() -> dict[str, Any]:
    """The OpenAPI 3.0.2 document of `predict.py:Predictor`."""
    sys.path.insert(0, str(ROOT))
    from cog._inspector import create_predictor

    info = create_predictor("predict", "Predictor")
    components: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, field in info.inputs.items():
        prop: dict[str, Any] = {"title": name.replace("_", " ").title(), "x-order": field.order}
        if field.choices is not None:
            components[name] = {
                "title": name,
                "description": "An enumeration.",
                "enum": list(field.choices),
                "type": field.type.json_type()["type"],
            }
            prop["allOf"] = [{"$ref": f"#/components/schemas/{name}"}]
        else:
            prop.update(field.type.json_type())
        constraints = {
            "default": field.default,
            "description": field.description,
            "minimum": field.ge,
            "maximum": field.le,
            "minLength": field.min_length,
            "maxLength": field.max_length,
            "pattern": field.regex,
            "deprecated": field.deprecated,
        }
        prop.update({k: v for k, v in constraints.items() if v is not None})
        if field.default is None:
            required.append(name)
        properties[name] = prop

    input_schema: dict[str, Any] = {"title": "Input", "type": "object", "properties": properties}
    if required:
        input_schema["required"] = required
    components.update(
        {
            "Input": input_schema,
            "Output": info.output.json_type(),
            "Status": {
                "title": "Status",
                "description": "An enumeration.",
                "enum": ["starting", "processing", "succeeded", "canceled", "failed"],
                "type": "string",
            },
            "WebhookEvent": {
                "title": "WebhookEvent",
                "description": "An enumeration.",
                "enum": ["start", "output", "logs", "completed"],
                "type": "string",
            },
            "PredictionRequest": {
                "title": "PredictionRequest",
                "type": "object",
                "properties": {
                    "id": {"title": "Id", "type": "string"},
                    "input": {"$ref": "#/components/schemas/Input"},
                    "webhook": {"title": "Webhook", "type": "string", "format": "uri"},
                    "webhook_events_filter": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/WebhookEvent"},
                        "default": ["start", "output", "logs", "completed"],
                    },
                },
            },
            "PredictionResponse": {
                "title": "PredictionResponse",
                "type": "object",
                "properties": {
                    "id": {"title": "Id", "type": "string"},
                    "input": {"$ref": "#/components/schemas/Input"},
                    "output": {"$ref": "#/components/schemas/Output"},
                    "error": {"title": "Error", "type": "string"},
                    "logs": {"title": "Logs", "type": "string", "default": ""},
                    "status": {"$ref": "#/components/schemas/Status"},
                    "metrics": {"title": "Metrics", "type": "object"},
                },
            },
        }
    )
    prediction = {
        "requestBody": {
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictionRequest"}}}
        },
        "responses": {
            "200": {
                "description": "Successful Response",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/PredictionResponse"}}
                },
            },
            "422": {"description": "Validation Error"},
        },
    }
    return {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "paths": {
            "/": {
                "get": {
                    "summary": "Root",
                    "operationId": "root__get",
                    "responses": {"200": {"description": "Successful Response"}},
                }
            },
            "/health-check": {
                "get": {
                    "summary": "Healthcheck",
                    "operationId": "healthcheck_health_check_get",
                    "responses": {"200": {"description": "Successful Response"}},
                }
            },
            "/predictions": {
                "post": {"summary": "Predict", "operationId": "predict_predictions_post", **prediction}
            },
            "/predictions/{prediction_id}": {
                "put": {
                    "summary": "Predict Idempotent",
                    "operationId": "predict_idempotent_predictions__prediction_id__put",
                    **prediction,
                }
            },
            "/predictions/{prediction_id}/cancel": {
                "post": {
                    "summary": "Cancel",
                    "operationId": "cancel_predictions__prediction_id__cancel_post",
                    "responses": {"200": {"description": "Successful Response"}},
                }
            },
        },
        "components": {"schemas": components},
    }


def render_schema() -> str:
    return json.dumps(build_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite .cog/openapi_schema.json")
    mode.add_argument("--check", action="store_true", help="exit 1 when the committed file is stale")
    args = parser.parse_args()
    text = render_schema()
    if args.write:
        SCHEMA_PATH.parent.mkdir(exist_ok=True)
        SCHEMA_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {SCHEMA_PATH.relative_to(ROOT)}")
        return 0
    if not SCHEMA_PATH.exists() or SCHEMA_PATH.read_text(encoding="utf-8") != text:
        print(f"{SCHEMA_PATH.relative_to(ROOT)} is stale: run `make schema` and commit it.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
