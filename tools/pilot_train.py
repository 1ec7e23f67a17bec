#!/usr/bin/env python3
"""Design pilots for the default experiment (experiments/conclr_vs_abinet.yaml): which levers make strata's
ABINet-Vision (`micro` / `tiny` presets, an independent PyTorch mirror of models/abinet/) localise and read sooner,
measured in samples seen, on data exported by tools/pilot_data.ts.

  pilot_train.py DATA_DIR '<json config>'      prints one JSON line per evaluation point

Config keys (defaults in DEFAULTS): preset, height, width, channels (1 grey / 3 RGB), max_length (T = +1),
batch, lr, schedule ("one_cycle" pct_start | "warmup_const" warmup), samples (total), eval_at (list of samples
seen), curriculum ([[samples, max_len], ...]: word-length cap until that many samples were seen), real_frac
(share of each batch drawn from the real IIIT5K/SVT training crops, never their test splits), augment (0 off,
else strength of a random affine: rotation/shear/scale), words_only (dictionary words only), conaug (ConCLR's
concatenation views add their recognition loss; the contrastive term is not mirrored), seed, device, threads.

Metrics: loss (mean recognition CE of the last 50 steps), synth CWR/CCR on the exported synthetic test split
(disjoint vocabulary), iiit CWR on the last 500 IIIT5K *training* crops (held out of real_frac), 36-char protocol.
"""
import io
import json
import math
import os
import sys
import time

_cfg = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = str(_cfg.get("threads", 1))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

DEFAULTS = dict(preset="micro", height=32, width=128, channels=3, max_length=25, batch=32, lr=1e-3,
                schedule="one_cycle", pct_start=0.15, warmup=0, samples=50000, eval_at=None, curriculum=None,
                real_frac=0.0, augment=0.0, words_only=False, conaug=False, seed=1, device="cpu", threads=1,
                label="")
PRESETS = {
    "micro": dict(stem=8, stages=[8, 16, 32, 64, 64], blocks=[1, 1, 1, 1, 1], d=64, nhead=2, ffn=128, layers=2,
                  att=16),
    "tiny": dict(stem=16, stages=[16, 32, 64, 128, 128], blocks=[1, 1, 1, 1, 1], d=128, nhead=4, ffn=256, layers=2,
                 att=32),
}
STRIDES = [2, 1, 2, 1, 1]
CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"  # class 0 = end of word / padding


def sinusoid(n, d):
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe


