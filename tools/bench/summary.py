#!/usr/bin/python3
"""Turns the "sample KEY VALUE" lines of the bench programs into one table.

Reads the lines from the files given (or stdin), takes the median of each
key's samples, computes the ratios the project's targets are stated in, and
prints one row per measurement with its target and whether it was met.
Rows whose samples are missing (a measurement that was not run) are left out.
Training-loop rows come twice: "wall" (epoch wall time, reglab's time.train_s;
what the targets are stated in) and "cpu" (this thread's CPU time over the
first S-1 steps of each epoch, which other work on the machine disturbs much
less). On an idle machine the two agree. Where two loops ran in alternation
(reglab and bare C++ within a repetition, Python then C++ within a round), the
table also gives the median of the paired ratios (i-th sample of one loop
against the i-th of the other), which cancels slow drifts of the machine's
speed better than the ratio of the medians.

    /usr/bin/python3 tools/bench/summary.py results.txt
"""
import fileinput
import statistics
from collections import defaultdict


def main():
    samples = defaultdict(list)
    for line in fileinput.input():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "sample":
            samples[parts[1]].append(float(parts[2]))

    def med(key):
        return statistics.median(samples[key]) if samples.get(key) else None

    rows = []  # (measurement, value text, target text, met or None, n)

    def row(name, value, fmt, target=None, ok=None, n=None):
        if value is None:
            return
        rows.append((name, fmt.format(value), target or "", ok, n))

    def count(key):
        return len(samples.get(key, []))

    def paired(num, den):
        """Median of num[i] / den[i] over the samples both keys have."""
        a, b = samples.get(num, []), samples.get(den, [])
        ratios = [x / y for x, y in zip(a, b) if y]
        return statistics.median(ratios) if ratios else None

    # 1. reglab's loop vs the bare C++ loop, training time per epoch.
    bare, reg = med("overhead.bare_epoch_s"), med("overhead.reglab_epoch_s")
    if bare and reg:
        over = (reg / bare - 1) * 100
        row("1 loop (784-256-10 b128): bare C++ s/epoch, wall", bare, "{:.4f}", n=count("overhead.bare_epoch_s"))
        row("1 loop: reglab s/epoch, wall (time.train_s)", reg, "{:.4f}", n=count("overhead.reglab_epoch_s"))
        row("1 loop: reglab overhead vs bare, wall", over, "{:+.2f}%", "<= 3%", over <= 3.0)
        p = paired("overhead.reglab_epoch_s", "overhead.bare_epoch_s")
        if p:
            row("1 loop: reglab overhead vs bare, wall, paired epochs", (p - 1) * 100, "{:+.2f}%", "<= 3%",
                p <= 1.03)
    bare, reg = med("overhead.bare_steps_cpu_s"), med("overhead.reglab_steps_cpu_s")
    if bare and reg:
        over = (reg / bare - 1) * 100
        row("1 loop: bare C++ s/epoch, cpu", bare, "{:.4f}", n=count("overhead.bare_steps_cpu_s"))
        row("1 loop: reglab s/epoch, cpu", reg, "{:.4f}", n=count("overhead.reglab_steps_cpu_s"))
        row("1 loop: reglab overhead vs bare, cpu", over, "{:+.2f}%", "<= 3%", over <= 3.0)
        p = paired("overhead.reglab_steps_cpu_s", "overhead.bare_steps_cpu_s")
        if p:
            row("1 loop: reglab overhead vs bare, cpu, paired epochs", (p - 1) * 100, "{:+.2f}%", "<= 3%",
                p <= 1.03)

    # 1t. Twin steps: reglab's real loop with a bare twin stepping on the same
    # batch inside every interrupt poll (the most robust figure on a shared machine).
    for tag, label in (("twin", "784-256-10 b128"), ("twin16", "784-64-10 b16")):
        r = med(f"{tag}.twin_ratio")
        if r is None:
            continue
        target = "<= 3%" if tag == "twin" else None
        row(f"1t twin steps ({label}): reglab overhead vs bare, cpu", (r - 1) * 100, "{:+.2f}%", target,
            r <= 1.03 if target else None, n=count(f"{tag}.twin_ratio"))
        m = med(f"{tag}.twin_median_step_ratio")
        if m is not None:
            row(f"1t twin steps ({label}): median per-step ratio", (m - 1) * 100, "{:+.2f}%")

    # 1m. Stateful methods vs ce inside reglab: the twin ratio with the method
    # over the twin ratio with ce (the bare twin is plain CE in both).
    ce_ratio = med("twin.twin_ratio")
    for m in ("elr", "ps_kd"):
        r = med(f"twin_{m}.twin_ratio")
        if r is None or not ce_ratio:
            continue
        slower = (r / ce_ratio - 1) * 100
        row(f"1m {m} vs ce in reglab's loop (784-256-10 b128), cpu", slower, "{:+.2f}%", "<= 10%", slower <= 10.0,
            n=count(f"twin_{m}.twin_ratio"))

    # 1b. The parts of one step, variants interleaved step by step.
    for tag, label in (("parts_b128", "784-256-10 b128"), ("parts_b16", "784-64-10 b16")):
        base = med(f"{tag}.bare_us")
        if not base:
            continue
        row(f"1b step ({label}): bare step, CPU us", base, "{:.1f}", n=count(f"{tag}.bare_us"))
        for key, what in (("bare_accuracy", "+ per-step accuracy"), ("ce_gather", "ce plugin's gather loss"),
                          ("reglab_step", "reglab's step (all of it)"),
                          ("strict_ce_accuracy", "cross_entropy(strict) + accuracy")):
            v = med(f"{tag}.{key}_us")
            if v:
                row(f"1b step ({label}): {what}", (v / base - 1) * 100, "{:+.1f}%")

    # 2. reglab vs Python PyTorch.
    for tag, label, target in (("small", "(i) 784-64-10 b16", 1.3), ("large", "(ii) 784-512-256-10 b128", 1.0)):
        for clock, infix in (("wall", ""), ("cpu", "cpu_")):
            py = med(f"{tag}.python_{infix}samples_per_s")
            cb = med(f"{tag}.bare_{infix}samples_per_s")
            cr = med(f"{tag}.reglab_{infix}samples_per_s")
            row(f"2{label}: Python samples/s, {clock}", py, "{:.0f}", n=count(f"{tag}.python_{infix}samples_per_s"))
            row(f"2{label}: bare C++ samples/s, {clock}", cb, "{:.0f}", n=count(f"{tag}.bare_{infix}samples_per_s"))
            row(f"2{label}: reglab samples/s, {clock}", cr, "{:.0f}", n=count(f"{tag}.reglab_{infix}samples_per_s"))
            if py and cb:
                row(f"2{label}: bare C++ / Python, {clock}", cb / py, "{:.2f}x")
            if py and cr:
                row(f"2{label}: reglab / Python, {clock}", cr / py, "{:.2f}x", f">= {target}x", cr / py >= target)
            p = paired(f"{tag}.reglab_{infix}samples_per_s", f"{tag}.python_{infix}samples_per_s")
            if p:
                row(f"2{label}: reglab / Python, {clock}, paired rounds", p, "{:.2f}x", f">= {target}x",
                    p >= target)
            p = paired(f"{tag}.bare_{infix}samples_per_s", f"{tag}.python_{infix}samples_per_s")
            if p:
                row(f"2{label}: bare C++ / Python, {clock}, paired rounds", p, "{:.2f}x")

    # 3. Metric logging.
    for order in ("interleaved", "sorted"):
        pts = med(f"store_{order}.points_per_s")
        row(f"3 store: add_metrics points/s (20 x 50k, {order})", pts, "{:,.0f}", ">= 200,000",
            pts is not None and pts >= 2e5)

    # 4. Spawn to end of the first step.
    for ds in ("fashion_mnist", "synthetic"):
        key = f"startup_{ds}.startup_s"
        if samples.get(key):
            m, mx = med(key), max(samples[key])
            row(f"4 startup ({ds}): time.startup_s median", m, "{:.3f} s", "< 0.5 s", m < 0.5, count(key))
            row(f"4 startup ({ds}): time.startup_s max", mx, "{:.3f} s")
            for phase, what in (("launch", "fork -> worker's first log line"), ("data", "data loading"),
                                ("rest", "model, plugins, first step")):
                row(f"4 startup ({ds}): {what}", med(f"startup_{ds}.{phase}_s"), "{:.3f} s")
    row("4 startup: `reglab --help` (exec floor)", med("startup_floor.help_s"), "{:.3f} s",
        n=count("startup_floor.help_s"))

    w0 = max(len(r[0]) for r in rows) if rows else 10
    print(f"{'measurement':<{w0}}  {'median':>12}  {'target':>10}  {'met':>4}  n")
    print(f"{'-' * w0}  {'-' * 12}  {'-' * 10}  {'-' * 4}  --")
    for name, value, target, ok, n in rows:
        met = "" if ok is None else ("yes" if ok else "NO")
        print(f"{name:<{w0}}  {value:>12}  {target:>10}  {met:>4}  {n or ''}")


if __name__ == "__main__":
    main()
