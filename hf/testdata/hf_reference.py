"""PyTorch reference for package hf (hiddenlab's Hugging Face import/export).

The five architectures below are written from transformers' modeling files
(models/gpt2/modeling_gpt2.py, gpt_neo/modeling_gpt_neo.py,
gpt_neox/modeling_gpt_neox.py, llama/modeling_llama.py,
qwen2/modeling_qwen2.py) with HF's module and parameter names, weight layouts
(GPT-2's Conv1D [in, out], GPT-NeoX's per-head interleaved query_key_value),
config defaults and attention details (no scaling in GPT-Neo, local windows,
partial rotary, grouped-query attention). They share nothing with hiddenlab's
layout, so a match means hiddenlab reads and writes what HF would.

Only the standard library and torch (1.13) are needed: safetensors files are
read and written by hand, and transformers is not required.

Usage:
  hf_reference.py make  <cases.json> <root>
      For each case: build the model from its config with random weights,
      save it as save_pretrained would under <root>/<case>/<variant>/
      (f32: model.safetensors; sharded: three shards and the index; bf16/f16:
      weights in that dtype), and write <root>/<case>/ref.safetensors with
      the ids, and for each variant the logits, the loss and 20 greedy tokens.
  hf_reference.py check <cases.json> <root>
      For each case: load <root>/<case>/export/ (written by hiddenlab) strictly
      by HF names, shapes and safetensors metadata, and write
      <root>/<case>/export_ref.safetensors with its logits for the same ids.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F
from torch import nn

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32,
          "BF16": torch.bfloat16, "F16": torch.float16, "U8": torch.uint8, "BOOL": torch.bool}
NAMES = {v: k for k, v in DTYPES.items()}
T, PROMPT, NEW = 24, 6, 20


# ---- safetensors by hand ----

def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    meta = header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(body[b:end]), dtype=DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"]).clone()
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for n in sorted(tensors):
        t = tensors[n].detach().contiguous().cpu()
        b = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[n] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    js = json.dumps(header).encode()
    js += b" " * ((8 - len(js) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)


# ---- configs: HF's defaults per model_type ----

DEFAULTS = {
    "gpt2": dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12, n_inner=None,
                 activation_function="gelu_new", layer_norm_epsilon=1e-5, scale_attn_weights=True,
                 tie_word_embeddings=True),
    "gpt_neo": dict(vocab_size=50257, max_position_embeddings=2048, hidden_size=2048, num_layers=24,
                    attention_types=[[["global", "local"], 12]], num_heads=16, intermediate_size=None,
                    window_size=256, activation_function="gelu_new", layer_norm_epsilon=1e-5,
                    tie_word_embeddings=True),
    "gpt_neox": dict(vocab_size=50432, hidden_size=6144, num_hidden_layers=44, num_attention_heads=64,
                     intermediate_size=24576, hidden_act="gelu", rotary_pct=0.25, rotary_emb_base=10000,
                     max_position_embeddings=2048, layer_norm_eps=1e-5, tie_word_embeddings=False,
                     use_parallel_residual=True, attention_bias=True),
    "llama": dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=None, hidden_act="silu",
                  max_position_embeddings=2048, rms_norm_eps=1e-6, tie_word_embeddings=False,
                  rope_theta=10000.0, attention_bias=False, mlp_bias=False),
    "qwen2": dict(vocab_size=151936, hidden_size=4096, intermediate_size=22016, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=32, hidden_act="silu",
                  max_position_embeddings=32768, rms_norm_eps=1e-6, tie_word_embeddings=False,
                  rope_theta=10000.0, use_sliding_window=False, sliding_window=4096, max_window_layers=28,
                  layer_types=None),
}
CLASSES = {"gpt2": "GPT2LMHeadModel", "gpt_neo": "GPTNeoForCausalLM", "gpt_neox": "GPTNeoXForCausalLM",
           "llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}


class Config:
    def __init__(self, d):
        full = dict(DEFAULTS[d["model_type"]])
        full.update(d)
        self.__dict__.update(full)


# ---- activations (transformers/activations.py) ----

def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


ACT2FN = {"gelu": F.gelu, "gelu_new": gelu_new, "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
          "silu": F.silu, "swish": F.silu, "relu": F.relu}


def causal(T, window=None):
    m = torch.tril(torch.ones(T, T, dtype=torch.bool))
    if window is not None:  # GPT-Neo: bias ^ tril(bias, -window); Qwen2: kv_idx > q_idx - window
        m = m & ~torch.tril(torch.ones(T, T, dtype=torch.bool), -window)
    return m


# ---- rotary (rotate_half convention; inv_freq in float32 as HF computes it) ----

def rotary(dim, base, T):
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    t = torch.arange(T, dtype=torch.int64).float()
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x, cos, sin):
    return x * cos + rotate_half(x) * sin


# ---- GPT-2 ----

class Conv1D(nn.Module):
    """HF's Conv1D: weight [nx, nf] = [in, out], y = x W + b."""

    def __init__(self, nf, nx):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        out = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        return out.view(x.size()[:-1] + (self.nf,))