class Block(nn.Module):
    def __init__(self, cin, c, stride):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, c, 1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, stride, 1, bias=False), nn.BatchNorm2d(c)
        self.down = None
        if stride != 1 or cin != c:
            self.down = nn.Sequential(nn.Conv2d(cin, c, 1, stride, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (self.down(x) if self.down is not None else x))


def cbr(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU())


class AbinetVision(nn.Module):
    """ResNet (BasicBlocks, strides 2,1,2,1,1) → transformer encoder → position attention (mini U-Net keys,
    positional queries) → linear classifier over 37 classes, as models/abinet/vision.ts."""

    def __init__(self, p, channels, h, w, max_length, dropout=0.1):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, p["stem"], 3, 1, 1, bias=False), nn.BatchNorm2d(p["stem"]),
                                  nn.ReLU())
        layers, cin = [], p["stem"]
        for c, n, s in zip(p["stages"], p["blocks"], STRIDES):
            for b in range(n):
                layers.append(Block(cin, c, s if b == 0 else 1))
                cin = c
        self.resnet = nn.Sequential(*layers)
        d = p["d"]
        self.fh, self.fw = h // 4, w // 4
        self.register_buffer("pe", sinusoid(self.fh * self.fw, d))
        enc = nn.TransformerEncoderLayer(d, p["nhead"], p["ffn"], dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(enc, p["layers"], enable_nested_tensor=False)
        a = p["att"]
        self.kenc = nn.ModuleList([cbr(d, a, (1, 2)), cbr(a, a, 2), cbr(a, a, 2), cbr(a, a, 2)])
        self.kdec = nn.ModuleList([cbr(a, a, 1), cbr(a, a, 1), cbr(a, a, 1), cbr(a, d, 1)])
        self.T = max_length + 1
        self.register_buffer("pe_q", sinusoid(self.T, d))
        self.project = nn.Linear(d, d)
        self.cls = nn.Linear(d, len(CHARS) + 1)

    def forward(self, x):
        f = self.resnet(self.stem(x))
        b, d, h, w = f.shape
        seq = self.encoder(f.flatten(2).transpose(1, 2) + self.pe)
        feats = seq.transpose(1, 2).reshape(b, d, h, w)
        k, skips = feats, []
        for m in self.kenc:
            k = m(k)
            skips.append(k)
        for i in range(3):
            k = self.kdec[i](F.interpolate(k, scale_factor=2, mode="nearest")) + skips[2 - i]
        k = self.kdec[3](F.interpolate(k, size=(h, w), mode="nearest"))
        q = self.project(self.pe_q)
        att = torch.softmax(torch.einsum("td,bdn->btn", q, k.flatten(2)) / math.sqrt(d), dim=-1)
        vec = att @ seq
        return self.cls(vec), att.reshape(b, self.T, h, w)


def load_set(data, name, cfg, max_len):
    path = os.path.join(data, name)
    if not os.path.exists(path + ".json"):
        return None
    index = json.load(open(path + ".json"))
    blob = open(path + ".bin", "rb").read()
    imgs, labels, kinds = [], [], []
    for e in index:
        label = "".join(ch for ch in e["label"].lower() if ch in CHARS)
        if not label or len(label) > max_len:
            continue
        img = Image.open(io.BytesIO(blob[e["offset"]:e["offset"] + e["length"]]))
        img = img.convert("L" if cfg["channels"] == 1 else "RGB")
        if img.size != (cfg["width"], cfg["height"]):
            img = img.resize((cfg["width"], cfg["height"]), Image.BILINEAR)
        a = np.asarray(img, dtype=np.uint8)
        imgs.append(a[:, :, None] if a.ndim == 2 else a)
        labels.append(label)
        kinds.append(e["kind"])
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()  # uint8 NCHW
    return dict(x=x, labels=labels, kinds=kinds, lens=torch.tensor([len(s) for s in labels]))


def encode(labels, T):
    y = torch.zeros(len(labels), T, dtype=torch.long)
    for i, s in enumerate(labels):
        y[i, :len(s)] = torch.tensor([CHARS.index(c) + 1 for c in s])
    return y


MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def normalise(x, device):
    x = x.to(device).float() / 255
    if x.shape[1] == 3:
        return (x - MEAN.to(device)) / STD.to(device)
    return (x - 0.449) / 0.226


def augment(x, strength, gen):
    """A random affine per image (rotation ±15°·s, shear ±0.3·s, scale 1±0.25·s), border replicated."""
    b = x.shape[0]
    r = lambda: (torch.rand(b, generator=gen) * 2 - 1).to(x.device)  # noqa: E731
    ang, sh, sc = r() * math.radians(15) * strength, r() * 0.3 * strength, 1 + r() * 0.25 * strength
    h, w = x.shape[2:]
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin * h / w + sh, torch.zeros_like(cos)], 1),
                         torch.stack([sin * w / h, cos, torch.zeros_like(cos)], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def loss_fn(logits, y, lens):
    T = logits.shape[1]
    mask = torch.arange(T, device=y.device)[None, :] < (lens[:, None] + 1)
    return F.cross_entropy(logits[mask], y[mask])


def decode(logits):
    pred = logits.argmax(-1).cpu()
    out = []
    for row in pred.tolist():
        s = []
        for c in row:
            if c == 0:
                break
            s.append(CHARS[c - 1])
        out.append("".join(s))
    return out


@torch.no_grad()
def evaluate(model, ds, device, limit=None):
    if ds is None:
        return None
    model.eval()
    n = len(ds["labels"]) if limit is None else min(limit, len(ds["labels"]))
    right = chars = total_chars = 0
    for i in range(0, n, 256):
        logits, _ = model(normalise(ds["x"][i:i + 256], device))
        for p, g in zip(decode(logits), ds["labels"][i:i + 256]):
            right += p == g
            # CCR: 1 − normalised edit distance, summed over characters of the ground truth
            chars += len(g) - min(len(g), edit(p, g))
            total_chars += len(g)
    model.train()
    return dict(cwr=round(right / n, 4), ccr=round(chars / total_chars, 4))


def edit(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[-1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def conaug_views(x, y, lens, T, gen):
    """ConCLR's ConAug: each image concatenated side by side with a random partner (each squeezed to half
    width), label = the two labels joined, kept where the joined word fits in T − 1."""
    b, _, h, w = x.shape
    perm = torch.randperm(b, generator=gen).to(x.device)
    half = F.interpolate(x, size=(h, w // 2), mode="bilinear", align_corners=False)
    v = torch.cat([half, half[perm]], 3)
    ly = torch.zeros_like(y)
    keep = (lens + lens[perm]) <= T - 1
    for i in range(b):
        la, lb = int(lens[i]), int(lens[perm[i]])
        if la + lb <= T - 1:
            ly[i, :la] = y[i, :la]
            ly[i, la:la + lb] = y[perm[i], :lb]
    return v[keep], ly[keep], (lens + lens[perm])[keep]


def main():
    data = sys.argv[1]
    cfg = {**DEFAULTS, **_cfg}
    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(cfg["seed"])
    dev = torch.device(cfg["device"])
    T = cfg["max_length"] + 1
    t0 = time.time()
    train = load_set(data, cfg.get("train_set", "synth_train"), cfg, cfg["max_length"])
    if cfg["words_only"]:
        keep = [i for i, k in enumerate(train["kinds"]) if k == "word"]
        train = dict(x=train["x"][keep], labels=[train["labels"][i] for i in keep], lens=train["lens"][keep])
    test = load_set(data, cfg.get("test_set", "synth_test"), cfg, 25)
    iiit = load_set(data, "iiit5k_train", cfg, 25)
    hold = dict(x=iiit["x"][-500:], labels=iiit["labels"][-500:]) if iiit else None
    real = None
    if cfg["real_frac"] > 0 and iiit:
        svt = load_set(data, "svt_train", cfg, cfg["max_length"])
        ok = [i for i in range(len(iiit["labels"]) - 500) if len(iiit["labels"][i]) <= cfg["max_length"]]
        xs = [iiit["x"][ok]] + ([svt["x"]] if svt else [])
        ls = [iiit["labels"][i] for i in ok] + (svt["labels"] if svt else [])
        real = dict(x=torch.cat(xs), labels=ls, lens=torch.tensor([len(s) for s in ls]))
    model = AbinetVision(PRESETS[cfg["preset"]], cfg["channels"], cfg["height"], cfg["width"], cfg["max_length"],
                         cfg.get("dropout", 0.1))
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    steps = cfg["samples"] // cfg["batch"]
    gen = torch.Generator().manual_seed(cfg["seed"])
    eval_at = sorted(cfg["eval_at"] or [cfg["samples"]])
    curriculum = cfg["curriculum"] or []
    ytrain = encode(train["labels"], T)
    yreal = encode(real["labels"], T) if real else None
    losses, ei, seen = [], 0, 0
    t_train = time.time()
    print(json.dumps(dict(label=cfg["label"], event="start", train=len(train["labels"]),
                          real=len(real["labels"]) if real else 0, load_s=round(t_train - t0, 1),
                          params=sum(p.numel() for p in model.parameters()))), flush=True)
    for step in range(steps):
        frac = step / steps
        if cfg["schedule"] == "one_cycle":
            pct = cfg["pct_start"]
            lr = cfg["lr"] * (0.04 + 0.96 * frac / pct if frac < pct else
                              0.5 * (1 + math.cos(math.pi * (frac - pct) / (1 - pct))))
        else:
            lr = cfg["lr"] * min(1.0, (step + 1) / max(1, cfg["warmup"]))
        for g in opt.param_groups:
            g["lr"] = lr
        cap = next((m for s, m in curriculum if seen < s), cfg["max_length"])
        n_real = int(round(cfg["batch"] * cfg["real_frac"])) if real else 0
        n_syn = cfg["batch"] - n_real
        pool = (train["lens"] <= cap).nonzero().squeeze(1) if cap < cfg["max_length"] else None
        if pool is not None:
            idx = pool[torch.randint(len(pool), (n_syn,), generator=gen)]
        else:
            idx = torch.randint(len(train["labels"]), (n_syn,), generator=gen)
        xb, yb, lb = train["x"][idx], ytrain[idx], train["lens"][idx]
        if n_real:
            ridx = torch.randint(len(real["labels"]), (n_real,), generator=gen)
            xb, yb, lb = torch.cat([xb, real["x"][ridx]]), torch.cat([yb, yreal[ridx]]), torch.cat([lb, real["lens"][ridx]])
        x = normalise(xb, dev)
        if cfg["augment"] > 0:
            x = augment(x, cfg["augment"], gen)
        yb, lb = yb.to(dev), lb.to(dev)
        logits, _ = model(x)
        loss = loss_fn(logits, yb, lb)
        if cfg["conaug"]:
            vx, vy, vl = conaug_views(x, yb, lb, T, gen)
            if len(vl) > 1:
                vlogits, _ = model(vx)
                loss = loss + loss_fn(vlogits, vy, vl)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 20)
        opt.step()
        losses.append(loss.item() if step % 10 == 0 or step > steps - 60 else losses[-1] if losses else 0)
        seen += cfg["batch"]
        if cfg.get("time_only"):
            if step == 4:
                t_train, seen0 = time.time(), seen
            if step == steps - 1:
                print(json.dumps(dict(label=cfg["label"], samples_per_s=round((seen - seen0) / (time.time() - t_train),
                                                                               1))), flush=True)
            continue
        while ei < len(eval_at) and (seen >= eval_at[ei] or step == steps - 1):
            syn = evaluate(model, test, dev)
            hi = evaluate(model, hold, dev)
            print(json.dumps(dict(label=cfg["label"], seen=seen, loss=round(float(np.mean(losses[-50:])), 3),
                                  synth_cwr=syn["cwr"], synth_ccr=syn["ccr"], iiit_cwr=hi["cwr"] if hi else None,
                                  iiit_ccr=hi["ccr"] if hi else None, lr=lr,
                                  train_s=round(time.time() - t_train, 1),
                                  samples_per_s=round(seen / (time.time() - t_train), 1))), flush=True)
            ei += 1


if __name__ == "__main__":
    main()
