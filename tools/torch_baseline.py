#!/usr/bin/env python3
"""PyTorch side of strata's benchmarks (bench/train_step_bench.ts, bench/kernels_bench.ts).

  torch_baseline.py train-step '<config json>'   one Adam step of the tiny ABINet-Vision-like model
  torch_baseline.py ops '<json list of ops>'     forward/backward seconds of single convs and matMuls

Prints one JSON line. Without PyTorch it prints {"skipped": reason} and exits 0
(Debian: apt-get install -y python3-torch libopenblas0-pthread; run with /usr/bin/python3).
"""
import json
import math
import os
import sys
import time


def _requested_threads():
    try:
        spec = json.loads(sys.argv[2])
        return int(spec.get("threads") or min(2, os.cpu_count() or 1))
    except Exception:  # noqa: BLE001 - usage errors are reported by main()
        return min(2, os.cpu_count() or 1)


# Before importing torch: OpenBLAS (Debian's BLAS for torch.mm/bmm) runs its own thread pool, which
# torch.set_num_threads does not limit, so "1 thread" would otherwise use every core for matMuls.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(_requested_threads())

try:
    import torch
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001 - any import failure means "no PyTorch here"
    print(json.dumps({"skipped": f"PyTorch is not importable ({e.__class__.__name__}: {e})"}))
    sys.exit(0)


FAST_INIT = False


def lcg_init(shape, fan_in, seed):
    """The bench's deterministic He-uniform init (same LCG as bench/train_step_bench.ts), TF layout."""
    if FAST_INIT:
        # Speed runs only (GPU bench): the same distribution without a 23 M-iteration Python loop.
        g = torch.Generator().manual_seed(seed)
        scale = math.sqrt(6 / fan_in)
        return (torch.rand(*shape, generator=g) * 2 - 1) * scale
    n = 1
    for d in shape:
        n *= d
    out = [0.0] * n
    s = seed & 0xFFFFFFFF
    scale = math.sqrt(6 / fan_in)
    for i in range(n):
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        out[i] = (s / 4294967296 * 2 - 1) * scale
    return torch.tensor(out, dtype=torch.float32).reshape(shape)


def positional_encoding(n, d):
    pe = torch.zeros(n, d)
    for p in range(n):
        for i in range(0, d, 2):
            angle = p / math.pow(10000, i / d)
            pe[p, i] = math.sin(angle)
            if i + 1 < d:
                pe[p, i + 1] = math.cos(angle)
    return pe


