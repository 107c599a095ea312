#!/usr/bin/python3
"""The Python PyTorch side of the training-loop comparison.

Trains an MLP on Fashion-MNIST with SGD (momentum 0.9) on one intra-op thread,
the job reglab_bench_train_loop runs in C++: the same files, the same 10%
validation hold-out (so the same number of training samples), the same
scaling (pixels / 255, then standardised with the mean and population std of
the kept training images), the same model shape and batch size. Only the
training epochs are timed, not loading.

Besides each epoch's wall time, it measures this thread's CPU time from the
start of the first step to the start of the last one, as the C++ program does
(robust when other work shares the machine).

Prints a summary and one "sample KEY VALUE" line per epoch for
tools/bench/run_all.

    /usr/bin/python3 tools/bench/train_loop.py --hidden 64 --batch 16 --epochs 1 --reps 3
"""
import argparse
import gzip
import os
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def read_idx_gz(path):
    """One gzip IDX file as a numpy uint8 array of its declared shape."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        sys.exit(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_train(root, val_fraction, seed):
    images = read_idx_gz(os.path.join(root, "train-images-idx3-ubyte.gz"))
    labels = read_idx_gz(os.path.join(root, "train-labels-idx1-ubyte.gz"))
    n = images.shape[0]
    rng = np.random.default_rng(seed)
    keep = rng.permutation(n)[int(round(val_fraction * n)):]
    x = images[keep].astype(np.float32) / np.float32(255.0)
    # Population std (ddof 0), in float64 like the C++ side's statistics.
    mean = x.mean(dtype=np.float64)
    std = x.std(dtype=np.float64)
    x = ((x - mean) / std).astype(np.float32)
    return (torch.from_numpy(x).reshape(-1, 1, 28, 28),
            torch.from_numpy(labels[keep].astype(np.int64)))


def make_mlp(widths, classes):
    layers = [nn.Flatten()]
    width = 28 * 28
    for h in widths:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def train(x, y, widths, batch, epochs, lr, seed):
    """Per epoch: wall seconds, mean training loss, CPU seconds of steps 0..S-2."""
    torch.manual_seed(seed)
    model = make_mlp(widths, 10)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()
    n = x.shape[0]
    last = (n - 1) // batch * batch  # offset of the last step
    out = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(n)
        total = 0.0
        cpu0 = cpu = 0.0
        for i in range(0, n, batch):
            if i == 0:
                cpu0 = time.thread_time()
            if i == last:
                cpu = time.thread_time() - cpu0
            idx = order[i:i + batch]
            logits = model(x.index_select(0, idx))
            loss = F.cross_entropy(logits, y.index_select(0, idx))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * idx.shape[0]
        out.append((time.perf_counter() - start, total / n, cpu))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", default="256", help="hidden widths, comma-separated")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--tag", default="loop")
    a = p.parse_args()
    torch.set_num_threads(1)
    widths = [int(w) for w in a.hidden.split(",")]
    x, y = load_train(a.root, 0.1, a.seed)
    n = x.shape[0]
    print(f"{a.tag}: python {sys.version.split()[0]}, torch {torch.__version__}: MLP 784-"
          f"{'-'.join(map(str, widths))}-10, batch {a.batch}, SGD lr {a.lr} momentum 0.9, "
          f"{n} train samples, {a.epochs} epoch(s) x {a.reps} rep(s), {torch.get_num_threads()} thread")
    seconds = []
    span = ((n + a.batch - 1) // a.batch - 1) * a.batch  # samples in the CPU span
    for rep in range(a.reps):
        for s, loss, cpu in train(x, y, widths, a.batch, a.epochs, a.lr, a.seed + rep):
            seconds.append(s)
            print(f"sample {a.tag}.python_epoch_s {s:.6f}")
            print(f"sample {a.tag}.python_samples_per_s {n / s:.1f}")
            if cpu > 0:
                print(f"sample {a.tag}.python_steps_cpu_s {cpu:.6f}")
                print(f"sample {a.tag}.python_cpu_samples_per_s {span / cpu:.1f}")
            sys.stdout.flush()
    m = statistics.median(seconds)
    print(f"{a.tag}: python loop  median {m:.4f} s/epoch  {n / m:9.0f} samples/s  "
          f"({len(seconds)} epochs, last mean loss {loss:.4f})")


if __name__ == "__main__":
    main()
