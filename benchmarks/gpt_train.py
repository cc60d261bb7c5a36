"""PyTorch eager reference for hlbench's gpt suite (cmd/hlbench/gpt.go).

Usage: gpt_train.py <config json> <threads> <warmup steps> <timed steps>
Trains the same GPT as hiddenlab's (torch/nn/testdata/gpt_reference.py) on one
fixed random batch and prints JSON: seconds per step, peak RSS (and peak GPU
memory). The config may set "device" (cpu or cuda) and "precision" (fp32 or
bf16: autocast). Optimizer: torch.optim.AdamW with its fastest path here
(foreach on the CPU, fused on CUDA where this PyTorch has it).
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
    dev = c.get("device", "cpu")
    bf16 = c.get("precision", "fp32") == "bf16"
    if dev != "cpu":
        torch.backends.cuda.matmul.allow_tf32 = True
    c["fused_attention"] = True
    model = GPT(c).to(dev)
    for n, p in model.named_parameters():
        torch.nn.init.normal_(p, 0.0, 0.02) if p.dim() > 1 else None
    kw = {"foreach": True}
    if dev != "cpu":
        try:
            torch.optim.AdamW([torch.zeros(1, device=dev, requires_grad=True)], fused=True)
            kw = {"fused": True}
        except (TypeError, RuntimeError):
            pass
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1, **kw)
    B, T, V = c["batch"], c["context"], c["vocab"]
    ids = torch.randint(0, V, (B, T), device=dev)
    targets = torch.randint(0, V, (B, T), device=dev)
    dev_type = "cuda" if dev.startswith("cuda") else "cpu"

    def step(sync):
        with torch.autocast(dev_type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(ids)
            loss = F.cross_entropy(logits.reshape(-1, V).float(), targets.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item() if sync else loss

    for _ in range(warmup):
        step(True)
    if dev_type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step(False)
    loss = loss.item()  # waits for the GPU
    dt = (time.perf_counter() - t0) / steps
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "step_s": dt, "peak_rss": rss,
           "loss": loss, "optimizer": list(kw)[0]}
    if dev_type == "cuda":
        out["peak_gpu"] = torch.cuda.max_memory_allocated()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
