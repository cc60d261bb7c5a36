"""PyTorch eager reference for hlbench's codebook-layer suite (cmd/hlbench/codebooklayer.go).

Usage: codebook_layer.py <shapes json> <threads> <repeats>
For each shape {"name", "N", "D", "G", "C", "k"} times one forward and backward of
codebook_train.Codebook (today's algorithm: LayerNorm, one bmm of all scores, topk,
embedding, straight-through, MSE) in training mode on N tokens of width D, the loss
sum(out * w) + mse, gradients dropped after each repeat. Prints JSON: the median
milliseconds per forward + backward of each shape.
"""
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from codebook_train import Codebook  # noqa: E402


def main():
    shapes = json.loads(sys.argv[1])
    threads, repeats = int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    out = {}
    for s in shapes:
        layer = Codebook(s["D"], s["G"], s["C"], s["k"], True)
        x = torch.randn(s["N"], s["D"], requires_grad=True)
        w = torch.randn(s["N"], s["D"])

        def once():
            y = layer(x)
            ((y * w).sum() + layer.mse).backward()
            x.grad = None
            for p in layer.parameters():
                p.grad = None

        for _ in range(2):
            once()
        ms = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            once()
            ms.append((time.perf_counter() - t0) * 1e3)
        out[s["name"]] = statistics.median(ms)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "ms": out}))


if __name__ == "__main__":
    main()
