"""PyTorch eager reference for hlbench's core suite (cmd/hlbench/core.go).

Runs the same loops as the Go side, on the same libtorch (Debian python3-torch),
with the same thread count, and prints one JSON object: case -> microseconds
per iteration of each repeat.
"""
import json
import sys
import time

import torch


def timeit(fn, seconds, repeats):
    fn(100)  # warm up
    # Size a batch of iterations to about seconds/repeats each.
    n, t = 100, 0.0
    while t < seconds / repeats / 4:
        n *= 2
        t0 = time.perf_counter()
        fn(n)
        t = time.perf_counter() - t0
    n = max(1, int(n * (seconds / repeats) / t))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(n)
        samples.append((time.perf_counter() - t0) / n * 1e6)
    return samples


def main():
    threads, seconds, repeats = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)

    a, b = torch.randn(8, 8), torch.randn(8, 8)

    def add(n):
        for _ in range(n):
            c = a + b

    x = torch.randn(4, 8)
    w = torch.randn(8, 8, requires_grad=True)
    bias = torch.randn(8, requires_grad=True)

    def tiny(n):
        for _ in range(n):
            loss = torch.tanh(torch.nn.functional.linear(x, w, bias)).sum()
            loss.backward()
            w.grad = None
            bias.grad = None

    out = {"add 8x8": timeit(add, seconds, repeats), "tiny fwd+bwd": timeit(tiny, seconds, repeats)}
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "us": out}))


if __name__ == "__main__":
    main()
