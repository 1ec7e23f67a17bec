"""Test helper (run by checkpoints/*_test.ts with /usr/bin/python3 and PyTorch): writes official-style
checkpoints with torch.save, and reads strata's exports back with torch.load. Not part of strata itself.

  make SRC.safetensors OUTDIR [NAME…]   one file per variant (or only the NAMEs), plus OUTDIR/manifest.json
  check EXPORT.pth REF.safetensors   torch.load(EXPORT) must equal REF (names, order-free; shapes; values)
  evil OUTDIR                   pickles with forbidden globals (built by hand: no object is ever executed)
"""
import collections
import json
import os
import pickle
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "I32": torch.int32, "U8": torch.uint8}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out = collections.OrderedDict()
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        buf = bytearray(data[8 + n + a : 8 + n + b])
        t = torch.frombuffer(buf, dtype=DTYPES[e["dtype"]]).reshape(e["shape"]) if b > a else torch.zeros(e["shape"])
        out[name] = t.clone()
    return out


def non_contiguous(sd):
    """Every tensor as a strided view: 4-D convs channels-last, 2-D transposed, 1-D sliced out of a shared storage
    with an offset (several tensors share one storage)."""
    out = collections.OrderedDict()
    ones = [k for k, v in sd.items() if v.dim() == 1]
    flat = torch.cat([sd[k].reshape(-1) for k in ones]) if ones else torch.zeros(0)
    at = 0
    for k, v in sd.items():
        if v.dim() == 4:
            out[k] = v.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
        elif v.dim() == 2:
            out[k] = v.t().contiguous().t()
        elif v.dim() == 1:
            out[k] = flat[at : at + v.numel()]
            at += v.numel()
        else:
            out[k] = v
        assert torch.equal(out[k], v)
    assert any(not t.is_contiguous() for t in out.values())
    return out


def with_counters(sd):
    """As a real BatchNorm state dict: int64 num_batches_tracked after each running_var."""
    out = collections.OrderedDict()
    for k, v in sd.items():
        out[k] = v
        if k.endswith("running_var"):
            out[k[: -len("running_var")] + "num_batches_tracked"] = torch.tensor(1234, dtype=torch.int64)
    return out


def prefixed(sd, prefix):
    return collections.OrderedDict((prefix + k, v) for k, v in sd.items())


def params(sd):
    """As nn.Module.state_dict(keep_vars=True) would pickle them: Parameters (weights) and plain tensors."""
    out = collections.OrderedDict()
    for k, v in sd.items():
        out[k] = torch.nn.Parameter(v.clone(), requires_grad=True) if k.endswith(("weight", "bias")) else v
    return out


def make(src, outdir, only=()):
    sd = read_safetensors(src)
    os.makedirs(outdir, exist_ok=True)
    variants = {}

    def save(name, obj, legacy=False):
        if only and name not in only:
            return
        path = os.path.join(outdir, name)
        torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
        variants[name] = {"legacy": legacy}

    save("plain_zip.pth", with_counters(sd))
    # ABINet's released files: fastai Learner.save {"model": state_dict, "opt": ...}, legacy format (PyTorch 1.1);
    # fastai's schedulers leave numpy floats in the optimizer's param groups.
    import numpy

    opt = {
        "state": {0: {"step": 10, "exp_avg": torch.ones(3)}},
        "param_groups": [{"lr": numpy.float64(1e-4), "betas": (0.9, 0.999), "wd": numpy.float32(0.5)}],
    }
    save("abinet_style_legacy.pth", {"model": with_counters(sd), "opt": opt}, legacy=True)
    save("module_prefix_zip.pth", prefixed(params(sd), "module."))
    save("module_prefix_legacy.pth", prefixed(sd, "module."), legacy=True)
    lightning = {
        "epoch": 3,
        "global_step": 1000,
        "pytorch-lightning_version": "1.9.5",
        "state_dict": prefixed(with_counters(sd), "model."),
        "hyper_parameters": {"nhead": 8, "lr": 7e-4, "img_size": [32, 128], "name": "abinet_vision"},
        "optimizer_states": [opt],
        "lr_schedulers": [{"last_epoch": 3}],
    }
    save("lightning.ckpt", lightning)
    half = collections.OrderedDict((k, v.half()) for k, v in sd.items())
    save("float16_zip.pth", half)
    save("bfloat16_legacy.pth", collections.OrderedDict((k, v.bfloat16()) for k, v in sd.items()), legacy=True)
    save("noncontiguous_zip.pth", non_contiguous(sd))
    save("noncontiguous_legacy.pth", non_contiguous(sd), legacy=True)
    save("misc_dtypes_zip.pth", collections.OrderedDict([
        ("f64", torch.arange(6, dtype=torch.float64).reshape(2, 3)),
        ("i64", torch.tensor([-3, 0, 2**31 - 1], dtype=torch.int64)),
        ("b", torch.tensor([True, False, True])),
        ("h_t", torch.arange(6, dtype=torch.float16).reshape(2, 3).t()),
        ("bf", torch.tensor([1.5, -2.25], dtype=torch.bfloat16)),
        ("scalar", torch.tensor(7.0)),
        ("empty", torch.zeros(0, 4)),
    ]))
    with open(os.path.join(outdir, "manifest.json"), "w") as f:
        json.dump({"torch": torch.__version__, "variants": variants}, f)


def check(export, ref):
    got = torch.load(export)
    want = read_safetensors(ref)
    assert isinstance(got, collections.OrderedDict), type(got)
    assert list(got.keys()) == list(want.keys()) or sorted(got) == sorted(want), "names differ"
    worst = 0.0
    for k, v in want.items():
        g = got[k]
        assert tuple(g.shape) == tuple(v.shape), (k, g.shape, v.shape)
        assert g.dtype == v.dtype, (k, g.dtype, v.dtype)
        assert g.is_contiguous()
        if v.numel():
            worst = max(worst, float((g.double() - v.double()).abs().max()))
    print(json.dumps({"tensors": len(got), "max_abs_diff": worst}))


def evil(outdir):
    os.makedirs(outdir, exist_ok=True)
    # Hand-written opcodes: GLOBAL os.system / builtins.eval, then REDUCE. Never unpickled here.
    for name, (mod, fn) in {"os_system.pkl": ("os", "system"), "builtins_eval.pkl": ("builtins", "eval")}.items():
        body = b"\x80\x02c" + f"{mod}\n{fn}\n".encode() + b"X\x04\x00\x00\x00echo\x85R."
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(body)
    # The same inside a torch.save zip: a state dict whose data.pkl calls posix.system via STACK_GLOBAL.
    import zipfile
    payload = b"\x80\x04\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x04true\x94\x85\x94R\x94."
    with zipfile.ZipFile(os.path.join(outdir, "evil_zip.pth"), "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", "3\n")
    # A real pickle of a dict with a numpy-free but non-allowed class: collections.Counter.
    with open(os.path.join(outdir, "counter.pkl"), "wb") as f:
        pickle.dump(collections.Counter(a=1), f, protocol=2)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "make":
        make(sys.argv[2], sys.argv[3], tuple(sys.argv[4:]))
    elif cmd == "check":
        check(sys.argv[2], sys.argv[3])
    elif cmd == "evil":
        evil(sys.argv[2])
    else:
        sys.exit(f"unknown command {cmd}")