class GPT2Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c, self.C, self.h = c, c.n_embd, c.n_head
        self.c_attn = Conv1D(3 * self.C, self.C)
        self.c_proj = Conv1D(self.C, self.C)

    def forward(self, x):
        B, L, C = x.shape
        hd = C // self.h
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = [t.view(B, L, self.h, hd).permute(0, 2, 1, 3) for t in (q, k, v)]
        w = torch.matmul(q, k.transpose(-1, -2))
        if self.c.scale_attn_weights:
            w = w / torch.full([], v.size(-1) ** 0.5, dtype=w.dtype)
        w = torch.where(causal(L), w, torch.tensor(torch.finfo(w.dtype).min))
        w = F.softmax(w, dim=-1)
        y = torch.matmul(w, v).permute(0, 2, 1, 3).reshape(B, L, C)
        return self.c_proj(y)


class GPT2MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        inner = c.n_inner if c.n_inner is not None else 4 * c.n_embd
        self.c_fc = Conv1D(inner, c.n_embd)
        self.c_proj = Conv1D(c.n_embd, inner)
        self.act = ACT2FN[c.activation_function]

    def forward(self, x):
        return self.c_proj(self.act(self.c_fc(x)))


class GPT2Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
        self.attn = GPT2Attention(c)
        self.ln_2 = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
        self.mlp = GPT2MLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.n_positions, c.n_embd)
        self.h = nn.ModuleList([GPT2Block(c) for _ in range(c.n_layer)])
        self.ln_f = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for b in self.h:
            x = b(x)
        return self.ln_f(x)


class GPT2LMHeadModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transformer = GPT2Model(c)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        if c.tie_word_embeddings:
            self.lm_head.weight = self.transformer.wte.weight

    def forward(self, ids):
        return self.lm_head(self.transformer(ids))


# ---- GPT-Neo ----

class GPTNeoSelfAttention(nn.Module):
    def __init__(self, c, kind):
        super().__init__()
        self.C, self.h = c.hidden_size, c.num_heads
        self.window = c.window_size if kind == "local" else None
        self.k_proj = nn.Linear(self.C, self.C, bias=False)
        self.v_proj = nn.Linear(self.C, self.C, bias=False)
        self.q_proj = nn.Linear(self.C, self.C, bias=False)
        self.out_proj = nn.Linear(self.C, self.C, bias=True)

    def forward(self, x):
        B, L, C = x.shape
        hd = C // self.h
        split = lambda t: t.view(B, L, self.h, hd).permute(0, 2, 1, 3)
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        w = torch.matmul(q.float(), k.float().transpose(-1, -2))  # no 1/sqrt(d) in GPT-Neo
        w = torch.where(causal(L, self.window), w, torch.tensor(torch.finfo(w.dtype).min))
        w = F.softmax(w, dim=-1)
        y = torch.matmul(w, v).permute(0, 2, 1, 3).reshape(B, L, C)
        return self.out_proj(y)


class GPTNeoAttention(nn.Module):
    def __init__(self, c, kind):
        super().__init__()
        self.attention = GPTNeoSelfAttention(c, kind)

    def forward(self, x):
        return self.attention(x)


class GPTNeoMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        inner = c.intermediate_size if c.intermediate_size is not None else 4 * c.hidden_size
        self.c_fc = nn.Linear(c.hidden_size, inner)
        self.c_proj = nn.Linear(inner, c.hidden_size)
        self.act = ACT2FN[c.activation_function]

    def forward(self, x):
        return self.c_proj(self.act(self.c_fc(x)))


