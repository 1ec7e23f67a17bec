"""Makes testdata/python_lmdb (a tiny STR LMDB written by Python's lmdb) and
testdata/python_lmdb.json (what strata must read from it).

Run once with Debian's python3 (python3-lmdb, python3-pil):
    /usr/bin/python3 testdata/make_python_lmdb.py
"""
import hashlib, io, json, os, shutil

import lmdb
from PIL import Image, ImageDraw

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "python_lmdb")
shutil.rmtree(out, ignore_errors=True)


def word(mode, size, fmt, text, colour, bg):
    im = Image.new(mode, size, bg)
    ImageDraw.Draw(im).text((2, 1), text, fill=colour)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


samples = [
    (word("L", (40, 14), "JPEG", "grey", 0, 230), "grey"),
    (word("RGB", (48, 16), "JPEG", "RGB", (200, 20, 20), (240, 240, 200)), "RGB"),
    (word("RGBA", (36, 12), "PNG", "rgba", (0, 0, 0, 255), (255, 255, 255, 128)), "Café"),
    (word("L", (30, 12), "PNG", "42", 255, 20), "42"),
    (word("RGB", (64, 16), "PNG", "longer", (10, 10, 10), (250, 250, 250)), "Longer-Word!"),
]
env = lmdb.open(out, map_size=1 << 20)
with env.begin(write=True) as txn:
    for i, (img, label) in enumerate(samples, 1):
        txn.put(b"image-%09d" % i, img)
        txn.put(b"label-%09d" % i, label.encode("utf-8"))
    txn.put(b"num-samples", str(len(samples)).encode())
env.close()
os.remove(os.path.join(out, "lock.mdb"))
with open(os.path.join(here, "python_lmdb.json"), "w") as f:
    json.dump(
        [
            {
                "index": i,
                "label": label,
                "image_sha256": hashlib.sha256(img).hexdigest(),
                "size": list(Image.open(io.BytesIO(img)).size),
                "mode": Image.open(io.BytesIO(img)).mode,
            }
            for i, (img, label) in enumerate(samples, 1)
        ],
        f,
        indent=1,
    )
    f.write("\n")
