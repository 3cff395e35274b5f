#!/usr/bin/env python3
"""Writes BENCHMARKS.md from a bench work directory: report.py WORKDIR OUTFILE

Reads WORKDIR/machine.env, results.tsv, logs/ (transcripts and set -x traces), calls/
(the counting wrapper's logs) and rss/.
"""
import collections
import glob
import os
import re
import statistics
import sys

WORK, OUT = sys.argv[1], sys.argv[2]
MIB = 1 << 20


def env():
    values = {}
    with open(os.path.join(WORK, "machine.env")) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            values[key] = value
    return values


M = env()


def results():
    rows = []
    with open(os.path.join(WORK, "results.tsv")) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            row = dict(zip(header, line.rstrip("\n").split("\t")))
            row["extra"] = dict(
                kv.split("=", 1) for kv in row.get("extra", "").split(";") if "=" in kv
            )
            rows.append(row)
    return rows


ROWS = results()


def col(part, variant, key):
    out = []
    for row in ROWS:
        if row["part"] == part and row["variant"] == variant:
            value = row[key] if key in row else row["extra"].get(key)
            if value not in (None, ""):
                out.append(float(value))
    return out


def med(values):
    return statistics.median(values) if values else float("nan")


def fmt(x, digits=2):
    return "n/a" if x != x else f"{x:.{digits}f}"


def spread(values, digits=2):
    if not values:
        return "n/a"
    return f"{fmt(min(values), digits)} – {fmt(max(values), digits)}"


# ---------------------------------------------------------------- step breakdowns --
def step_name(command):
    words = command.split()
    if len(words) < 2 or words[0] != "docker":
        return None
    verb = words[1]
    if verb == "run":
        if "-czf" in words:
            return "backup"
        if "-tzf" in words:
            return "verify"
        return "run"
    if verb == "inspect":
        return "inspect"
    return verb


def transcript_steps(path):
    """(step, seconds) in order, from a rancher-upgrade transcript."""
    steps, pending = [], None
    with open(path, errors="replace") as f:
        for line in f:
            m = re.match(r"^\[[^\]]+\] \$ (.*)$", line)
            if m:
                pending = step_name(m.group(1))
                continue
            m = re.search(r"exit: .*, ([0-9.]+) s$", line.rstrip())
            if m and pending:
                steps.append((pending, float(m.group(1))))
                pending = None
                continue
            m = re.search(r"answers \S+ after ([0-9.]+) s", line)
            if m:
                steps.append(("wait for pong", float(m.group(1))))
    return steps


def trace_steps(path):
    """(step, seconds) from a set -x trace with PS4='+ $EPOCHREALTIME '."""
    traced = []
    with open(path, errors="replace") as f:
        for line in f:
            m = re.match(r"^(\++) (\d+\.\d+) (.*)$", line.rstrip("\n"))
            if m:
                traced.append((len(m.group(1)), float(m.group(2)), m.group(3)))
    steps = []
    wait_start = None
    for i, (depth, t, command) in enumerate(traced):
        following = traced[i + 1][1] if i + 1 < len(traced) else None
        if command.startswith("wait_pong"):
            wait_start = t
            continue
        if depth == 1 and command.startswith("docker"):
            if wait_start is not None:
                steps.append(("wait for pong", t - wait_start))
                wait_start = None
            if following is not None:
                steps.append((step_name(command), following - t))
    if wait_start is not None and traced:
        steps.append(("wait for pong", traced[-1][1] - wait_start))
    return steps


def runs_steps(part, variant):
    """Each run's (step, seconds) of a variant: from the tool's transcript, or else from the
    bash trace of its log."""
    for path in sorted(glob.glob(os.path.join(WORK, "logs", f"*-{part}-r*-{variant}.*"))):
        if path.endswith(".transcript"):
            yield transcript_steps(path)
        elif path.endswith(".log") and not os.path.exists(path[: -len(".log")] + ".transcript"):
            yield trace_steps(path)


def step_values(part, variant, step):
    """Every run's duration of one step of a variant."""
    return [seconds for steps in runs_steps(part, variant) for name, seconds in steps if name == step]


def breakdown(part, variant):
    """Median seconds of each step over the runs of a variant, in the order they ran."""
    per_step = collections.OrderedDict()
    for steps in runs_steps(part, variant):
        for step, seconds in steps:
            per_step.setdefault(step, []).append(seconds)
    return [(step, med(values)) for step, values in per_step.items()]


