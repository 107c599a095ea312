#!/usr/bin/python3
"""Per-trial overhead from the coordinator's fork to the end of the first step.

Runs the real CLI on a small sweep (one trial per seed, 1 epoch, small data)
into a fresh database:

    reglab --db TMP/bench.db run TMP/startup.toml -j 1 --no-compare --progress plain

and reads the `time.startup_s` metric every run records at step 0 (seconds
from the coordinator's fork of the worker to the end of its first optimizer
step). It splits that time in three with timestamps already stored: the run's
started_at (set by the coordinator just before it forks), the first line of
the trial's log (the worker is running: executable loaded, store opened) and
the log's "data: ... loaded" line:
    launch   fork -> first log line (exec, shared libraries, static init, store)
    data     first log line -> data loaded
    rest     data loaded -> end of the first step (model, plugin discovery, step)
Timestamps have millisecond resolution. With --floor N it also times N runs of
`reglab --help`: what merely starting the executable costs.
Prints medians and max, and "sample KEY VALUE" lines for tools/bench/run_all.

    /usr/bin/python3 tools/bench/startup.py --reglab build/reglab --dataset synthetic
"""
import argparse
import datetime
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

DATA = {
    # Small training sets: the first step, not the epoch, is what is timed.
    "fashion-mnist": 'dataset = "fashion-mnist"\nlimit = 2000\ntest_limit = 1000\n',
    "synthetic": 'dataset = "synthetic"\n',
}


def log_time(line):
    """Seconds since the epoch of a trial-log line ("2026-01-02 03:04:05.678 info ...", local time)."""
    stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f")
    return stamp.timestamp()


def split_startup(startup_s, started_at, log_path):
    """{launch, data, rest} seconds of one trial's startup, or None when the log lacks a line."""
    spawned = datetime.datetime.strptime(started_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    with open(log_path) as f:
        lines = f.read().splitlines()
    data = [ln for ln in lines if re.search(r" data: .* loaded in ", ln)]
    if not lines or not data:
        return None
    first, loaded = log_time(lines[0]), log_time(data[0])
    return {"launch": first - spawned, "data": loaded - first, "rest": spawned + startup_s - loaded}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reglab", default="build/reglab", help="the reglab executable")
    p.add_argument("--dataset", choices=sorted(DATA), default="synthetic")
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--floor", type=int, default=0, help="also time N runs of `reglab --help`")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    a = p.parse_args()
    tag = "startup_" + a.dataset.replace("-", "_")
    tmp = tempfile.mkdtemp(prefix="reglab_bench_startup_")
    try:
        sweep = os.path.join(tmp, "startup.toml")
        with open(sweep, "w") as f:
            f.write(f'[sweep]\nname = "{tag}"\nseeds = {list(range(a.trials))}\n'
                    "[task]\nepochs = 1\nbatch_size = 128\n"
                    f"[data]\n{DATA[a.dataset]}"
                    '[model]\narch = "mlp"\nhidden = [64]\n'
                    '[optim]\nname = "sgd"\nlr = 0.01\n'
                    '[method]\nname = "ce"\n')
        db = os.path.join(tmp, "bench.db")
        cmd = [a.reglab, "--db", db, "run", sweep, "-j", "1", "--no-compare", "--progress", "plain"]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"{' '.join(cmd)} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
        con = sqlite3.connect(db)
        rows = con.execute(
            "SELECT r.id, m.value, r.log_path, r.started_at FROM runs r JOIN metrics m ON m.run_id = r.id "
            "WHERE m.key = 'time.startup_s' ORDER BY r.id").fetchall()
        con.close()
        if len(rows) != a.trials:
            sys.exit(f"expected {a.trials} time.startup_s points, found {len(rows)}")
        startup, phases = [], {"launch": [], "data": [], "rest": []}
        for run_id, value, log_path, started_at in rows:
            startup.append(value)
            print(f"sample {tag}.startup_s {value:.6f}")
            split = split_startup(value, started_at, log_path)
            for name, seconds in (split or {}).items():
                phases[name].append(seconds)
                print(f"sample {tag}.{name}_s {seconds:.6f}")
        line = (f"{tag}: {a.trials} trials, 1 epoch each, sweep wall {wall:.2f} s; time.startup_s median "
                f"{statistics.median(startup):.3f} s, max {max(startup):.3f} s")
        if phases["launch"]:
            line += "; medians: " + ", ".join(f"{k} {statistics.median(v):.3f} s" for k, v in phases.items())
        print(line)
        if a.floor > 0:
            floor = []
            for _ in range(a.floor):
                start = time.perf_counter()
                subprocess.run([a.reglab, "--help"], capture_output=True, check=True)
                floor.append(time.perf_counter() - start)
                print(f"sample startup_floor.help_s {floor[-1]:.6f}")
            print(f"startup floor: `reglab --help` median {statistics.median(floor):.3f} s over {a.floor} runs")
    finally:
        if a.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
