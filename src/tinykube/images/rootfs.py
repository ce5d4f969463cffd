"""Per-container root filesystems made from cached layers: an overlay, or a copy.

As root, where the kernel has overlayfs and every layer is in overlay form, a container's
root is `mount -t overlay -o lowerdir=TOP:...:BOTTOM,upperdir=...,workdir=...`: nothing is
copied and every container of an image shares its layers. The `lowerdir` names are relative
to the layers directory (the mount runs there), so even 40 layers stay well below the
kernel's page-sized limit on mount options. Otherwise the layers are copied, bottom first,
into the container's directory, applying their whiteouts (in either form) as they go; a
copied directory replaces a non-directory entry before anything is written below it, so no
write follows a symlink.

`container.json` beside the root names the image, so the store's GC keeps what is in use.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

from tinykube.images.store import Image, Store, _remove
from tinykube.images.unpack import OPAQUE, OVERLAY_OPAQUE, WHITEOUT, Form, LayerDir

_overlay_ok: dict[Path, bool] = {}


def _mount_overlay(lowers: list[str], upper: Path, work: Path, target: Path, cwd: Path) -> bool:
    opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
    done = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(target)],
                          cwd=cwd, capture_output=True, text=True, check=False)
    return done.returncode == 0


def overlay_supported(store: Store) -> bool:
    """Whether overlay mounts work for this store (root, overlayfs, a usable filesystem)."""
    if store.root not in _overlay_ok:
        ok = False
        if os.geteuid() == 0 and shutil.which("mount"):
            with store.temp_dir() as d:
                for sub in ("lower", "upper", "work", "merged"):
                    (d / sub).mkdir()
                ok = _mount_overlay(["lower"], d / "upper", d / "work", d / "merged", d)
                if ok:
                    subprocess.run(["umount", str(d / "merged")], check=False)
        _overlay_ok[store.root] = ok
    return _overlay_ok[store.root]


def _layers(store: Store, image: Image) -> list[LayerDir]:
    layers = []
    for ly in image.layers:
        layer = store.layer(ly.diff_id)
        if layer is None:
            raise FileNotFoundError(f"layer {ly.diff_id} of {image.digest} is not cached")
        layers.append(layer)
    return layers


def create(store: Store, container: str, image: Image, *, overlay: bool | None = None) -> Path:
    """The root filesystem of `container` from `image` (overlay when possible unless
    `overlay` says otherwise); returns its path."""
    base = store.root / "containers" / container
    base.mkdir()
    (base / "container.json").write_text(json.dumps({"image": image.digest}))
    layers = _layers(store, image)
    root = base / "rootfs"
    root.mkdir()
    use_overlay = overlay if overlay is not None else overlay_supported(store)
    if use_overlay and all(ly.form is Form.OVERLAY for ly in layers):
        (base / "upper").mkdir()
        (base / "work").mkdir()
        lowers = [str(ly.root.relative_to(store.root / "layers")) for ly in reversed(layers)]
        if _mount_overlay(lowers, base / "upper", base / "work", root, store.root / "layers"):
            (base / "mounted").touch()
            store.touch(image.digest)
            return root
    for layer in layers:
        copy_layer(layer, root)
    store.touch(image.digest)
    return root


UNMOUNT_TRIES = 10  # then a lazy unmount (containerd retries an EBUSY unmount likewise)
UNMOUNT_PAUSE = 0.05


def _unmount(target: Path) -> None:
    """Unmount `target`; while it is busy (a container's last process still exiting in it,
    a runc run that was starting when its pod was stopped), retry a few times, then detach
    it lazily (MNT_DETACH: gone from the tree now, freed once its last user goes), so no
    root filesystem is ever left mounted."""
    for _ in range(UNMOUNT_TRIES):
        done = subprocess.run(["umount", str(target)], capture_output=True, check=False)
        if done.returncode == 0 or not os.path.ismount(target):
            return
        time.sleep(UNMOUNT_PAUSE)  # blocking: callers run this in a thread
    subprocess.run(["umount", "--lazy", str(target)], check=True, capture_output=True)


def remove(store: Store, container: str) -> None:
    """Unmount and delete `container`'s root filesystem (blocking)."""
    base = store.root / "containers" / container
    if (base / "mounted").exists():
        _unmount(base / "rootfs")
    with contextlib.suppress(FileNotFoundError):
        _remove(base)


def _whiteout_target(layer: LayerDir, entry: os.DirEntry[str]) -> str | None:
    if layer.form is Form.OCI:
        if entry.name.startswith(WHITEOUT) and entry.name != OPAQUE:
            return entry.name[len(WHITEOUT):]
        return None
    st = entry.stat(follow_symlinks=False)
    return entry.name if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 else None


def _clear(path: Path) -> None:
    st = _lstat(path)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        path.unlink()


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _attrs(src: Path, st: os.stat_result, dst: Path) -> None:
    if os.geteuid() == 0:
        os.lchown(dst, st.st_uid, st.st_gid)
        for name in os.listxattr(src, follow_symlinks=False):
            if name != OVERLAY_OPAQUE:
                os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False),
                            follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def copy_layer(layer: LayerDir, dst: Path) -> None:
    """Apply the unpacked `layer` onto the directory `dst` (whiteouts, then entries)."""
    _copy_dir(layer, layer.root, dst, {})


def _copy_dir(layer: LayerDir, src: Path, dst: Path, links: dict[tuple[int, int], Path]) -> None:
    if layer.is_opaque(src):
        for child in list(dst.iterdir()):
            _clear(child)
    entries = sorted(os.scandir(src), key=lambda e: e.name)
    rest = []
    for entry in entries:
        target = _whiteout_target(layer, entry)
        if target is not None:
            _clear(dst / target)
        elif not (layer.form is Form.OCI and entry.name == OPAQUE):
            rest.append(entry)
    for entry in rest:
        _copy_entry(layer, Path(entry.path), dst / entry.name, links)


def _copy_entry(layer: LayerDir, src: Path, dst: Path,
                links: dict[tuple[int, int], Path]) -> None:
    st = os.lstat(src)
    old = _lstat(dst)
    if stat.S_ISDIR(st.st_mode):
        if old is not None and not stat.S_ISDIR(old.st_mode):
            dst.unlink()
        dst.mkdir(exist_ok=True)
        _copy_dir(layer, src, dst, links)
        _attrs(src, st, dst)
        return
    if old is not None:
        _clear(dst)
    key = (st.st_dev, st.st_ino)
    if st.st_nlink > 1 and key in links:
        os.link(links[key], dst)
        return
    if stat.S_ISREG(st.st_mode):
        shutil.copyfile(src, dst, follow_symlinks=False)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif os.geteuid() == 0:
        os.mknod(dst, st.st_mode, st.st_rdev)
    else:
        return
    _attrs(src, st, dst)
    if st.st_nlink > 1:
        links[key] = dst