# ---------------------------------------------------------------- docker call logs --
def calls(name):
    path = os.path.join(WORK, "calls", name)
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 3)
            if len(parts) == 4:
                out.append((float(parts[0]), float(parts[1]), int(parts[2]), parts[3]))
    return out


def api_requests(name):
    path = os.path.join(WORK, "calls", name)
    try:
        with open(path) as f:
            return [line.split()[1] for line in f if len(line.split()) >= 2]
    except OSError:
        return []


def span(name):
    path = os.path.join(WORK, "calls", name + ".span")
    with open(path) as f:
        start, end = f.read().split()
    return float(start), float(end)


def short(args, limit=110):
    args = re.sub(r"bench-[a-z0-9]+-", "…-", args)
    args = re.sub(r"sha256:[0-9a-f]{64}", "sha256:…", args)
    args = re.sub(r"127\.0\.0\.1:5599/", "", args)
    return args if len(args) <= limit else args[: limit - 1] + "…"


def rss(name):
    path = os.path.join(WORK, "rss", name)
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------- the report --
out = []
w = out.append

runs = int(M["runs"])
total_min = float(M["total_s"]) / 60

PART1 = ("a-backup", "a-nobackup", "b", "c", "c-pulled", "c-pulled-sync")
down = {v: col("downtime", v, "downtime_s") for v in PART1}
wall = {v: col("downtime", v, "wall_s") for v in PART1}
dm = {v: med(x) for v, x in down.items()}
pulls = col("downtime", "a-nobackup", "pull") + col("downtime", "a-backup", "pull")
r_ab, r_an, r_b = dm["a-backup"] / dm["c"], dm["a-nobackup"] / dm["c"], dm["b"] / dm["c"]

dry, insp = col("overhead", "dry-run", "wall_s"), col("overhead", "inspect", "wall_s")
r_dry = med(dry) / med(insp)
tl, sl = col("overhead", "tool-local", "wall_s"), col("overhead", "script-local", "wall_s")
r_full = med(tl) / med(sl)
tld, sld = col("overhead", "tool-local", "downtime_s"), col("overhead", "script-local", "downtime_s")
dry_calls, insp_calls = calls("dry-run"), calls("inspect")
api_dry, api_insp = api_requests("api-dry-run"), api_requests("api-inspect")
api_info = sum(1 for r in api_dry if r.endswith("/info"))
tool_calls, script_calls = calls("tool-local"), calls("script-local")

bk_bytes = col("backup", "a-backup-large", "bytes")
bk_tool = col("backup", "a-backup-large", "backup")
bk_verify = col("backup", "a-backup-large", "verify")
bk_host = col("backup", "a-backup-large", "host_tar")
bk_bb = col("backup", "a-backup-large", "host_busybox_tar")
bk_down = col("backup", "a-backup-large", "downtime_s")
bk_archive = col("backup", "a-backup-large", "archive")
bk_runrm = col("backup", "a-backup-large", "container_run_rm")
bk_plain = col("backup", "a-backup-large", "host_tar_uncompressed")
data_mib = med(bk_bytes) / MIB
thr = lambda secs: data_mib / med(secs)
r_backup = thr(bk_tool) / thr(bk_host)

rss_values = {
    "upgrade --dry-run": [rss("dry-run")],
    "upgrade --yes --no-backup": [rss("upgrade-no-backup")]
    + [int(v) for v in col("downtime", "a-nobackup", "rss_kb")],
    "upgrade --yes (backup, few MB)": [int(v) for v in col("downtime", "a-backup", "rss_kb")],
    f"upgrade --yes (backup, {data_mib:.0f} MiB)": [
        int(v) for v in col("backup", "a-backup-large", "rss_kb")
    ],
}
rss_peak = max(v for values in rss_values.values() for v in values if v)

