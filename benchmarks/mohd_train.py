"""PyTorch eager reference for hlbench's mohd suite (cmd/hlbench/mohd.go).

Usage: mohd_train.py <cases json> <threads>
       mohd_train.py --profile <cases json> <threads>   (where the time goes)
Each case is a MoHD (or vanilla) model as hiddenlab's models/mohd builds it,
with the same operations: pre-norm RMSNorm, fused QKV and W1|W3 matrices with
D rows, RoPE (GPT-NeoX halves), SDPA-style causal attention, SwiGLU, a
softmax router over the routed groups with top-K, norm-preserving activation
scaling, Monarch group fusion, the balance loss, and the masked or gathered
(MoE-style dispatch) execution path. Each case trains on one fixed random
batch (AdamW foreach, lr 3e-4, wd 0.1); prints JSON with the seconds per step
of every case. With --profile it instead runs the autograd profiler over
the timed steps and prints, per case, the self CPU time per step of each kind
of operation (GEMMs, attention, dispatch/indexing, elementwise, copies and
fills, optimizer, other).
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(d)), eps

    def forward(self, x):
        return x * x.square().mean(-1, keepdim=True).add(self.eps).rsqrt() * self.weight


def rotary(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


class Sublayer(nn.Module):
    def __init__(self, c, D, n_in, n_out, std, proj_std, router):
        super().__init__()
        self.c, self.D = c, D
        self.N, self.Ns, self.K = c["groups"], c["shared"], c["topk"]
        self.Nr, self.g = self.N - self.Ns, D // self.N
        self.norm = RMSNorm(D)
        self.w_in = nn.Parameter(torch.randn(D, n_in) * std)   # rows: input dims
        self.w_out = nn.Parameter(torch.randn(D, n_out) * proj_std)  # rows: output dims
        self.router = nn.Parameter(torch.randn(D, self.Nr) * 1e-3) if router else None
        if c["fusion"] == "monarch":
            self.bd1 = nn.Parameter(torch.randn(self.N, self.g, self.g) / math.sqrt(self.g))
            self.bd2 = nn.Parameter(torch.zeros(self.g, self.N, self.N))
        else:
            self.bd1 = None

    def route(self, u):
        Nr, K = self.Nr, self.K
        p = (u @ self.router).softmax(-1)
        gate, top = p.topk(K, -1)
        flat = top.reshape(-1)
        load = F.one_hot(flat, Nr).sum(0)
        group, order = flat.sort(0)
        _, inv = order.sort(0)
        tok = order // K
        r = dict(p=p, top=top, gate=gate, load=load, loads=load.tolist(), order=order, inv=inv, tok=tok,
                 rows=tok * self.N + group + self.Ns, dest=tok * Nr + group)
        r["balance"] = (load.float() / flat.numel() * p.mean(0)).sum() * Nr
        return r

    def alpha(self, u, r):
        BT = u.shape[0]
        e = u.view(BT, self.N, self.g).square().sum(-1)
        kept = e[:, :self.Ns].sum(-1, keepdim=True)
        if r is not None:
            kept = kept + (r["gate"].square() * e[:, self.Ns:].gather(1, r["top"])).sum(-1, keepdim=True)
        return e.sum(-1, keepdim=True).clamp_min(1e-30).sqrt() / (kept.clamp_min(1e-30).sqrt() + 1e-6)

    def group_gates(self, r, mask):
        BT = r["top"].shape[0]
        src = torch.ones_like(r["gate"]) if mask else r["gate"]
        routed = torch.zeros(BT, self.Nr).scatter(1, r["top"], src)
        w = torch.cat([torch.ones(BT, self.Ns), routed], 1)
        return w[:, :, None].expand(BT, self.N, self.g).reshape(BT, self.D)

    def per_group(self, x, W, r, f):
        sizes = ([self.Ns * self.g] if self.Ns else []) + [self.g] * self.Nr
        ws = W.split(sizes, 0)
        shared, ws = (ws[0], ws[1:]) if self.Ns else (None, ws)
        parts = [f(xj, wj) for xj, wj, n in zip(x.split(r["loads"], 0), ws, r["loads"]) if n > 0]
        return shared, torch.cat(parts, 0)

    def project_in(self, u, r, a):
        W = self.w_in
        if r is None:
            return (u * a) @ W
        if self.c["path"] == "masked":
            return (u * self.group_gates(r, False) * a) @ W
        BT, n = u.shape[0], W.shape[1]
        gates = r["gate"].reshape(-1).index_select(0, r["order"])[:, None] * a.index_select(0, r["tok"])
        vals = u.view(BT * self.N, self.g).index_select(0, r["rows"]) * gates
        shared, routed = self.per_group(vals, W, r, lambda x, w: x @ w)
        out = routed.index_select(0, r["inv"]).view(BT, self.K, n).sum(1)
        return out if shared is None else out + (u[:, :shared.shape[0]] * a) @ shared

    def project_out(self, h, r):
        W = self.w_out
        if r is None:
            return F.linear(h, W)
        if self.c["path"] == "masked":
            return F.linear(h, W) * self.group_gates(r, True)
        BT = h.shape[0]
        shared, res = self.per_group(h.index_select(0, r["tok"]), W, r, F.linear)
        routed = torch.zeros(BT * self.Nr, self.g).index_put((r["dest"],), res).view(BT, self.Nr * self.g)
        return routed if shared is None else torch.cat([F.linear(h, shared), routed], 1)

    def fuse(self, y):
        if self.bd1 is None:
            return y
        BT = y.shape[0]
        a = torch.bmm(y.view(BT, self.N, self.g).transpose(0, 1), self.bd1)  # [N, BT, g]
        b = torch.bmm(a.permute(2, 1, 0), self.bd2)  # [g, BT, N]
        return y + b.permute(1, 2, 0).reshape(BT, self.D)


class MoHD(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        if c["vanilla"]:
            c.update(groups=1, shared=1, topk=0, fusion="off")
        D, L, da, dff = c["width"], c["layers"], c["heads"] * c["head_dim"], c["ffn"]
        std, proj = 0.02, 0.02 / math.sqrt(2 * L)
        routed = c["groups"] > c["shared"]
        self.embed = nn.Parameter(torch.randn(c["vocab"], D) * std)
        self.attn = nn.ModuleList(Sublayer(c, D, 3 * da, da, std, proj, routed) for _ in range(L))
        self.ffn = nn.ModuleList(Sublayer(c, D, 2 * dff, dff, std, proj, routed) for _ in range(L))
        self.norm = RMSNorm(D)
        self.head = nn.Parameter(torch.randn(c["vocab"], D) * std)
        hd, T = c["head_dim"], c["context"]
        ang = torch.arange(T)[:, None] * 10000 ** (-2 * torch.arange(hd // 2) / hd)
        self.cos, self.sin = ang.cos(), ang.sin()

    def sub(self, s, x, body):
        B, T, D = x.shape
        u = s.norm(x).reshape(B * T, D)
        r = s.route(u) if s.router is not None else None
        y = s.fuse(s.project_out(body(s.project_in(u, r, s.alpha(u, r))), r))
        return x + y.view(B, T, D), r

    def forward(self, ids):
        B, T = ids.shape
        c, H, hd = self.c, self.c["heads"], self.c["head_dim"]
        x = F.embedding(ids, self.embed)
        bal = []

        def attention(qkv):
            q, k, v = qkv.view(B, T, 3, H, hd).permute(2, 0, 3, 1, 4).unbind(0)
            q, k = rotary(q, self.cos[:T], self.sin[:T]), rotary(k, self.cos[:T], self.sin[:T])
            if hasattr(F, "scaled_dot_product_attention"):  # PyTorch 2.x
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:  # 1.13, as hiddenlab's shim on Debian's libtorch
                y = F._scaled_dot_product_attention(q, k, v, None, 0.0, False, True)[0]
            return y.transpose(1, 2).reshape(B * T, H * hd)

        def swiglu(h):
            a, b = h.chunk(2, -1)
            return F.silu(a) * b

        for a, f in zip(self.attn, self.ffn):
            x, r = self.sub(a, x, attention)
            if r is not None:
                bal.append(r["balance"])
            x, r = self.sub(f, x, swiglu)
            if r is not None:
                bal.append(r["balance"])
        logits = F.linear(self.norm(x), self.head)
        aux = 0.01 * torch.stack(bal).mean() if bal else None
        return logits, aux


KINDS = [
    ("GEMM", ("aten::mm", "aten::bmm", "aten::addmm", "aten::matmul")),
    ("attention", ("aten::_scaled_dot_product", "aten::_softmax", "aten::_softmax_backward_data")),
    ("dispatch/indexing", ("aten::index", "aten::_index_put", "aten::index_put", "aten::index_select", "aten::index_add",
                           "aten::sort", "aten::topk", "aten::one_hot", "aten::gather", "aten::scatter", "aten::cumsum",
                           "aten::cat", "aten::split")),
    ("optimizer", ("aten::_foreach",)),
    ("copies and fills", ("aten::copy_", "aten::fill_", "aten::zero_", "aten::clone", "aten::contiguous", "aten::zeros")),
    ("elementwise", ("aten::mul", "aten::add", "aten::sub", "aten::div", "aten::sum", "aten::mean", "aten::square",
                     "aten::rsqrt", "aten::sqrt", "aten::silu", "aten::pow", "aten::clamp", "aten::neg", "aten::cos",
                     "aten::sin", "aten::masked_fill", "aten::where", "aten::exp", "aten::log", "aten::nll_loss",
                     "aten::_log_softmax", "aten::threshold", "aten::expand", "aten::view")),
]


def kind_of(name):
    for kind, prefixes in KINDS:
        if name.startswith(prefixes):
            return kind
    return "other"


def time_case(c, threads, profile=False):
    torch.manual_seed(0)
    model = MoHD(dict(c))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1, foreach=True)
    B, T, V = c["batch"], c["context"], c["vocab"]
    ids, targets = torch.randint(0, V, (B, T)), torch.randint(0, V, (B, T))

    def step():
        logits, aux = model(ids)
        loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
        if aux is not None:
            loss = loss + aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(c["warmup"]):
        step()
    if profile:
        with torch.autograd.profiler.profile() as prof:
            for _ in range(c["steps"]):
                step()
        kinds = {}
        for e in prof.key_averages():
            kinds[kind_of(e.key)] = kinds.get(kind_of(e.key), 0.0) + e.self_cpu_time_total / 1e3 / c["steps"]
        return kinds
    t0 = time.perf_counter()
    for _ in range(c["steps"]):
        step()
    return (time.perf_counter() - t0) / c["steps"]


def main():
    profile = sys.argv[1] == "--profile"
    args = sys.argv[2:] if profile else sys.argv[1:]
    cases, threads = json.loads(args[0]), int(args[1])
    torch.set_num_threads(threads)
    if profile:
        names = [k for k, _ in KINDS] + ["other"]
        print("%-28s" % "ms/step (self CPU)" + "".join("%19s" % n for n in names) + "%9s" % "total")
        for c in cases:
            kinds = time_case(c, threads, profile=True)
            print("%-28s" % c["name"] + "".join("%19.1f" % kinds.get(n, 0.0) for n in names)
                  + "%9.1f" % sum(kinds.values()))
        return
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "step_s": {}}
    for c in cases:
        out["step_s"][c["name"]] = time_case(c, threads)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
