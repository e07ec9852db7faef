"""What the corpus builders share: the splits, the files they write, and fetching Debian packages."""

import glob
import hashlib
import os
import random
import re
import shutil
import subprocess
from typing import Dict, Hashable, List, Optional, Sequence


def shuffled_split(pairs, n_valid: int, n_test: int, seed: int):
    """{"test", "valid", "train": pairs}: one shuffle fixed by ``seed``, test first."""
    if n_valid + n_test >= len(pairs):
        raise ValueError(f"only {len(pairs)} pairs: cannot hold out {n_valid} valid + {n_test} test")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    shuffled = [pairs[i] for i in order]
    return {
        "test": shuffled[:n_test],
        "valid": shuffled[n_test : n_test + n_valid],
        "train": shuffled[n_test + n_valid :],
    }


def split_by_group(
    group_keys: Sequence[Hashable], n_valid: int, n_test: int, seed: int, max_group: Optional[int] = None
) -> Dict[str, List[int]]:
    """Item indices per split: whole groups (items with equal keys) to test, then valid, then the
    rest to train, groups in an order fixed by ``seed`` and items in index order within a group.
    Groups larger than ``max_group`` stay in train (one would fill a held-out split alone)."""
    members: Dict[Hashable, List[int]] = {}
    for i, key in enumerate(group_keys):
        members.setdefault(key, []).append(i)
    order = sorted(members, key=lambda key: hashlib.sha1(f"{seed}:{key}".encode()).hexdigest())
    held = iter(key for key in order if max_group is None or len(members[key]) <= max_group)
    out: Dict[str, List[int]] = {"test": [], "valid": [], "train": []}
    taken = set()
    for name, size in (("test", n_test), ("valid", n_valid)):
        while len(out[name]) < size:
            key = next(held, None)
            if key is None:
                raise ValueError(
                    f"only {len(group_keys)} items: cannot hold out {n_valid} valid + {n_test} test in whole groups"
                )
            out[name].extend(members[key])
            taken.add(key)
    out["train"] = [i for key in order if key not in taken for i in members[key]]
    if not out["train"]:
        raise ValueError(f"only {len(group_keys)} items: cannot hold out {n_valid} valid + {n_test} test")
    return out


def write(out_dir: str, splits: dict, source_note: str, langs=("de", "en")):
    """OUT_DIR/{split}.{lang} for each side of the pairs, and SOURCE.txt."""
    os.makedirs(out_dir, exist_ok=True)
    for name, pairs in splits.items():
        for idx, lang in enumerate(langs):
            with open(os.path.join(out_dir, f"{name}.{lang}"), "w", encoding="utf-8") as f:
                f.writelines(p[idx] + "\n" for p in pairs)
    with open(os.path.join(out_dir, "SOURCE.txt"), "w", encoding="utf-8") as f:
        f.write(source_note)


def apt_download(packages: Sequence[str], download_dir: str, instead: str) -> Dict[str, str]:
    """``apt-get download`` the packages not yet in ``download_dir`` (no installation, no root);
    returns {package: its newest .deb}. ``instead``: what a user without apt can do."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise RuntimeError(f"apt-get/dpkg-deb not found (not a Debian/Ubuntu system). {instead}")
    os.makedirs(download_dir, exist_ok=True)
    missing = [p for p in packages if newest_deb(download_dir, p) is None]
    if missing:
        p = subprocess.run(
            ["apt-get", "download", *missing], cwd=download_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        if p.returncode != 0 or any(newest_deb(download_dir, m) is None for m in missing):
            raise RuntimeError(
                f"'apt-get download {' '.join(missing)}' failed:\n{p.stdout[-1500:]}\n"
                f"Run 'apt-get update' first. {instead}"
            )
    return {p: newest_deb(download_dir, p) for p in packages}


def newest_deb(folder: str, package: str) -> Optional[str]:
    """The .deb of ``package`` in ``folder`` (``PACKAGE_VERSION_ARCH.deb``) with the highest version,
    numbers compared as numbers (7.4.10 is newer than 7.4.9); None if there is none."""

    def version(path):  # "7.4.10-1" -> ["", 7, ".", 4, ".", 10, "-", 1, ""]: str and int alternate
        pieces = re.split(r"(\d+)", os.path.basename(path).split("_")[1])
        return [int(piece) if i % 2 else piece for i, piece in enumerate(pieces)]

    return max(glob.glob(os.path.join(folder, f"{package}_*.deb")), key=version, default=None)


def unpack(debs: Sequence[str], root: str) -> str:
    """``dpkg-deb -x`` each .deb into ``root``; returns ``root``."""
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
    return root