w("# Benchmarks")
w("")
w(
    f"Generated by `scripts/bench.sh` on {M['date']} (commit {M['commit']}"
    + (", with uncommitted changes under src/" if M.get("src_dirty", "0") != "0" else "")
    + f", {M['tool_version']}). Total run time {total_min:.1f} min."
)
w("")
w("Reproduce (as root, from the repository root; it sets up the test bed itself):")
w("")
w("```bash")
w(M["command"])
w("```")
w("")
w("## Headline")
w("")
w(
    f"On this machine `rancher-upgrade upgrade --yes` takes a Rancher server down for "
    f"**{fmt(dm['a-nobackup'])} s** with `--no-backup` and **{fmt(dm['a-backup'])} s** with its backup "
    f"(few-MB database), against **{fmt(dm['b'])} s** for the documented procedure and "
    f"**{fmt(dm['c'])} s** for a bare `docker stop` + `docker run` "
    f"(medians of {runs}; a/c = {fmt(r_an)} without and {fmt(r_ab)} with the backup, b/c = {fmt(r_b)}): "
    f"it pulls the {M['layer_mb']} MiB image before stopping the server, so the "
    f"{fmt(med(pulls), 1)} s pull is not downtime."
)
w("")
w("## Machine")
w("")
w("| | |")
w("| --- | --- |")
w(f"| CPU | {M['cores']} cores, {M['cpu']} |")
w(f"| memory | {M['mem_gib']} GiB |")
w(f"| OS | {M['os']}, kernel {M['kernel']} |")
w(
    f"| Docker | Engine {M['docker_server']} ({M['storage_driver']}), CLI {M['docker_client']} |"
)
w(
    f"| load average (1/5/15 min) | {M['load_start']} at the start, {M['load_end']} at the end; "
    f"median 1-min load at each measured run: {fmt(med([float(r['load1']) for r in ROWS]), 1)} |"
)
w(
    f"| other containers running | {M['other_containers_start']} at the start, "
    f"{M['other_containers_end']} at the end (other users of the same engine) |"
)
w("")
w(
    "The engine is shared and the machine was not idle (see the load): the numbers are "
    "medians of alternated runs for that reason, and the ranges show the noise."
)
w("")
w("## How it measures")
w("")
w(
    f"- **Servers.** Each run gets a fresh `rancher/server:v1.6.10` stand-in "
    f"(`--restart=unless-stopped -p 127.0.0.1:PORT:8080`, a free port) with a 4 MiB data set in "
    f"`/var/lib/mysql`, a fresh data container name and a fresh backup directory. The stand-ins "
    f"answer `/ping` 1 s after they start (`STANDIN_START_DELAY`, the test bed's default) and exit "
    f"at once on SIGTERM; the real rancher/server takes far longer to start, so these downtimes are "
    f"a lower bound and the ratios an upper bound of what an operator sees."
)
w(
    f"- **Target.** `rancher/server:v1.6.20-large`: the registry's v1.6.20 stand-in plus one "
    f"{M['layer_mb']} MiB layer of incompressible data (a SHAKE-256 stream; the layer is "
    f"reproducible, so reruns upload nothing). It is `docker rmi`-ed before every a and b run, "
    f"so they pull it for real (median pull {fmt(med(pulls), 1)} s, range {spread(pulls, 1)}); "
    f"c and the part-2 runs have it locally."
)
w(
    "- **Downtime.** A prober (`scripts/bench/prober.py`) GETs `http://127.0.0.1:PORT/ping` every "
    "20 ms (200 ms timeout) from before the upgrade until the new server has answered 25 times in a "
    "row; downtime = the new server's first `pong` minus the old server's last `pong` (±20 ms)."
)
w(
    f"- **Rounds.** {runs} rounds of a-backup, a-nobackup, b, c and the two diagnostic variants; each "
    f"round starts one variant later than the one before, so no variant always runs first. One "
    f"unrecorded warm-up run (shown under Every run) comes first. The data set and each server's data "
    f"are synced to disk before a run starts."
)
w(
    "- **Docker calls** are counted by a `docker` wrapper first on PATH "
    "(`scripts/bench/bin/docker`), in separate runs, so the timed runs carry no wrapper."
)
w("")
w("## 1. Downtime")
w("")
w("| variant | what runs | downtime median (s) | range (s) | wall median (s) |")
w("| --- | --- | ---: | --- | ---: |")
labels = {
    "a-backup": "`rancher-upgrade upgrade --yes` (backup + verify)",
    "a-nobackup": "`rancher-upgrade upgrade --yes --no-backup`",
    "b": "the documented procedure in bash: stop, create, pull, run, rm",
    "c": "floor: `docker stop` + `docker run`, image local",
    "c-pulled": "diagnostic: `docker pull`, then c at once",
    "c-pulled-sync": "diagnostic: `docker pull`, `sync`, then c",
}
for v in PART1:
    w(
        f"| {v} | {labels[v]} | **{fmt(dm[v])}** | {spread(down[v])} | {fmt(med(wall[v]))} |"
    )
