"""Makes the small archives in testdata/archives/ used by the download and
extraction tests (good ones, and ones that try to escape the target).

    /usr/bin/python3 testdata/make_archives.py
"""
import io, os, tarfile, zipfile

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "archives")
os.makedirs(here, exist_ok=True)


def tar(name, entries, mode="w"):
    with tarfile.open(os.path.join(here, name), mode, format=tarfile.GNU_FORMAT) as t:
        for kind, path, data in entries:
            info = tarfile.TarInfo(path)
            info.mtime = 0
            if kind == "file":
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            elif kind == "sym":
                info.type = tarfile.SYMTYPE
                info.linkname = data
                t.addfile(info)
            elif kind == "hard":
                info.type = tarfile.LNKTYPE
                info.linkname = data
                t.addfile(info)


long = "deep/" + "x" * 120 + ".txt"
good = [
    ("dir", "top", None),
    ("file", "top/a.txt", b"hello\n"),
    ("file", "top/sub/b.bin", bytes(range(256)) * 8),
    ("sym", "top/link", "a.txt"),
    ("hard", "top/hard", "top/a.txt"),
    ("file", "top/" + long, b"long name\n"),
]
tar("good.tar.gz", good, "w:gz")
tar("good.tar", good, "w")
tar("evil_dotdot.tar.gz", [("file", "ok.txt", b"ok"), ("file", "../escape.txt", b"evil")], "w:gz")
tar("evil_absolute.tar.gz", [("file", "/tmp/strata-evil.txt", b"evil")], "w:gz")
tar("evil_symlink.tar.gz", [("sym", "etc", "/etc")], "w:gz")
tar("evil_symlink_up.tar.gz", [("sym", "up", "../../outside")], "w:gz")
tar("evil_through_symlink.tar.gz", [("dir", "real", None), ("sym", "alias", "real"), ("file", "alias/x.txt", b"x")], "w:gz")

with zipfile.ZipFile(os.path.join(here, "good.zip"), "w") as z:
    z.writestr(zipfile.ZipInfo("top/", (1980, 1, 1, 0, 0, 0)), b"")
    z.writestr(zipfile.ZipInfo("top/a.txt", (1980, 1, 1, 0, 0, 0)), b"hello\n", zipfile.ZIP_STORED)
    z.writestr(zipfile.ZipInfo("top/sub/b.bin", (1980, 1, 1, 0, 0, 0)), bytes(range(256)) * 8, zipfile.ZIP_DEFLATED)
    z.writestr(zipfile.ZipInfo("top/empty.txt", (1980, 1, 1, 0, 0, 0)), b"")
with zipfile.ZipFile(os.path.join(here, "evil_dotdot.zip"), "w") as z:
    z.writestr(zipfile.ZipInfo("../escape.txt", (1980, 1, 1, 0, 0, 0)), b"evil")
with zipfile.ZipFile(os.path.join(here, "evil_symlink.zip"), "w") as z:
    info = zipfile.ZipInfo("etc", (1980, 1, 1, 0, 0, 0))
    info.create_system = 3
    info.external_attr = (0o120777 << 16)
    z.writestr(info, b"/etc")
