"""Render a tile on Replicate from a recipe file and print the measured colour shares.

Usage: REPLICATE_API_TOKEN=... python replicate_client.py <owner>/plitka-pro:<version> recipe.json
Needs only the standard library (Replicate HTTP API, `Prefer: wait`).
"""

import json
import os
import sys
import time
import urllib.request

API = "https://api.replicate.com/v1/predictions"


def call(url: str, token: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Prefer": "wait"}
    with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=600) as response:
        return json.load(response)


def main() -> None:
    model, recipe = sys.argv[1], sys.argv[2]
    token = os.environ["REPLICATE_API_TOKEN"]
    with open(recipe, encoding="utf-8") as handle:
        params = json.load(handle)
    prediction = call(
        API, token, {"version": model.split(":")[1], "input": {"params_json": json.dumps(params)}}
    )
    while prediction["status"] in ("starting", "processing"):
        time.sleep(2)
        prediction = call(prediction["urls"]["get"], token)
    if prediction["status"] != "succeeded":
        sys.exit(prediction["error"])
    # Named outputs: tile, preview, colormap, control (None without a ControlNet), legend, report.
    output = prediction["output"]
    with urllib.request.urlopen(output["report"]) as response:
        report = json.load(response)
    print("tile:", output["tile"])
    for color in report["measured"]["final"]["colors"]:
        print(f"{color['hex']}: {color['measured_percent']} % (target {color['target_percent']} %)")


if __name__ == "__main__":
    main()