w("")
w("| ratio | value |")
w("| --- | ---: |")
w(f"| a/c, with the backup | **{fmt(r_ab)}** |")
w(f"| a/c, `--no-backup` | **{fmt(r_an)}** |")
w(f"| b/c | **{fmt(r_b)}** |")
w("")
w(
    "Median duration of each step (s): the tool's from its transcript, the scripts' from their "
    "`set -x` trace (`backup` and `verify` are the tool's `docker run --rm … tar -czf` and `tar -tzf`; "
    "`run` is the new server's `docker run -d`). The downtime runs from the `stop` to the new "
    "server's first pong, which comes about 1 s (the stand-in's start delay) after its `run`."
)
w("")
for part, v in [("downtime", v) for v in PART1] + [("overhead", "tool-local"), ("overhead", "script-local")]:
    steps = breakdown(part, v)
    w(f"- **{v}**: " + ", ".join(f"{s} {fmt(x)}" for s, x in steps))
w("")
w(
    "(tool-local and script-local are part 2's runs: the tool and the same docker commands in bash, "
    "target already local.)"
)
w("")

w("## 2. Overhead")
w("")
w("| comparison | tool | baseline | ratio |")
w("| --- | ---: | ---: | ---: |")
w(
    f"| wall time: `upgrade --dry-run` vs one `docker inspect` (median of {len(dry)}) | "
    f"{fmt(med(dry) * 1000, 0)} ms | {fmt(med(insp) * 1000, 0)} ms | **{fmt(r_dry)}** |"
)
w(
    f"| docker calls: `upgrade --dry-run` vs one `docker inspect` | {len(dry_calls)} | "
    f"{len(insp_calls)} | **{fmt(len(dry_calls) / max(1, len(insp_calls)))}** |"
)
w(
    f"| Engine API requests behind them | {len(api_dry)} ({api_info}× `GET /info`) | {len(api_insp)} | "
    f"{fmt(len(api_dry) / max(1, len(api_insp)))} |"
)
w(
    f"| wall time: `upgrade --yes --no-backup` vs the same docker commands in bash (median of {len(tl)}) | "
    f"{fmt(med(tl))} s | {fmt(med(sl))} s | **{fmt(r_full)}** |"
)
w(
    f"| docker calls: `upgrade --yes --no-backup` vs the same docker commands in bash | "
    f"{len(tool_calls)} | {len(script_calls)} | **{fmt(len(tool_calls) / max(1, len(script_calls)))}** |"
)
w(
    f"| downtime in those runs (target local) | {fmt(med(tld))} s | {fmt(med(sld))} s | "
    f"{fmt(med(tld) / med(sld))} |"
)
w("")
w(
    f"Ranges of the full-upgrade runs: wall {spread(tl)} s (tool) and {spread(sl)} s (script); "
    f"downtime {spread(tld)} s and {spread(sld)} s."
)
w("")
w(f"Peak RSS of the tool (`/usr/bin/time`, max over runs): **{rss_peak / 1024:.1f} MiB**.")
w("")
w("| run | peak RSS (MiB) |")
w("| --- | ---: |")
for label, values in rss_values.items():
    values = [v for v in values if v]
    if values:
        w(f"| {label} | {max(values) / 1024:.1f} |")
w("")


def timeline(name, title):
    entries = calls(name)
    if not entries:
        return
    start, end = span(name)
    w(f"{title} ({len(entries)} docker calls, {end - start:.2f} s in all; "
      f"times from the start of the run):")
    w("")
    w("| at (s) | took (s) | gap before (s) | docker … |")
    w("| ---: | ---: | ---: | --- |")
    previous_end = start
    busy = 0.0
    for s, e, rc, args in entries:
        w(f"| {s - start:.3f} | {e - s:.3f} | {s - previous_end:.3f} | `{short(args)}` |")
        busy += e - s
        previous_end = e
    w(f"| {end - start:.3f} | | {end - previous_end:.3f} | (exit) |")
    w("")
    w(f"Time in docker calls {busy:.2f} s; outside them {end - start - busy:.2f} s "
      f"(the wait for pong, and the {'tool' if 'tool' in name else 'script'} itself).")
    w("")


