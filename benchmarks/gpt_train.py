"""PyTorch eager reference for hlbench's gpt suite (cmd/hlbench/gpt.go).

Usage: gpt_train.py <config json> <threads> <warmup steps> <timed steps>
Trains the same GPT as hiddenlab's (torch/nn/testdata/gpt_reference.py) on one
fixed random batch with torch.optim.AdamW (foreach=True, PyTorch 1.13's fastest
CPU path) and prints JSON: seconds per step, peak RSS.
"""
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "torch", "nn", "testdata"))
from gpt_reference import GPT  # noqa: E402


def main():
    c = json.loads(sys.argv[1])
    threads, warmup, steps = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    c["fused_attention"] = True
    model = GPT(c)
    for n, p in model.named_parameters():
        torch.nn.init.normal_(p, 0.0, 0.02) if p.dim() > 1 else None
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1, foreach=True)
    B, T, V = c["batch"], c["context"], c["vocab"]
    ids = torch.randint(0, V, (B, T))
    targets = torch.randint(0, V, (B, T))

    def step():
        logits = model(ids)
        loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    dt = (time.perf_counter() - t0) / steps
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "step_s": dt,
                      "peak_rss": rss, "loss": loss}))


if __name__ == "__main__":
    main()
