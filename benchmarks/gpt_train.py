"""PyTorch eager reference for hlbench's gpt suite (cmd/hlbench/gpt.go).

Usage: gpt_train.py <config json> <threads> <warmup steps> <timed steps>
       gpt_train.py --profile <config json> <threads> <warmup steps> <timed steps>
         (where the time goes: self CPU ms per step by kind of op, the same
         libtorch ops hiddenlab's GPT runs)
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


# Kinds of ops for --profile, by aten name prefix (first match wins).
KINDS = [
    ("GEMM", ("aten::mm", "aten::bmm", "aten::addmm", "aten::matmul", "aten::linear", "aten::baddbmm")),
    ("attention", ("aten::scaled_dot_product", "aten::_scaled_dot_product", "aten::_softmax", "aten::softmax",
                   "aten::_softmax_backward_data")),
    ("cross-entropy", ("aten::cross_entropy", "aten::log_softmax", "aten::_log_softmax", "aten::nll_loss")),
    ("layer norm", ("aten::layer_norm", "aten::native_layer_norm")),
    ("GELU", ("aten::gelu",)),
    # PyTorch 1.13's foreach AdamW records as per-tensor sqrt/add/mul/addcdiv_
    # (elementwise, other); only newer versions' _foreach_ ops land here.
    ("AdamW", ("aten::_foreach_", "Optimizer.step")),
    ("copies and fills", ("aten::copy_", "aten::fill_", "aten::zero_", "aten::zeros", "aten::empty", "aten::clone",
                          "aten::contiguous", "aten::cat", "aten::to", "aten::_to_copy")),
    ("elementwise", ("aten::add", "aten::mul", "aten::div", "aten::sub", "aten::sum", "aten::mean")),
]


def kind_of(name):
    for kind, prefixes in KINDS:
        if name.startswith(prefixes):
            return kind
    return "other"


def main():
    profile = sys.argv[1] == "--profile"
    args = sys.argv[2:] if profile else sys.argv[1:]
    c = json.loads(args[0])
    threads, warmup, steps = int(args[1]), int(args[2]), int(args[3])
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
    if profile:
        with torch.autograd.profiler.profile() as prof:
            for _ in range(steps):
                step(True)
        kinds = {}
        for e in prof.key_averages():
            k = kind_of(e.key)
            kinds[k] = kinds.get(k, 0.0) + e.self_cpu_time_total / 1e3 / steps
        total = sum(kinds.values())
        print("%-18s %10s %6s" % ("ms/step (self CPU)", "ms", "share"))
        for k in [k for k, _ in KINDS] + ["other"]:
            print("%-18s %10.1f %5.1f%%" % (k, kinds.get(k, 0.0), 100 * kinds.get(k, 0.0) / total))
        print("%-18s %10.1f" % ("total", total))
        top = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:12]
        print("\ntop ops by self CPU (ms/step): " + ", ".join(
            "%s %.1f" % (e.key, e.self_cpu_time_total / 1e3 / steps) for e in top))
        return
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