w("The docker calls of `upgrade --dry-run`: " + ", ".join(f"`docker {short(c[3], 80)}`" for c in dry_calls))
w("")
timeline("tool-local", "The counted `upgrade --yes --no-backup`")
timeline("script-local", "The counted bash script with the same commands")

w("## 3. Backup")
w("")
w(
    f"Data set: {data_mib:.0f} MiB in the three data volumes (`scripts/bench/gen-data.py`: half "
    f"incompressible, half base64 text, 216 files; archive {med(bk_archive) / MIB:.0f} MiB), "
    f"{len(bk_tool)} runs. The tool archives with the old image's own `tar -czf` in a "
    f"`docker run --rm` (the stand-in's tar is busybox's); the host runs GNU `tar -czf` on the "
    f"same volume directories under /var/lib/docker/volumes, right after."
)
w("")
w("| | median (s) | range (s) | throughput (MiB/s) |")
w("| --- | ---: | --- | ---: |")
w(f"| tool: backup step (`docker run … tar -czf`) | {fmt(med(bk_tool))} | {spread(bk_tool)} | {fmt(thr(bk_tool), 1)} |")
w(f"| host: `tar -czf` (GNU tar + gzip) | {fmt(med(bk_host))} | {spread(bk_host)} | {fmt(thr(bk_host), 1)} |")
w(f"| host: `busybox tar -czf` (the stand-in's tar, no container) | {fmt(med(bk_bb))} | {spread(bk_bb)} | {fmt(thr(bk_bb), 1)} |")
w(f"| tool: verify step (the host's `tar -tzf`) | {fmt(med(bk_verify))} | {spread(bk_verify)} | {fmt(thr(bk_verify), 1)} |")
w(f"| `docker run --rm --volumes-from … --entrypoint true` of the old image (no work) | {fmt(med(bk_runrm))} | {spread(bk_runrm)} | |")
w(f"| host: `tar -cf` (no compression) | {fmt(med(bk_plain))} | {spread(bk_plain)} | {fmt(thr(bk_plain), 1)} |")
w("")
w(f"Throughput ratio, tool backup step / host `tar czf`: **{fmt(r_backup)}**.")
w("")
w(
    f"Downtime of `upgrade --yes` with this data set: median **{fmt(med(bk_down))} s** "
    f"({spread(bk_down)}): the backup and its verification run while the server is stopped."
)
w("")

# ---------------------------------------------------------------- findings --
w("## Findings")
w("")
steps_an = dict(breakdown("downtime", "a-nobackup"))
steps_ab = dict(breakdown("downtime", "a-backup"))
steps_c = dict(breakdown("downtime", "c"))
extra_calls = [s for s in ("update", "create", "rename") if s in steps_an]
extra_s = sum(steps_an[s] for s in extra_calls)
findings = []
steps_cp = dict(breakdown("downtime", "c-pulled"))
steps_cps = dict(breakdown("downtime", "c-pulled-sync"))
after_pull = dm["c-pulled"] - dm["c"]
after_sync = dm["c-pulled-sync"] - dm["c"]
calls_part = dm["a-nobackup"] - dm["c-pulled"]
excess = dm["a-nobackup"] - dm["c"]
parts = [
    f"Decomposed with the diagnostic variants: c-pulled − c = {fmt(after_pull)} s "
    f"(the floor's stop + run right after a fresh {M['layer_mb']} MiB pull; its `docker stop` median "
    f"{fmt(steps_cp.get('stop', float('nan')))} s against {fmt(steps_c.get('stop', float('nan')))} s in c), "
    f"c-pulled-sync − c = {fmt(after_sync)} s (a `sync` between the pull and the stop, outside the "
    f"downtime; stop {fmt(steps_cps.get('stop', float('nan')))} s), and a-nobackup − c-pulled = "
    f"{fmt(calls_part)} s (what the tool adds to the same sequence)."
]
if after_pull > 0.05 and after_sync < after_pull / 2:
    parts.append(
        f"**The pull right before the stop costs about {fmt(after_pull)} s of downtime**: the engine is "
        f"still writing the layer it just extracted when the old container is torn down, and the "
        f"`docker stop` is slower for it; a `sync` after the pull (while the old server still answers) "
        f"takes that away. The tool could run one after its pull step when the engine is local."
    )