class GPTNeoBlock(nn.Module):
    def __init__(self, c, kind):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_epsilon)
        self.attn = GPTNeoAttention(c, kind)
        self.ln_2 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_epsilon)
        self.mlp = GPTNeoMLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPTNeoModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        kinds = []
        for item in c.attention_types:
            for _ in range(item[1]):
                kinds.extend(item[0])
        assert len(kinds) == c.num_layers, "attention_types does not cover num_layers"
        self.wte = nn.Embedding(c.vocab_size, c.hidden_size)
        self.wpe = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.h = nn.ModuleList([GPTNeoBlock(c, k) for k in kinds])
        self.ln_f = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_epsilon)

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for b in self.h:
            x = b(x)
        return self.ln_f(x)


class GPTNeoForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transformer = GPTNeoModel(c)
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        if c.tie_word_embeddings:
            self.lm_head.weight = self.transformer.wte.weight

    def forward(self, ids):
        return self.lm_head(self.transformer(ids))


# ---- GPT-NeoX ----

class GPTNeoXAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c, self.h = c, c.num_attention_heads
        self.hd = c.hidden_size // self.h
        self.rotary_ndims = int(self.hd * c.rotary_pct)
        self.query_key_value = nn.Linear(c.hidden_size, 3 * c.hidden_size, bias=c.attention_bias)
        self.dense = nn.Linear(c.hidden_size, c.hidden_size, bias=c.attention_bias)

    def forward(self, x):
        B, L, C = x.shape
        hd, r = self.hd, self.rotary_ndims
        qkv = self.query_key_value(x).view(B, L, self.h, 3 * hd)  # per head: q, k, v
        q = qkv[..., :hd].permute(0, 2, 1, 3)
        k = qkv[..., hd:2 * hd].permute(0, 2, 1, 3)
        v = qkv[..., 2 * hd:].permute(0, 2, 1, 3)
        cos, sin = rotary(r, self.c.rotary_emb_base, L)
        q = torch.cat((apply_rotary(q[..., :r], cos, sin), q[..., r:]), dim=-1)
        k = torch.cat((apply_rotary(k[..., :r], cos, sin), k[..., r:]), dim=-1)
        scores = torch.baddbmm(torch.zeros(B * self.h, L, L), q.reshape(B * self.h, L, hd),
                               k.reshape(B * self.h, L, hd).transpose(1, 2), beta=1.0, alpha=hd ** -0.5)
        scores = scores.view(B, self.h, L, L)
        scores = torch.where(causal(L), scores, torch.tensor(torch.finfo(scores.dtype).min))
        w = F.softmax(scores, dim=-1)
        y = torch.matmul(w, v).permute(0, 2, 1, 3).reshape(B, L, C)
        return self.dense(y)


class GPTNeoXMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense_h_to_4h = nn.Linear(c.hidden_size, c.intermediate_size)
        self.dense_4h_to_h = nn.Linear(c.intermediate_size, c.hidden_size)
        self.act = ACT2FN[c.hidden_act]

    def forward(self, x):
        return self.dense_4h_to_h(self.act(self.dense_h_to_4h(x)))


class GPTNeoXLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.parallel = c.use_parallel_residual
        self.input_layernorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.post_attention_layernorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.attention = GPTNeoXAttention(c)
        self.mlp = GPTNeoXMLP(c)

    def forward(self, x):
        a = self.attention(self.input_layernorm(x))
        if self.parallel:
            return self.mlp(self.post_attention_layernorm(x)) + a + x
        a = a + x
        return self.mlp(self.post_attention_layernorm(a)) + a


class GPTNeoXModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_in = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList([GPTNeoXLayer(c) for _ in range(c.num_hidden_layers)])
        self.final_layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, ids):
        x = self.embed_in(ids)
        for layer in self.layers:
            x = layer(x)
        return self.final_layer_norm(x)


class GPTNeoXForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gpt_neox = GPTNeoXModel(c)
        self.embed_out = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        if c.tie_word_embeddings:
            self.embed_out.weight = self.gpt_neox.embed_in.weight

    def forward(self, ids):
        return self.embed_out(self.gpt_neox(ids))


# ---- Llama and Qwen2 ----

class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        dt = x.dtype
        x = x.to(torch.float32)
        var = x.pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(var + self.eps)
        return self.weight * x.to(dt)


