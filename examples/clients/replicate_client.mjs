// Render a tile on Replicate and print the measured colour shares (Node 18+, no dependencies).
// Usage: REPLICATE_API_TOKEN=... node replicate_client.mjs <version id> recipe.json
import { readFileSync } from "node:fs";

const [version, recipe] = process.argv.slice(2);
const headers = {
  Authorization: `Bearer ${process.env.REPLICATE_API_TOKEN}`,
  "Content-Type": "application/json",
  Prefer: "wait",
};
const params = JSON.parse(readFileSync(recipe, "utf8"));
let prediction = await (
  await fetch("https://api.replicate.com/v1/predictions", {
    method: "POST",
    headers,
    body: JSON.stringify({ version, input: { params_json: JSON.stringify(params) } }),
  })
).json();
while (["starting", "processing"].includes(prediction.status)) {
  await new Promise((resolve) => setTimeout(resolve, 2000));
  prediction = await (await fetch(prediction.urls.get, { headers })).json();
}
if (prediction.status !== "succeeded") throw new Error(prediction.error);
// Named outputs: tile, preview, colormap, control (null without a ControlNet), legend, report.
const report = await (await fetch(prediction.output.report)).json();
console.log("tile:", prediction.output.tile);
for (const color of report.measured.final.colors) {
  console.log(`${color.hex}: ${color.measured_percent} % (target ${color.target_percent} %)`);
}