parts.append(
    f"Between the stop and the run the tool runs {', '.join('`docker ' + s + '`' for s in extra_calls)} "
    f"(medians {', '.join(fmt(steps_an[s]) + ' s' for s in extra_calls)}, {fmt(extra_s)} s together), "
    f"which the floor does not. None of them needs the server stopped: `docker update --restart=no`, "
    f"`docker create --volumes-from` and `docker rename` all work on a running container, so planned "
    f"after the pull and before the stop (their undo steps unchanged) they would leave stop + run in "
    f"the window. The tool's own time between its docker calls is a few ms (the timelines in part 2)."
)
stop_an = steps_an.get("stop", float("nan"))
if stop_an > 1.5 * steps_cp.get("stop", float("nan")):
    slow = []
    for part, v in [("downtime", v) for v in PART1] + [("overhead", "tool-local"), ("overhead", "script-local")]:
        values = step_values(part, v, "stop")
        slow.append(f"{v} {sum(1 for x in values if x > 0.8)}/{len(values)}")
    parts.append(
        f"In this run the tool's own `docker stop` was slower: median {fmt(stop_an)} s against "
        f"{fmt(steps_cp.get('stop', float('nan')))} s in c-pulled. Runs whose `docker stop` took over 0.8 s: "
        + ", ".join(slow)
        + ". The stand-in exits at once on SIGTERM, so a slow stop is the engine's teardown (unmount, "
        "network, docker-proxy) taking longer, not the server."
    )
window = " ".join(parts)
if r_an > 1.15:
    findings.append(f"**a/c without backup is {fmt(r_an)} (> 1.15)**, {fmt(excess)} s over the floor. " + window)
else:
    findings.append(f"a/c without backup is {fmt(r_an)} ({fmt(excess)} s over the floor). " + window)
if r_ab > 1.15:
    bk = [s for s in steps_ab if s.startswith(("backup", "verify"))]
    findings.append(
        f"**a/c with the backup is {fmt(r_ab)} (> 1.15)**, {fmt(dm['a-backup'] - dm['c'])} s over the "
        f"floor with a 4 MiB database: "
        + " and ".join(f"{s} ({fmt(steps_ab[s])} s)" for s in bk)
        + f" run while the server is down, and each is a `docker run --rm` of the old image: "
        f"creating, starting and removing a container costs {fmt(med(bk_runrm))} s here before tar "
        f"does any work (part 3). So most of that excess is two container lifecycles, not archiving. "
        f"The archive must be taken with the database stopped, but the listing can run in the same "
        f"container (`sh -c 'tar -czf … && tar -tzf … >/dev/null'`; the real image has sh too), which "
        f"saves one lifecycle (~{fmt(med(bk_runrm))} s) per upgrade; so would archiving and listing "
        f"with the host's tar on the volume directories, where the engine is local. The rest of the "
        f"excess is that of a-nobackup (above)."
    )
if r_b > 1.15:
    findings.append(
        f"b/c is {fmt(r_b)}: the documented order pulls after the stop, so the "
        f"{fmt(med(pulls), 1)} s pull is downtime. The tool's order (pull first) is what removes it."
    )
dry_detail = ""
if len(dry_calls) >= 2:
    dry_detail = (
        f" In the counted run the first call (`docker inspect --type container`) took "
        f"{fmt(dry_calls[0][1] - dry_calls[0][0], 3)} s and the second {fmt(dry_calls[1][1] - dry_calls[1][0], 3)} s."
    )
