"""PyTorch eager reference for hlbench's codebook suite (cmd/hlbench/codebook.go).

Usage: codebook_train.py <config json> <threads> <warmup steps> <timed steps> <codebooks: true|false>
Trains the benchmark GPT of torch/nn/testdata/gpt_reference.py with the codebooks of
models/codebook (Tamkin et al. 2023): a group codebook (one per head) on the per-head
attention output before the output projection (attn_preproj) and a vanilla codebook on
the MLP output before the residual add (mlp), in every layer. Each codebook computes
what models/codebook/layer.go computes:

  a   = LayerNorm_d(x) per group (the group codebook's gain and bias train; the MLP
        codebook's stay at 1 and 0, as in the official code)
  ids = topk_k(a . c_i / ||c_i||) over the C codes (no gradient)
  q   = mean of the k selected raw codes
  out = q + (a - a.detach())                  (straight-through)
  mse = sum over groups of mean over tokens of ||q - a.detach()||^2, added to the loss
  counts[g, id] += 1 per selection while training

on one fixed random batch, with torch.optim.AdamW (foreach=True): the codebooks in
their own group (no weight decay), the model's parameters with weight decay 0.1, as
the Go side. Prints JSON: wall and CPU (user + system) seconds per step, peak RSS, loss.
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


class Codebook(torch.nn.Module):
    """G codebooks of C codes over D/G features each; k codes selected per token."""

    def __init__(self, D, G, C, k, train_ln):
        super().__init__()
        self.G, self.C, self.k, self.d = G, C, k, D // G
        self.codes = torch.nn.Parameter(torch.randn(G, C, self.d))
        self.ln_weight = torch.nn.Parameter(torch.ones(G, self.d), requires_grad=train_ln)
        self.ln_bias = torch.nn.Parameter(torch.zeros(G, self.d), requires_grad=train_ln)
        self.register_buffer("counts", torch.zeros(G, C, dtype=torch.int64))
        self.mse = None

    def forward(self, x):
        shape = x.shape
        a = F.layer_norm(x.reshape(*shape[:-1], self.G, self.d), (self.d,), eps=1e-5)
        a = (a * self.ln_weight + self.ln_bias).reshape(-1, self.G, self.d)  # [N, G, d]
        with torch.no_grad():
            norm = self.codes / self.codes.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            scores = torch.bmm(a.transpose(0, 1), norm.transpose(1, 2))  # [G, N, C]
            ids = scores.topk(self.k, dim=-1).indices.transpose(0, 1)  # [N, G, k]
        offset = torch.arange(0, self.G * self.C, self.C).view(1, self.G, 1)
        flat = (ids + offset).reshape(-1)
        q = F.embedding(flat, self.codes.reshape(-1, self.d)).view(-1, self.G, self.k, self.d).sum(2) / self.k
        if self.training:
            with torch.no_grad():
                self.counts.view(-1).index_put_((flat,), torch.ones_like(flat), accumulate=True)
        ad = a.detach()
        self.mse = (q - ad).square().sum(-1).mean(0).sum()
        return (q + (a - ad)).reshape(shape)


class CodebookGPT(GPT):
    """gpt_reference's GPT with codebooks at attn_preproj and mlp in every layer."""

    def __init__(self, c, C, k):
        super().__init__(c)
        W, H = c["width"], c["heads"]
        self.cb_attn = torch.nn.ModuleList(Codebook(W, H, C, k, True) for _ in range(c["layers"]))
        self.cb_mlp = torch.nn.ModuleList(Codebook(W, 1, C, k, False) for _ in range(c["layers"]))

    def attn_cb(self, i, b, x):
        B, T, C = x.shape
        H = self.c["heads"]
        q, k, v = b.attn.qkv(x).view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
        if hasattr(F, "scaled_dot_product_attention"):  # PyTorch 2.x
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # 1.13: the same kernel under its private name, as gpt_reference uses
            y = F._scaled_dot_product_attention(q, k, v, None, 0.0, False, True)[0]
        y = y.transpose(1, 2).reshape(B, T, C)
        return b.attn.proj(self.cb_attn[i](y))

    def forward(self, ids):
        x = self.wte(ids) + self.wpe.weight[: ids.shape[1]]
        for i, b in enumerate(self.blocks):
            x = x + self.attn_cb(i, b, self.apply_norm(b.ln_1, x))
            x = x + self.cb_mlp[i](b.mlp.proj(self.act(b.mlp.fc(self.apply_norm(b.ln_2, x)))))
        x = self.apply_norm(self.ln_f, x)
        return x @ self.wte.weight.t()

    def aux_loss(self):
        return sum(m.mse for m in list(self.cb_attn) + list(self.cb_mlp))


def main():
    c = json.loads(sys.argv[1])
    threads, warmup, steps = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    codebooks = sys.argv[5] == "true"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    c["fused_attention"] = True
    model = CodebookGPT(c, c["codes"], c["k"]) if codebooks else GPT(c)
    cb, rest = [], []
    for n, p in model.named_parameters():
        if n.startswith("cb_"):
            cb.append(p)
            continue
        if p.dim() > 1:
            torch.nn.init.normal_(p, 0.0, 0.02)
        rest.append(p)
    groups = [{"params": rest, "weight_decay": 0.1}]
    if cb:
        groups.append({"params": [p for p in cb if p.requires_grad], "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=3e-4, foreach=True)
    B, T, V = c["batch"], c["context"], c["vocab"]
    ids = torch.randint(0, V, (B, T))
    targets = torch.randint(0, V, (B, T))

    def step():
        logits = model(ids)
        loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
        if codebooks:
            loss = loss + model.aux_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        loss = step()
    dt = (time.perf_counter() - t0) / steps
    cpu = (time.process_time() - c0) / steps
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "step_s": dt, "cpu_s": cpu,
                      "peak_rss": rss, "loss": loss}))


if __name__ == "__main__":
    main()
