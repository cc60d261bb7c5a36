"""PyTorch reference for hiddenlab's GPT (torch/nn/gpt.go), for cross-checks.

Usage: gpt_reference.py <dir>
Reads <dir>/config.json, <dir>/weights.safetensors (Go-initialised weights) and
<dir>/batch.safetensors (ids, targets); runs the same model in PyTorch eager:
forward, mean cross-entropy, backward, one torch.optim.AdamW step; writes
<dir>/reference.safetensors with the logits, the loss and every parameter after
the step. Only the standard library and torch are needed (the safetensors
format is read and written by hand).
"""
import json
import math
import struct
import sys

import torch
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32,
          "BF16": torch.bfloat16, "F16": torch.float16, "U8": torch.uint8, "BOOL": torch.bool}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(body[b:end]), dtype=DTYPES[e["dtype"]]) if end > b else torch.empty(0, dtype=DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    names = sorted(tensors)
    rev = {v: k for k, v in DTYPES.items()}
    header, blobs, off = {}, [], 0
    for n in names:
        t = tensors[n].detach().contiguous().cpu()
        b = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
        header[n] = {"dtype": rev[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    js = json.dumps(header).encode()
    js += b" " * ((8 - len(js) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)


class GPT(torch.nn.Module):
    """The same architecture as nn.GPT, written the nanoGPT way."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        C, V = c["width"], c["vocab"]
        self.wte = torch.nn.Embedding(V, C)
        if c["positions"] == "learned":
            self.wpe = torch.nn.Embedding(c["context"], C)
        self.blocks = torch.nn.ModuleList()
        hidden = round(c["mlp_ratio"] * C)
        bias = not c["no_bias"]
        for _ in range(c["layers"]):
            b = torch.nn.Module()
            b.ln_1, b.ln_2 = self.norm(C), self.norm(C)
            b.attn = torch.nn.Module()
            b.attn.qkv = torch.nn.Linear(C, 3 * C, bias=bias)
            b.attn.proj = torch.nn.Linear(C, C, bias=bias)
            b.mlp = torch.nn.Module()
            b.mlp.fc = torch.nn.Linear(C, hidden, bias=bias)
            b.mlp.proj = torch.nn.Linear(hidden, C, bias=bias)
            self.blocks.append(b)
        self.ln_f = self.norm(C)
        if not c["tied_head"]:
            self.head = torch.nn.Linear(C, V, bias=False)

    def norm(self, C):
        if self.c["norm"] == "rmsnorm":
            m = torch.nn.Module()
            m.weight = torch.nn.Parameter(torch.ones(C))
            return m
        return torch.nn.LayerNorm(C, eps=self.c["norm_eps"])

    def apply_norm(self, m, x):
        if self.c["norm"] == "rmsnorm":
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c["norm_eps"]) * m.weight
        return m(x)

    def act(self, x):
        a = self.c["activation"]
        if a == "gelu_tanh":
            return F.gelu(x, approximate="tanh")
        if a == "silu":
            return F.silu(x)
        if a == "relu":
            return F.relu(x)
        return F.gelu(x)

    def rotary(self, x):
        T, hd = x.shape[-2], x.shape[-1]
        d = self.c["rotary_dims"] or hd
        half = d // 2
        pos = torch.arange(T, dtype=torch.float64)[:, None]
        inv = self.c["rotary_base"] ** (-2 * torch.arange(half, dtype=torch.float64) / d)
        ang = pos * inv
        cos, sin = ang.cos().float(), ang.sin().float()
        x1, x2 = x[..., :half], x[..., half:d]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin, x[..., d:]], -1)

    def attn(self, b, x):
        B, T, C = x.shape
        H = self.c["heads"]
        q, k, v = b.attn.qkv(x).view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
        if self.c["positions"] == "rotary":
            q, k = self.rotary(q), self.rotary(k)
        if self.c.get("fused_attention"):
            if hasattr(F, "scaled_dot_product_attention"):  # PyTorch 2.x
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:  # 1.13: the same kernel under its private name
                y = F._scaled_dot_product_attention(q, k, v, None, 0.0, False, True)[0]
        else:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(C // H)
            att = att.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf")).softmax(-1)
            y = att @ v
        y = y.transpose(1, 2).reshape(B, T, C)
        return b.attn.proj(y)

    def forward(self, ids):
        x = self.wte(ids)
        if self.c["positions"] == "learned":
            x = x + self.wpe.weight[: ids.shape[1]]
        for b in self.blocks:
            mlp = lambda h: b.mlp.proj(self.act(b.mlp.fc(self.apply_norm(b.ln_2, h))))
            if self.c["parallel_residual"]:
                x = x + self.attn(b, self.apply_norm(b.ln_1, x)) + mlp(x)
            else:
                x = x + self.attn(b, self.apply_norm(b.ln_1, x))
                x = x + mlp(x)
        x = self.apply_norm(self.ln_f, x)
        return x @ self.wte.weight.t() if self.c["tied_head"] else self.head(x)


def main():
    d = sys.argv[1]
    torch.set_num_threads(1)
    c = json.load(open(f"{d}/config.json"))
    model = GPT(c)
    weights = read_safetensors(f"{d}/weights.safetensors")
    missing, unexpected = model.load_state_dict(weights, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    batch = read_safetensors(f"{d}/batch.safetensors")
    logits = model(batch["ids"])
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1))
    loss.backward()
    opt = torch.optim.AdamW(model.parameters(), lr=c["lr"], betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=c["weight_decay"], foreach=False)
    opt.step()
    out = {"logits": logits, "loss": loss.reshape(1)}
    for n, p in model.named_parameters():
        out["after." + n] = p
    write_safetensors(f"{d}/reference.safetensors", out)


if __name__ == "__main__":
    main()