findings.append(
    (f"**`--dry-run` takes {fmt(r_dry)}× the wall time of one `docker inspect`.** " if r_dry > 2.5 else
     f"`--dry-run` takes {fmt(r_dry)}× the wall time of one `docker inspect`. ")
    + f"It needs two reads (the container, then its image, since the image id comes from the container) "
    f"and makes exactly {len(dry_calls)} docker calls, so about 2× is inherent. The rest is the second "
    f"call: an untyped `docker inspect -- IMAGE DATA-CONTAINER PARKED-NAME`. For a name that does not "
    f"exist (before a first upgrade, both the data container and the parking name) the CLI tries "
    f"container, image, network, volume, `GET /info` (swarm) and plugin in turn: the dry-run costs "
    f"{len(api_dry)} Engine API requests, {api_info} of them `GET /info`, where one inspect costs "
    f"{len(api_insp)}.{dry_detail} Typed lookups (`docker container inspect -- DATA PARKED` and "
    f"`docker image inspect IMAGE`, or `--type` on the second call with the image read apart) skip them; "
    f"the gain is tens of milliseconds, not a change of scale."
)
extra_tool = collections.Counter(short(c[3], 40).split()[0] for c in tool_calls)
extra_script = collections.Counter(short(c[3], 40).split()[0] for c in script_calls)
diff = extra_tool - extra_script
discovery = sum(e - b for b, e, _, a in tool_calls[:2])
state_reads = sum(e - b for b, e, _, a in tool_calls if "{{json .State}}" in a)
noise = abs(r_full - 1) < 0.15
findings.append(
    f"The full upgrade makes {len(tool_calls)} docker calls against the script's {len(script_calls)}; "
    f"the extra ones are "
    + ", ".join(f"{n}× `docker {verb}`" for verb, n in sorted(diff.items()))
    + f": the two discovery reads ({fmt(discovery, 3)} s in the counted run) and the health wait's state "
    f"reads, one before the first ping and one a second ({fmt(state_reads, 3)} s). Those, and the "
    f"100 ms health poll (up to 0.1 s from the first pong to the tool seeing it), are all the tool adds "
    f"to the wall time; none of it lies between the stop and the run. Measured: wall {fmt(r_full)}× the script's (medians {fmt(med(tl))} and "
    f"{fmt(med(sl))} s, ranges {spread(tl)} and {spread(sl)} s), downtime {fmt(med(tld) / med(sld))}× "
    f"({spread(tld)} and {spread(sld)} s)"
    + (
        ": no overhead above the run-to-run noise."
        if noise
        else ". The ranges overlap: on this loaded machine one round's noise is as large as the "
        "difference, so this ratio moves from run to run of the bench; the call timeline above is "
        "the steadier account."
    )
)
if r_backup < 0.87:
    findings.append(
        f"**The backup step's throughput is {fmt(r_backup)}× the host's `tar czf`.** The stand-in's "
        f"busybox tar on the host, without a container, does {fmt(thr(bk_bb), 1)} MiB/s against "
        f"{fmt(thr(bk_host), 1)} MiB/s for GNU tar + gzip, and the step {fmt(thr(bk_tool), 1)} MiB/s; "
        f"a container lifecycle is {fmt(med(bk_runrm))} s. So the gap is "
        + (
            "mostly the compressor (busybox gzip), then the container"
            if med(bk_bb) - med(bk_host) > med(bk_runrm)
            else "mostly the container lifecycle, then the compressor"
        )
        + ". The real rancher/server image is Ubuntu-based and archives with GNU tar + gzip, so on a "
        "real server the step should come closer to the host's throughput."
    )
else:
    findings.append(
        f"The backup step's throughput is {fmt(r_backup)}× the host's `tar czf` "
        f"(container lifecycle {fmt(med(bk_runrm))} s, busybox tar on the host {fmt(thr(bk_bb), 1)} MiB/s)."
    )
findings.append(
    f"With {data_mib:.0f} MiB the downtime is {fmt(med(bk_down))} s, and the archive step "
    f"({fmt(med(bk_tool))} s) and its listing ({fmt(med(bk_verify))} s) are most of it: gzip at level 6 "
    f"on one core. The copy alone is cheap: an uncompressed `tar -cf` of the same directories takes "
    f"{fmt(med(bk_plain))} s on the host (into the page cache, like the others). Archiving uncompressed while the server is down (and "
    f"compressing after the new server answers, or not at all), or `gzip -1`, would take most of "
    f"that out of the downtime; the archive is then as large as the data."
)
findings.append(
    f"Peak RSS {rss_peak / 1024:.1f} MiB, the same with or without a backup: the tool holds no archive "
    f"data; `docker` does the work."
)
for f in findings:
    w(f"- {f}")
w("")

# ---------------------------------------------------------------- raw --
w("## Every run")
w("")
w("| part | variant | round | downtime (s) | wall (s) | load | details |")
w("| --- | --- | ---: | ---: | ---: | ---: | --- |")
for row in ROWS:
    details = ", ".join(f"{k} {v}" for k, v in row["extra"].items())
    w(
        f"| {row['part']} | {row['variant']} | {row['round']} | {row['downtime_s'] or ''} | "
        f"{row['wall_s']} | {row['load1']} | {details} |"
    )
w("")

with open(OUT, "w") as f:
    f.write("\n".join(out))
print(OUT)
