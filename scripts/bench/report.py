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
    if verb == "cp" and words[-1] == "-":
        return "backup"
    if verb == "run":
        entrypoint = words[words.index("--entrypoint") + 1] if "--entrypoint" in words else None
        if entrypoint == "du":
            return "room"
        if entrypoint == "tar" and "-cf" in words:
            return "backup"
        if words[-1] == "restore":
            return "restore"
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
    """(the tool's own peak, its docker CLI's peak) in KiB, from rss.py."""
    path = os.path.join(WORK, "rss", name)
    try:
        with open(path) as f:
            own, cli = f.read().split()[:2]
            return int(own), int(cli)
    except (OSError, ValueError):
        return None


def rss_names(part, variant):
    """The rss/ files of a variant's runs (named like their containers)."""
    return sorted(
        os.path.basename(p)
        for p in glob.glob(os.path.join(WORK, "rss", f"*-{part}-r*-{variant}"))
    )


def per_round(part, variant, key):
    """round -> value, for one variant."""
    out = {}
    for row in ROWS:
        if row["part"] == part and row["variant"] == variant:
            value = row[key] if key in row else row["extra"].get(key)
            if value not in (None, ""):
                out[row["round"]] = float(value)
    return out


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
# The counting wrapper is a script, so the tool asks it `--version` (it knows the real, compiled
# docker by itself): that call is the wrapper's, not the timed runs'.
engine_calls = lambda name: [c for c in calls(name) if c[3] != "--version"]
dry_calls, insp_calls = engine_calls("dry-run"), engine_calls("inspect")
api_dry, api_insp = api_requests("api-dry-run"), api_requests("api-inspect")
api_info = sum(1 for r in api_dry if r.endswith("/info"))
tool_calls, script_calls = engine_calls("tool-local"), engine_calls("script-local")

BK = "a-backup-large"
bk = lambda key: col("backup", BK, key)
bk_down, nb_down = bk("downtime_s"), col("backup", "a-nobackup-large", "downtime_s")
bk_tool, bk_cp, bk_run_read = bk("backup"), bk("cp_read"), bk("run_tar_read")
bk_verify, bk_restore = bk("verify"), bk("restore")
bk_run_write, bk_cp_write = bk("run_write"), bk("cp_write")
bk_archive, bk_bytes, bk_plain = bk("archive"), bk("bytes"), bk("plain_tar")
bk_room = bk("room")
data_mib = med(bk_bytes) / MIB
mibs = lambda secs: data_mib / med(secs) if secs else float("nan")
rounds = lambda key, variant=BK: per_round("backup", variant, key)
down_with, down_without = rounds("downtime_s"), rounds("downtime_s", "a-nobackup-large")
cp_r, verify_r, restore_r = rounds("cp_read"), rounds("verify"), rounds("restore")
run_write_r, cp_write_r = rounds("run_write"), rounds("cp_write")
paired = sorted(set(down_with) & set(down_without) & set(cp_r))
share_r = {r: down_with[r] - down_without[r] for r in paired}
r_share = med([share_r[r] / cp_r[r] for r in paired])
r_share_of_medians = (med(bk_down) - med(nb_down)) / med(bk_cp)
restored = sorted(set(verify_r) & set(restore_r) & set(run_write_r) & set(cp_write_r))
restore_total = {r: verify_r[r] + restore_r[r] for r in restored}
r_restore_run = med([restore_total[r] / run_write_r[r] for r in restored])
r_restore_cp = med([restore_total[r] / cp_write_r[r] for r in restored])

rss_runs = {
    "upgrade --dry-run": [rss("dry-run")],
    "upgrade --yes --no-backup": [rss(n) for n in rss_names("downtime", "a-nobackup")],
    "upgrade --yes (backup, 4 MiB)": [rss(n) for n in rss_names("downtime", "a-backup")],
    f"upgrade --yes (backup, {data_mib:.0f} MiB)": [rss(n) for n in rss_names("backup", BK)],
}
rss_runs = {k: [v for v in vs if v] for k, vs in rss_runs.items()}
own_peak = max(v[0] for vs in rss_runs.values() for v in vs)
cli_peak = max(v[1] for vs in rss_runs.values() for v in vs)