def repeat_kv(x, n):
    B, KV, L, hd = x.shape
    if n == 1:
        return x
    return x[:, :, None, :, :].expand(B, KV, n, L, hd).reshape(B, KV * n, L, hd)


class LlamaAttention(nn.Module):
    def __init__(self, c, layer):
        super().__init__()
        self.c, self.h = c, c.num_attention_heads
        self.kv = c.num_key_value_heads if c.num_key_value_heads is not None else self.h
        self.hd = c.hidden_size // self.h
        qwen = c.model_type == "qwen2"
        qkv_bias = True if qwen else c.attention_bias
        o_bias = False if qwen else c.attention_bias
        self.q_proj = nn.Linear(c.hidden_size, self.h * self.hd, bias=qkv_bias)
        self.k_proj = nn.Linear(c.hidden_size, self.kv * self.hd, bias=qkv_bias)
        self.v_proj = nn.Linear(c.hidden_size, self.kv * self.hd, bias=qkv_bias)
        self.o_proj = nn.Linear(self.h * self.hd, c.hidden_size, bias=o_bias)
        self.window = None
        if qwen and c.use_sliding_window and c.sliding_window is not None:
            types = c.layer_types or ["sliding_attention" if i >= c.max_window_layers else "full_attention"
                                      for i in range(c.num_hidden_layers)]
            if types[layer] == "sliding_attention":
                self.window = c.sliding_window

    def forward(self, x):
        B, L, _ = x.shape
        hd = self.hd
        q = self.q_proj(x).view(B, L, -1, hd).transpose(1, 2)
        k = self.k_proj(x).view(B, L, -1, hd).transpose(1, 2)
        v = self.v_proj(x).view(B, L, -1, hd).transpose(1, 2)
        cos, sin = rotary(hd, self.c.rope_theta, L)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        k, v = repeat_kv(k, self.h // self.kv), repeat_kv(v, self.h // self.kv)
        w = torch.matmul(q, k.transpose(2, 3)) * hd ** -0.5
        mask = torch.zeros(L, L).masked_fill(~causal(L, self.window), torch.finfo(torch.float32).min)
        w = F.softmax(w + mask, dim=-1, dtype=torch.float32).to(q.dtype)
        y = torch.matmul(w, v).transpose(1, 2).reshape(B, L, -1)
        return self.o_proj(y)


class LlamaMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        bias = getattr(c, "mlp_bias", False) and c.model_type == "llama"
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=bias)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=bias)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=bias)
        self.act = ACT2FN[c.hidden_act]

    def forward(self, x):
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, c, i):
        super().__init__()
        self.self_attn = LlamaAttention(c, i)
        self.mlp = LlamaMLP(c)
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList([LlamaDecoderLayer(c, i) for i in range(c.num_hidden_layers)])
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)

    def forward(self, ids):
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class LlamaForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.model = LlamaModel(c)
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        if c.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, ids):
        return self.lm_head(self.model(ids))


MODELS = {"gpt2": GPT2LMHeadModel, "gpt_neo": GPTNeoForCausalLM, "gpt_neox": GPTNeoXForCausalLM,
          "llama": LlamaForCausalLM, "qwen2": LlamaForCausalLM}
TIED = {"gpt2": ("lm_head.weight", "transformer.wte.weight"), "gpt_neo": ("lm_head.weight", "transformer.wte.weight"),
        "gpt_neox": ("embed_out.weight", "gpt_neox.embed_in.weight"), "llama": ("lm_head.weight", "model.embed_tokens.weight"),
        "qwen2": ("lm_head.weight", "model.embed_tokens.weight")}


def build(cfg):
    c = Config(cfg)
    return c, MODELS[c.model_type](c).eval()


def saved_state(model, c):
    """The state dict save_pretrained writes: the tied head is left out."""
    sd = dict(model.state_dict())
    if c.tie_word_embeddings:
        del sd[TIED[c.model_type][0]]
    return sd


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():  # a tied weight appears once
            noise = torch.randn(p.shape, generator=g)
            if name.endswith(".bias"):
                p.copy_(0.1 * noise)
            elif p.dim() == 1:  # norm weights
                p.copy_(1 + 0.1 * noise)
            else:
                p.copy_(0.15 * noise)