class TinyAbinet(torch.nn.Module):
    """Mirror of bench/train_step_bench.ts's TinyAbinet (NCHW; same parameters, ops and init)."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.p = torch.nn.ParameterDict()
        self.seed = 1
        self.conv("stem", 3, 3, c["stem"])
        cin = c["stem"]
        for s, w in enumerate(c["widths"]):
            for b in range(c["blocks"][s]):
                name = f"layer{s + 1}_{b}"
                self.conv(f"{name}_conv1", 1, cin, w)
                self.conv(f"{name}_conv2", 3, w, w)
                if b == 0 and (cin != w or c["strides"][s] != 1):
                    self.conv(f"{name}_down", 1, cin, w)
                cin = w
        d = c["dModel"]
        for l in range(c["layers"]):
            self.dense(f"enc{l}_qkv", d, 3 * d)
            self.dense(f"enc{l}_out", d, d)
            self.dense(f"enc{l}_ff1", d, c["ffn"])
            self.dense(f"enc{l}_ff2", c["ffn"], d)
            self.norm(f"enc{l}_ln1", d)
            self.norm(f"enc{l}_ln2", d)
        u = c["unet"]
        for k, (i, o) in enumerate([(d, u), (u, u), (u, u), (u, u)]):
            self.conv(f"pa_enc{k}", 3, i, o)
        for k, (i, o) in enumerate([(u, u), (u, u), (u, u), (u, d)]):
            self.conv(f"pa_dec{k}", 3, i, o)
        self.dense("pa_query", d, d)
        self.dense("cls", d, c["classes"])
        self.pe_seq = None

    def conv(self, name, k, cin, cout):
        w = lcg_init([k, k, cin, cout], k * k * cin, self.seed)  # HWIO
        self.seed += 1
        self.p[f"{name}_w"] = torch.nn.Parameter(w.permute(3, 2, 0, 1).contiguous())  # OIHW
        self.norm(f"{name}_bn", cout)

    def dense(self, name, cin, cout):
        self.p[f"{name}_w"] = torch.nn.Parameter(lcg_init([cin, cout], cin, self.seed))
        self.seed += 1
        self.p[f"{name}_b"] = torch.nn.Parameter(torch.zeros(cout))

    def norm(self, name, ch):
        self.p[f"{name}_g"] = torch.nn.Parameter(torch.ones(ch))
        self.p[f"{name}_b"] = torch.nn.Parameter(torch.zeros(ch))

    def cbr(self, x, name, stride, relu=True):
        w = self.p[f"{name}_w"]
        k = w.shape[-1]
        if isinstance(stride, int):
            stride = (stride, stride)
        # TensorFlow "same" padding (extra pad after) for odd kernels and even sizes with stride 2.
        ph = max((math.ceil(x.shape[2] / stride[0]) - 1) * stride[0] + k - x.shape[2], 0)
        pw = max((math.ceil(x.shape[3] / stride[1]) - 1) * stride[1] + k - x.shape[3], 0)
        if ph or pw:
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        y = F.conv2d(x, w, stride=stride)
        y = F.batch_norm(y, None, None, self.p[f"{name}_bn_g"], self.p[f"{name}_bn_b"], training=True, eps=1e-5)
        return F.relu(y) if relu else y

    def linear(self, x, name):
        return x @ self.p[f"{name}_w"] + self.p[f"{name}_b"]

    def layer_norm(self, x, name):
        return F.layer_norm(x, x.shape[-1:], self.p[f"{name}_g"], self.p[f"{name}_b"], eps=1e-5)

    def encoder_layer(self, x, l, b, s):
        d, h = self.c["dModel"], self.c["heads"]
        qkv = self.linear(x, f"enc{l}_qkv")
        q, k, v = qkv.split(d, dim=1)
        heads = lambda t: t.reshape(b, s, h, d // h).permute(0, 2, 1, 3).reshape(b * h, s, d // h)  # noqa: E731
        att = torch.softmax(heads(q) @ heads(k).transpose(1, 2) * (1 / math.sqrt(d / h)), dim=-1)
        ctx = (att @ heads(v)).reshape(b, h, s, d // h).permute(0, 2, 1, 3).reshape(b * s, d)
        x1 = self.layer_norm(x + self.linear(ctx, f"enc{l}_out"), f"enc{l}_ln1")
        ff = self.linear(F.relu(self.linear(x1, f"enc{l}_ff1")), f"enc{l}_ff2")
        return self.layer_norm(x1 + ff, f"enc{l}_ln2")

    def forward(self, images):
        c = self.c
        x = self.cbr(images, "stem", 1)
        cin = c["stem"]
        for s, w in enumerate(c["widths"]):
            for b in range(c["blocks"][s]):
                name = f"layer{s + 1}_{b}"
                stride = c["strides"][s] if b == 0 else 1
                h = self.cbr(self.cbr(x, f"{name}_conv1", 1), f"{name}_conv2", stride, relu=False)
                short = self.cbr(x, f"{name}_down", stride, relu=False) if f"{name}_down_w" in self.p else x
                x = F.relu(h + short)
                cin = w
        b, d, fh, fw = x.shape
        s = fh * fw
        if self.pe_seq is None:
            self.pe_seq = positional_encoding(s, d)
            self.pe_q = positional_encoding(c["positions"], d)
            self.pe_seq, self.pe_q = self.pe_seq.to(x.device), self.pe_q.to(x.device)
        seq = (x.permute(0, 2, 3, 1).reshape(b, s, d) + self.pe_seq).reshape(b * s, d)
        for l in range(c["layers"]):
            seq = self.encoder_layer(seq, l, b, s)
        feat = seq.reshape(b, fh, fw, d).permute(0, 3, 1, 2)
        e0 = self.cbr(feat, "pa_enc0", (1, 2))
        e1 = self.cbr(e0, "pa_enc1", 2)
        e2 = self.cbr(e1, "pa_enc2", 2)
        e3 = self.cbr(e2, "pa_enc3", 2)
        up = lambda t, sh, sw: F.interpolate(t, scale_factor=(sh, sw), mode="nearest")  # noqa: E731
        k = self.cbr(up(e3, 2, 2), "pa_dec0", 1) + e2
        k = self.cbr(up(k, 2, 2), "pa_dec1", 1) + e1
        k = self.cbr(up(k, 2, 2), "pa_dec2", 1) + e0
        k = self.cbr(up(k, 1, 2), "pa_dec3", 1)
        q = self.linear(self.pe_q, "pa_query")
        keys = k.permute(0, 2, 3, 1).reshape(b, s, d)
        att = torch.softmax((q.unsqueeze(0).expand(b, -1, -1) @ keys.transpose(1, 2)) * (1 / math.sqrt(d)), dim=-1)
        vec = att @ seq.reshape(b, s, d)
        logits = self.linear(vec.reshape(b * c["positions"], d), "cls")
        return logits.reshape(b, c["positions"], c["classes"])


def synthetic_batch(c, seed=7):
    if FAST_INIT:
        g = torch.Generator().manual_seed(seed)
        images = torch.rand(c["batch"], 3, c["height"], c["width"], generator=g) - 0.5
        labels = torch.tensor([(i * 7 + 3) % c["classes"] for i in range(c["batch"] * c["positions"])]).reshape(
            c["batch"], c["positions"])
        return images.contiguous(), labels
    n = c["batch"] * c["height"] * c["width"] * 3
    s = seed
    img = [0.0] * n
    for i in range(n):
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        img[i] = s / 4294967296 - 0.5
    images = torch.tensor(img, dtype=torch.float32).reshape(c["batch"], c["height"], c["width"], 3).permute(0, 3, 1, 2)
    labels = torch.tensor([(i * 7 + 3) % c["classes"] for i in range(c["batch"] * c["positions"])]).reshape(
        c["batch"], c["positions"])
    return images.contiguous(), labels


def set_threads(c):
    threads = int(c.get("threads") or min(2, os.cpu_count() or 1))
    torch.set_num_threads(threads)
    return torch.get_num_threads()


def train_step(c):
    """Median seconds of one training step. c["device"] = "cuda" trains on the GPU (fp32, PyTorch's default
    TF32 settings unless c["tf32"] is "on"/"off", cudnn.benchmark on); c["views"] = 3 trains on three copies
    of the batch at once, the cost of ConCLR's original + two augmented views."""
    global FAST_INIT
    threads = set_threads(c)
    device = c.get("device", "cpu")
    FAST_INIT = device != "cpu"
    torch.manual_seed(0)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
        tf32 = c.get("tf32", "pytorch")
        torch.backends.cuda.matmul.allow_tf32 = tf32 == "on"
        torch.backends.cudnn.allow_tf32 = tf32 != "off"
    model = TinyAbinet(c).to(device)
    images, labels = synthetic_batch(c)
    views = int(c.get("views", 1))
    if views > 1:
        images, labels = images.repeat(views, 1, 1, 1), labels.repeat(views, 1)
    images, labels = images.to(device), labels.to(device)
    model.pe_seq = None
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-7)
    times = []
    loss_value = float("nan")
    warmup = int(c.get("warmup", 1))
    for i in range(int(c.get("steps", 3)) + warmup):
        t0 = time.perf_counter()
        opt.zero_grad()
        logits = model(images)
        loss = F.cross_entropy(logits.reshape(-1, c["classes"]), labels.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 20)
        opt.step()
        loss_value = loss.item()  # waits for the device, as strata's one read per step does
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    params = sum(p.numel() for p in model.parameters())
    out = {"seconds": times[len(times) // 2], "threads": threads, "loss": loss_value, "params": params,
           "torch": torch.__version__, "device": device}
    if device == "cuda":
        out["gpu"] = torch.cuda.get_device_name(0)
        out["max_memory_bytes"] = torch.cuda.max_memory_allocated()
    return out


def ops(spec):
    """spec: {"threads": n, "reps": r, "ops": [{"kind": "conv", "x": [b,h,w,ci], "k": k, "co": co, "stride": s}
    | {"kind": "matmul", "a": [...], "b": [...], "ta": bool, "tb": bool}]} → forward and backward seconds each."""
    threads = set_threads(spec)
    reps = int(spec.get("reps", 3))
    out = []
    for op in spec["ops"]:
        torch.manual_seed(0)
        if op["kind"] == "conv":
            b, h, w, ci = op["x"]
            k, co, s = op["k"], op["co"], op["stride"]
            x = torch.randn(b, ci, h, w, requires_grad=True)
            wt = torch.randn(co, ci, k, k, requires_grad=True)
            fwd = lambda: F.conv2d(x, wt, stride=s, padding=k // 2)  # noqa: E731
        else:
            a = torch.randn(*op["a"], requires_grad=True)
            bb = torch.randn(*op["b"], requires_grad=True)
            fwd = lambda: (a.transpose(-1, -2) if op["ta"] else a) @ (bb.transpose(-1, -2) if op["tb"] else bb)  # noqa: E731
        f_times, b_times = [], []
        for i in range(reps + 1):
            t0 = time.perf_counter()
            y = fwd()
            t1 = time.perf_counter()
            y.backward(torch.ones_like(y))
            t2 = time.perf_counter()
            if i > 0:
                f_times.append(t1 - t0)
                b_times.append(t2 - t1)
        f_times.sort()
        b_times.sort()
        out.append({"forward": f_times[len(f_times) // 2], "backward": b_times[len(b_times) // 2]})
    return {"threads": threads, "ops": out, "torch": torch.__version__}


def main(argv):
    if len(argv) < 3 or argv[1] not in ("train-step", "ops"):
        print(__doc__, file=sys.stderr)
        return 2
    spec = json.loads(argv[2])
    result = train_step(spec) if argv[1] == "train-step" else ops(spec)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