ENGINE_LABELS = {
    "local": "this machine's dockerd",
    "unix": "the other host by unix socket (`DOCKER_HOST=unix://…`)",
    "ssh": "the other host over ssh (`DOCKER_HOST=ssh://root@…`)",
    "podman": "podman (`--docker podman`)",
}
engines = [r for r in ROWS if r["part"] == "engines"]

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
w(
    f"With a {data_mib:.0f} MiB database the backup adds **{fmt(med(bk_down) - med(nb_down))} s** to the "
    f"downtime ({fmt(med(nb_down))} s without it, {fmt(med(bk_down))} s with it): "
    f"**{fmt(r_share)}×** the {fmt(med(bk_cp))} s the engine takes to read the same data "
    f"(`docker cp … - > /dev/null`), {fmt(mibs(bk_tool), 0)} MiB/s into a "
    f"{med(bk_archive) / MIB:.0f} MiB zstd archive. The restore of a rollback (checksum, then the "
    f"stream back) takes {fmt(med(list(restore_total.values())))} s: **{fmt(r_restore_run)}×** the engine "
    f"writing the same plain tar through the restore's own `docker run -i … tar -xf -`, "
    f"{fmt(r_restore_cp)}× through `docker cp -a -`."
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
    "a-backup": "`rancher-upgrade upgrade --yes` (with its backup)",
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
    "`set -x` trace (`room` is the tool's `docker run --rm … du -sk` before the stop, `backup` its "
    "`docker cp DATA:/var -` into the archive; `run` is the new server's `docker run -d`). The "
    "downtime runs from the `stop` to the new server's first pong, which comes about 1 s (the "
    "stand-in's start delay) after its `run`."
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
w(
    f"Peak RSS (VmHWM from `/proc/PID/status`, sampled every 20 ms by `scripts/bench/rss.py`; "
    f"max over runs): the tool itself **{own_peak / 1024:.1f} MiB**, the docker CLI it runs "
    f"{cli_peak / 1024:.1f} MiB."
)
w("")
w("| run | the tool's own peak (MiB) | the docker CLI's peak (MiB) |")
w("| --- | ---: | ---: |")
for label, values in rss_runs.items():
    if values:
        w(
            f"| {label} | {max(v[0] for v in values) / 1024:.1f} | "
            f"{max(v[1] for v in values) / 1024:.1f} |"
        )
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


w(
    "The docker calls of `upgrade --dry-run`: "
    + ", ".join(f"`docker {short(c[3], 80)}`" for c in dry_calls)
    + ". (The counting wrapper is a script, so through it the tool also asks `docker --version`, "
    "which is left out of these counts and timelines; on the compiled docker of the timed runs it "
    "asks nothing.)"
)
w("")
timeline("tool-local", "The counted `upgrade --yes --no-backup`")
timeline("script-local", "The counted bash script with the same commands")

w("## 3. Backup and restore")
w("")
w(
    f"Data set: {data_mib:.0f} MiB of files in `/var/lib/mysql` (`scripts/bench/gen-data.py`: a third "
    f"incompressible, two thirds text rows, 217 files), {len(paired)} rounds. Each round upgrades one "
    f"server with it `--no-backup` and another with the backup (the prober measures both, target "
    f"local, the order alternating); right after the backup, on the same data container: the "
    f"engine's own reads; then `rancher-upgrade rollback --yes` (the restore); then, the old server "
    f"stopped, the engine's own writes of the same data from a plain tar ({med(bk_plain) / MIB:.0f} MiB, "
    f"the archive decompressed beforehand)."
)
w("")
w("| | median (s) | range (s) | MiB/s |")
w("| --- | ---: | --- | ---: |")
w(f"| downtime, `upgrade --yes --no-backup` | {fmt(med(nb_down))} | {spread(nb_down)} | |")
w(f"| downtime, `upgrade --yes` | {fmt(med(bk_down))} | {spread(bk_down)} | |")
w(f"| the backup's share of the downtime (with − without, per round) | **{fmt(med(list(share_r.values())))}** | {spread(list(share_r.values()))} | |")
w(f"| the tool's backup step (`docker cp DATA:/var -` into zstd, transcript) | {fmt(med(bk_tool))} | {spread(bk_tool)} | {fmt(mibs(bk_tool), 1)} |")
w(f"| engine read: `docker cp DATA:PATH - > /dev/null`, the three data paths | **{fmt(med(bk_cp))}** | {spread(bk_cp)} | {fmt(mibs(bk_cp), 1)} |")
w(f"| engine read: `docker run --rm … tar -cf - … > /dev/null` (the other source) | {fmt(med(bk_run_read))} | {spread(bk_run_read)} | {fmt(mibs(bk_run_read), 1)} |")
w(f"| the room check before the stop (`docker run --rm … du -sk`, not downtime) | {fmt(med(bk_room))} | {spread(bk_room)} | |")
w(f"| restore: the checksum check (`rollback` step 1) | {fmt(med(bk_verify))} | {spread(bk_verify)} | {fmt(med(bk_archive) / MIB / med(bk_verify), 1)} |")
w(f"| restore: the stream back (`zstd -dc … \\| docker run -i … tar -xf -`, transcript) | {fmt(med(bk_restore))} | {spread(bk_restore)} | {fmt(mibs(bk_restore), 1)} |")
w(f"| restore, both | **{fmt(med(list(restore_total.values())))}** | {spread(list(restore_total.values()))} | {fmt(data_mib / med(list(restore_total.values())), 1)} |")
w(f"| engine write: `docker run --rm -i … sh -c 'rm …; tar -xf -' < plain.tar` (the restore's own command) | **{fmt(med(bk_run_write))}** | {spread(bk_run_write)} | {fmt(mibs(bk_run_write), 1)} |")
w(f"| engine write: `docker cp -a - DATA:/ < plain.tar` (volumes emptied before, untimed) | {fmt(med(bk_cp_write))} | {spread(bk_cp_write)} | {fmt(mibs(bk_cp_write), 1)} |")
w("")
w(f"Archive: {med(bk_archive) / MIB:.0f} MiB, {100 * med(bk_archive) / med(bk_bytes):.0f} % of the data (zstd level 1, every core).")
w("")
w("| ratio (median of the rounds' ratios) | value | goal |")
w("| --- | ---: | ---: |")
w(f"| the backup's share of the downtime / the engine's `docker cp` read | **{fmt(r_share)}** | ≤ 1.5 |")
w(f"| the same, from the medians | {fmt(r_share_of_medians)} | |")
w(f"| restore / the engine writing the same data with the restore's command | **{fmt(r_restore_run)}** | ≤ 1.5 |")
w(f"| restore / the engine writing the same data with `docker cp -a -` | {fmt(r_restore_cp)} | |")
w("")
w("Per round (s): " + "; ".join(
    f"round {r}: share {fmt(share_r[r])} / read {fmt(cp_r[r])} = {fmt(share_r[r] / cp_r[r])}"
    + (f", restore {fmt(restore_total[r])} / write {fmt(run_write_r[r])} = {fmt(restore_total[r] / run_write_r[r])}"
       if r in restore_total else "")
    for r in paired) + ".")
w("")

w("## 4. Engines")
w("")
w(
    f"One `upgrade --yes` with its backup on each engine, one after the other, each on a fresh "
    f"server holding the same {M.get('engines_mb', '?')} MiB data set (loaded through the engine), "
    f"then the engine's own `cp DATA:/var/lib/mysql - > /dev/null` of the same data container, over "
    f"the same engine, right after (`scripts/bench/engines.sh`). Podman backs up with the old "
    f"image's tar in a one-shot container (its `cp` gives every file to root). One run each: these "
    f"are single measurements, not medians."
)
w("")
w("| engine | upgrade, wall (s) | backup step (s) | backup MiB/s | engine `cp` read (s) | read MiB/s | backup / read |")
w("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for row in engines:
    x = row["extra"]
    mib = float(x["bytes"]) / MIB
    b, c = float(x["backup"]), float(x["cp_read"])
    w(
        f"| {ENGINE_LABELS.get(row['variant'], row['variant'])} | {fmt(float(row['wall_s']))} | {fmt(b)} | "
        f"{fmt(mib / b, 1)} | {fmt(c)} | {fmt(mib / c, 1)} | **{fmt(b / c)}** |"
    )
w("")

# ---------------------------------------------------------------- findings --
w("## Findings")
w("")
steps_ab = dict(breakdown("downtime", "a-backup"))
steps_c = dict(breakdown("downtime", "c"))
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
    f"{fmt(calls_part)} s (what the tool adds to the same sequence: nothing runs between its stop "
    f"and its run; the keep-down update, the data container and the rename come before the stop)."
]
if after_pull > 0.05 and after_sync < after_pull / 2:
    parts.append(
        f"The pull right before the stop costs about {fmt(after_pull)} s of downtime: the engine is "
        f"still writing the layer it just extracted when the old container is torn down, and a "
        f"`sync` after the pull (while the old server still answers) takes that away."
    )
window = " ".join(parts)
if r_an > 1.15:
    findings.append(f"**a/c without backup is {fmt(r_an)} (> 1.15)**, {fmt(excess)} s over the floor. " + window)
else:
    findings.append(f"a/c without backup is {fmt(r_an)} ({fmt(excess)} s over the floor). " + window)
findings.append(
    f"a/c with the backup of a 4 MiB database is {fmt(r_ab)}, {fmt(dm['a-backup'] - dm['c'])} s over "
    f"the floor; the backup step itself takes {fmt(steps_ab.get('backup', float('nan')))} s (one "
    f"`docker cp`, the archive written and synced to disk), the rest is a-nobackup's."
)
if r_b > 1.15:
    findings.append(
        f"b/c is {fmt(r_b)}: the documented order pulls after the stop, so the "
        f"{fmt(med(pulls), 1)} s pull is downtime. The tool's order (pull first) is what removes it."
    )
dry_rounds = ""
if len(dry_calls) >= 4:
    dry_rounds = (
        f" In the counted run they ran as "
        + ", then ".join(
            " and ".join(f"`{short(c[3], 40)}` ({fmt(c[1] - c[0], 3)} s)" for c in dry_calls[i:i + 2])
            for i in range(0, 4, 2)
        )
        + "."
    )
findings.append(
    f"`upgrade --dry-run` takes {fmt(r_dry)}× the wall time of one `docker inspect` (goal ≤ 3). It "
    f"makes {len(dry_calls)} docker calls, typed inspects two at a time: the server and the data "
    f"container, then the server's image and the parking name (both need the first answer), so two "
    f"inspects' time is inherent.{dry_rounds} The engine's kind comes from the binary itself (a "
    f"compiled `docker` or `podman`), so no `docker --version` runs before them any more; a script "
    f"named docker (podman-docker's) is still asked."
)
tool_inspects = [c for c in tool_calls if c[3].startswith("inspect")]
discovery_end = max((c[1] for c in tool_inspects[:4]), default=float("nan"))
discovery = discovery_end - tool_calls[0][0] if tool_calls else float("nan")
state_reads = sum(e - b for b, e, _, a in tool_calls if "{{json .State}}" in a)
extra_tool = collections.Counter(short(c[3], 40).split()[0] for c in tool_calls)
extra_script = collections.Counter(short(c[3], 40).split()[0] for c in script_calls)
diff = extra_tool - extra_script
noise = abs(r_full - 1) < 0.15
findings.append(
    f"The full upgrade makes {len(tool_calls)} docker calls against the script's {len(script_calls)}; "
    f"the extra ones are "
    + ", ".join(f"{n}× `docker {verb}`" for verb, n in sorted(diff.items()))
    + f": the four discovery reads ({fmt(discovery, 3)} s from the first to the last in the counted "
    f"run), the room check's `du` when there is a backup, and the health wait's pings inside the "
    f"container (`docker exec … curl`) and state reads ({fmt(state_reads, 3)} s). None of it lies "
    f"between the stop and the run. Measured: wall {fmt(r_full)}× the script's (medians {fmt(med(tl))} and "
    f"{fmt(med(sl))} s, ranges {spread(tl)} and {spread(sl)} s), downtime {fmt(med(tld) / med(sld))}× "
    f"({spread(tld)} and {spread(sld)} s)"
    + (
        ": no overhead above the run-to-run noise."
        if noise
        else ". The ranges overlap: on this loaded machine one round's noise is as large as the "
        "difference; the call timeline above is the steadier account."
    )
)
share_goal = "meets" if r_share <= 1.5 else "misses"
findings.append(
    f"**Backup ({data_mib:.0f} MiB): the share of the downtime is {fmt(r_share)}× the engine's read**, "
    f"which {share_goal} the goal of 1.5. The engine's copy is the source (`docker cp DATA:/var -`: no "
    f"container to start, and {fmt(med(bk_cp))} s against {fmt(med(bk_run_read))} s for a one-shot "
    f"container's `tar -cf -` here); the tool keeps the data paths of its stream, compresses at zstd "
    f"level 1 on every core ({med(bk_archive) / MIB:.0f} MiB, {100 * med(bk_archive) / med(bk_bytes):.0f} % "
    f"of the data), hashes it and syncs the file before the new version starts. The step itself took "
    f"{fmt(med(bk_tool))} s ({fmt(med(bk_tool) / med(bk_cp))}× the read); the share differs from it by "
    f"the noise between two servers' downtimes. Both the engine's read and zstd want the CPU: on "
    f"these {M['cores']} cores, shared with other work (load {M['load_start'].split()[0]} at the "
    f"start), the compression is what separates the step from the read."
)
restore_goal = "meets" if r_restore_run <= 1.5 else "misses"
findings.append(
    f"**Restore: {fmt(r_restore_run)}× the engine writing the same data with the restore's own "
    f"command** ({restore_goal} the goal of 1.5): the checksum check ({fmt(med(bk_verify))} s, SHA-256 "
    f"of the archive before any volume is emptied) and the decompression are all the tool adds. "
    f"Against `docker cp -a -` as the write it is {fmt(r_restore_cp)}×: the engine's `cp` writes "
    f"faster than a container's tar reading its stdin ({fmt(med(bk_cp_write))} s against "
    f"{fmt(med(bk_run_write))} s), but it can't empty the volumes, which the restore must do first "
    f"(an old file left beside the restored ones is a database the old version never wrote): a "
    f"restore through it takes two engine commands, a one-shot container that empties the volumes "
    f"and then the copy. The tool does not do that yet."
)
if engines:
    remote = [r for r in engines if r["variant"] in ("unix", "ssh")]
    findings.append(
        "Engines: one upgrade with backup took "
        + ", ".join(
            f"{fmt(float(r['wall_s']))} s on {ENGINE_LABELS.get(r['variant'], r['variant'])}" for r in engines
        )
        + ". Over the remote engine the backup step moved the data at "
        + "; ".join(
            f"{fmt(float(r['extra']['bytes']) / MIB / float(r['extra']['backup']), 1)} MiB/s against "
            f"{fmt(float(r['extra']['bytes']) / MIB / float(r['extra']['cp_read']), 1)} MiB/s for the "
            f"engine's own `docker cp` read ({r['variant']}, backup/read "
            f"{fmt(float(r['extra']['backup']) / float(r['extra']['cp_read']))})"
            for r in remote
        )
        + "."
    )
findings.append(
    f"Peak RSS: the tool itself {own_peak / 1024:.1f} MiB, during the backup (zstd's buffers for its "
    f"worker threads, and the 1 MiB read and write buffers); without a backup "
    f"{max((v[0] for v in rss_runs['upgrade --yes --no-backup']), default=0) / 1024:.1f} MiB. The docker "
    f"CLI it runs peaks at {cli_peak / 1024:.1f} MiB."
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
