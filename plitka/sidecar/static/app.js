// Operator page of the Plitka Pro sidecar. Plain JS, no build step; talks only to this service.
"use strict";

const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);

function token() {
  return $("token").value.trim() || sessionStorage.getItem("plitka-token") || "";
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token()) headers["Authorization"] = "Bearer " + token();
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (!response.ok) {
    const error = new Error(describeError(response.status, data));
    error.status = response.status;
    throw error;
  }
  return data;
}

// The API answers errors as {"error": ..., "problems": [{field, message, fix}]}; show all of them.
function describeError(status, data) {
  if (data && Array.isArray(data.problems) && data.problems.length) {
    return data.problems.map((p) => `${p.field}: ${p.message} Fix: ${p.fix}`).join("\n");
  }
  if (status === 401) return "The sidecar needs its API token: open 'API token' and paste it.";
  return `HTTP ${status}` + (data && data.error ? `: ${data.error}` : "");
}

function show(el, text, isError) {
  el.textContent = text;
  el.classList.toggle("error", Boolean(isError));
  el.hidden = false;
}

function renderBadge(status) {
  const badge = $("queue-badge");
  const counts = status.status_counts;
  badge.textContent = String(status.total_jobs);
  badge.classList.remove("error");
  badge.classList.toggle("zero", status.total_jobs === 0);
  badge.title = `${status.total_jobs} job${status.total_jobs === 1 ? "" : "s"} in the GPU queue: ` +
    `${counts.pending} pending, ${counts.processing} processing`;
}

function renderGpu(health) {
  const state = $("gpu-state");
  const banner = $("banner");
  const down = health.servers.filter((s) => s.status !== "READY" && s.status !== "BUSY");
  if (!health.gpu_reachable) {
    state.textContent = "GPU server unreachable";
    state.className = "gpu-state down";
    const why = down.map((s) => `${s.url || s.name}: ${s.status}${s.error ? " (" + s.error + ")" : ""}`).join("; ");
    show(banner, `GPU server unreachable — jobs stay queued until it is back. ${why}`, true);
    return;
  }
  const busy = health.servers.filter((s) => s.status === "BUSY").length;
  state.textContent = busy ? `GPU busy (${busy}/${health.servers.length})` : "GPU ready";
  state.className = "gpu-state ok";
  if (down.length) {
    show(banner, "Some GPU servers are down: " + down.map((s) => `${s.url || s.name}: ${s.status}`).join("; "), true);
  } else {
    banner.hidden = true;
  }
}

function renderSidecarDown(error) {
  const badge = $("queue-badge");
  badge.textContent = "?";
  badge.className = "badge error";
  badge.title = "Queue count unknown: the sidecar did not answer.";
  $("gpu-state").textContent = "status unknown";
  $("gpu-state").className = "gpu-state down";
  show($("banner"), `Sidecar unreachable — the queue state is unknown (${error.message}).`, true);
}

function cell(row, text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function renderJobs(jobs) {
  const body = document.querySelector("#jobs tbody");
  body.replaceChildren();
  $("empty").hidden = jobs.length > 0;
  for (const job of jobs) {
    const row = document.createElement("tr");
    row.dataset.jobId = String(job.job_id);
    row.dataset.status = job.status;
    cell(row, "#" + job.job_id);
    cell(row, job.type);
    cell(row, job.status, "status " + job.status);
    cell(row, job.position === null ? "" : job.position === 0 ? "running" : String(job.position));
    const progress = cell(row, "", "progress");
    if (job.progress !== null) {
      const bar = document.createElement("span");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.style.width = job.progress + "%";
      bar.appendChild(fill);
      progress.append(bar, ` ${Math.round(job.progress)}%`);
    }
    cell(row, new Date(job.created_at).toLocaleTimeString());
    cell(row, job.error || job.notes.join("; "), "details");
    const actions = cell(row, "");
    if (job.status === "pending" || job.status === "processing") {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "cancel-job";
      button.textContent = "Cancel";
      button.addEventListener("click", () => cancelJob(job.job_id));
      actions.appendChild(button);
    }
    body.appendChild(row);
  }
}

async function refresh() {
  try {
    const [status, health, jobs] = await Promise.all([
      api("GET", "/queue_status"), api("GET", "/health"), api("GET", "/jobs?limit=50"),
    ]);
    renderBadge(status);
    renderGpu(health);
    renderJobs(jobs);
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (error) {
    renderSidecarDown(error);
  }
}

async function cancelJob(jobId) {
  try {
    const result = await api("DELETE", `/jobs/${jobId}`);
    const where = result.cog_cancel ? ` (GPU: ${result.cog_cancel})` : "";
    show($("message"), `Job #${jobId} cancelled${where}.`);
  } catch (error) {
    show($("message"), `Could not cancel job #${jobId}:\n${error.message}`, true);
  }
  refresh();
}

function askClear() {
  const badge = $("queue-badge").textContent;
  $("confirm-text").textContent =
    `${badge} job(s) are in the queue. Every pending job is removed and the running job is cancelled on the GPU.`;
  $("pending-only").checked = false;
  $("confirm-clear").showModal();
}

async function clearQueue(pendingOnly) {
  try {
    const result = await api("POST", "/clear_queue" + (pendingOnly ? "?pending_only=true" : ""));
    const c = result.cleared;
    const missed = result.cancels.filter((x) => !x.reached).map((x) => `#${x.job_id}: ${x.detail}`);
    show($("message"), `${result.message}: ${c.total} job(s) cleared (${c.pending} pending, ${c.processing} processing).` +
      (missed.length ? "\n" + missed.join("\n") : ""), !result.ok);
  } catch (error) {
    show($("message"), "Clearing the queue failed:\n" + error.message, true);
  }
  refresh();
}

async function submitRecipe(event) {
  event.preventDefault();
  const text = $("params").value;
  try {
    const created = await api("POST", "/jobs", { params_json: text });
    show($("submit-result"), `Queued as job #${created.job_id}, position ${created.position}.`);
  } catch (error) {
    show($("submit-result"), "Not queued:\n" + error.message, true);
  }
  refresh();
}

$("clear-queue").addEventListener("click", askClear);
$("confirm-clear").addEventListener("close", () => {
  if ($("confirm-clear").returnValue === "ok") clearQueue($("pending-only").checked);
});
$("submit-form").addEventListener("submit", submitRecipe);
$("token").value = sessionStorage.getItem("plitka-token") || "";
$("token").addEventListener("change", () => sessionStorage.setItem("plitka-token", $("token").value.trim()));

refresh();
setInterval(refresh, REFRESH_MS);