def greedy(model, prompt, n):
    ids = prompt.clone()
    for _ in range(n):
        nxt = model(ids)[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], dim=1)
    return ids[:, prompt.shape[1]:]


def loss_of(logits, ids):
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def save_dir(out, cfg, c, sd, dtype, shards=1):
    os.makedirs(out, exist_ok=True)
    full = dict(cfg)
    full["architectures"] = [CLASSES[c.model_type]]
    full["torch_dtype"] = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[dtype]
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(full, f, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"_from_model_config": True}, f)
    sd = {k: v.to(dtype) for k, v in sd.items()}
    if shards == 1:
        write_safetensors(os.path.join(out, "model.safetensors"), sd, {"format": "pt"})
        return
    names = list(sd)  # module order, as save_pretrained fills shards
    per = (len(names) + shards - 1) // shards
    weight_map, total = {}, 0
    for i in range(shards):
        fn = "model-%05d-of-%05d.safetensors" % (i + 1, shards)
        part = {n: sd[n] for n in names[i * per:(i + 1) * per]}
        write_safetensors(os.path.join(out, fn), part, {"format": "pt"})
        for n, t in part.items():
            weight_map[n] = fn
            total += t.numel() * t.element_size()
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def make(cases, root):
    for case in cases:
        cfg = case["config"]
        c, model = build(cfg)
        randomize(model, case.get("seed", 1))
        g = torch.Generator().manual_seed(7)
        ids = torch.randint(0, c.vocab_size, (2, T), generator=g)
        prompt = ids[:1, :PROMPT]
        ref = {"ids": ids, "prompt": prompt}
        sd = saved_state(model, c)
        for variant in case["variants"]:
            dtype = {"bf16": torch.bfloat16, "f16": torch.float16}.get(variant, torch.float32)
            save_dir(os.path.join(root, case["name"], variant), cfg, c, sd, dtype, 3 if variant == "sharded" else 1)
            with torch.no_grad():
                if dtype != torch.float32:  # the model as the file holds it, computed in f32
                    _, m = build(cfg)
                    m.load_state_dict({k: v.to(dtype).float() for k, v in model.state_dict().items()})
                else:
                    m = model
                logits = m(ids)
                ref["logits." + variant] = logits
                ref["loss." + variant] = loss_of(logits, ids).reshape(1)
                ref["greedy." + variant] = greedy(m, prompt, NEW)
        write_safetensors(os.path.join(root, case["name"], "ref.safetensors"), ref)


def load_strict(d):
    """Loads a model directory the way from_pretrained checks it."""
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    for k in ("model_type", "architectures"):
        assert k in cfg, "config.json lacks %s" % k
    assert cfg["architectures"] == [CLASSES[cfg["model_type"]]], cfg["architectures"]
    with open(os.path.join(d, "generation_config.json")) as f:
        json.load(f)
    files = ["model.safetensors"]
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    sd = {}
    for fn in files:
        part, meta = read_safetensors(os.path.join(d, fn))
        assert meta and meta.get("format") == "pt", "%s: metadata %r lacks format=pt" % (fn, meta)
        sd.update(part)
    c, model = build(cfg)
    want = saved_state(model, c)
    missing = sorted(set(want) - set(sd))
    unexpected = sorted(set(sd) - set(want))
    assert not missing and not unexpected, "missing %s, unexpected %s" % (missing, unexpected)
    for k, v in want.items():
        assert tuple(sd[k].shape) == tuple(v.shape), "%s: shape %s, want %s" % (k, tuple(sd[k].shape), tuple(v.shape))
        assert sd[k].dtype in (torch.float32, torch.bfloat16, torch.float16), "%s: dtype %s" % (k, sd[k].dtype)
    if c.tie_word_embeddings:
        head, emb = TIED[c.model_type]
        sd[head] = sd[emb]
    model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    return model


def check(cases, root):
    for case in cases:
        ref, _ = read_safetensors(os.path.join(root, case["name"], "ref.safetensors"))
        model = load_strict(os.path.join(root, case["name"], "export"))
        with torch.no_grad():
            logits = model(ref["ids"])
        write_safetensors(os.path.join(root, case["name"], "export_ref.safetensors"), {"logits": logits})


if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, cases_path, root = sys.argv[1:4]
    with open(cases_path) as f:
        cases = json.load(f)
    {"make": make, "check": check}[mode](cases, root)
