#!/usr/bin/env bash
# Call a local Cog server (python -m cog.server.http) with a recipe file and save every output.
# Usage: examples/clients/local_cog.sh examples/params/two_colors_45deg.json [http://127.0.0.1:5000]
set -euo pipefail
recipe="$1"; url="${2:-http://127.0.0.1:5000}"
python3 - "$recipe" "$url" <<'PY'
import base64, json, sys, urllib.request

recipe, url = sys.argv[1], sys.argv[2]
params = json.load(open(recipe, encoding="utf-8"))
body = json.dumps({"input": {"params_json": json.dumps(params)}}).encode()
request = urllib.request.Request(f"{url}/predictions", body, {"Content-Type": "application/json"})
try:
    result = json.load(urllib.request.urlopen(request, timeout=1800))
except urllib.error.HTTPError as error:  # 422: a typed input broke the schema
    sys.exit(f"HTTP {error.code}: {error.read().decode()}")
if result["status"] != "succeeded":
    sys.exit(result["error"])
# Named outputs: {"tile": "data:image/png;base64,...", ..., "control": null, "report": "data:..."}.
files = {name: base64.b64decode(item.split(",", 1)[1]) for name, item in result["output"].items() if item}
report = json.loads(files["report"])
for name, data in files.items():
    open(report["outputs"][name], "wb").write(data)
    print("wrote", report["outputs"][name])
for color in report["measured"]["final"]["colors"]:
    print(f'{color["hex"]}: {color["measured_percent"]} % (target {color["target_percent"]} %)')
PY
