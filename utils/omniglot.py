"""The real Omniglot release (Lake, Salakhutdinov & Tenenbaum, 2015), through the course's interfaces.

Reads the official zips from a local folder — by default ``data/omniglot/``, where the course
ships the two "minimal" background sets (MIT licence, see that folder's README) — and returns
28×28 tensors that the :class:`~utils.episodes.EpisodeSampler` and the meta-learners use like the
embedded glyphs. Nothing is fetched unless you call :func:`download_omniglot` on a machine that is
online (the full sets and the official one-shot runs are not shipped). Chapter 02 (section 13) and
``python -m utils.course bench lake`` (:mod:`utils.lake`) use it.

Zips understood (as published in ``brendenlake/omniglot/python``):

* ``images_background.zip`` (30 alphabets, 964 characters), ``images_evaluation.zip`` (20
  alphabets, 659 characters), and the "minimal" background sets
  ``images_background_small1.zip`` / ``images_background_small2.zip`` (5 alphabets each). Each
  holds ``<set>/<Alphabet>/<characterNN>/<id>_<drawer>.png``, 105×105, dark ink on white.
* ``all_runs.zip``: the one-shot benchmark, folders ``run01``..``run20`` with
  ``training/classNN.png``, ``test/itemNN.png`` and ``class_labels.txt`` (lines
  ``runNN/test/itemNN.png runNN/training/classNN.png``).
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .cache import PROJECT_ROOT, atomic_write_bytes, cached_torch
from .errors import CourseError, course_error, read_json_file

OMNIGLOT_VERSION = 2  # 2: drawer ids per image; cache keyed by the zip's sha256
SETS = {
    True: "images_background", False: "images_evaluation",
    "background": "images_background", "evaluation": "images_evaluation",
    "small1": "images_background_small1", "small2": "images_background_small2",
}
#: The download manifest: URLs and MD5 sums of the official files, kept in one place for people
#: and code alike (``data/omniglot_manifest.json``; data/README.md explains it).
MANIFEST_PATH = Path(__file__).resolve().parent.parent / "data" / "omniglot_manifest.json"


def load_manifest(path: str | Path = MANIFEST_PATH) -> dict:
    """The Omniglot manifest: ``url_prefix`` and ``files`` (name -> ``path``, ``md5`` or None)."""
    data = read_json_file(path, "Omniglot download manifest",
                          "restore data/omniglot_manifest.json from the repository")
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or not isinstance(data.get("url_prefix"), str) or not all(
            isinstance(f, dict) and isinstance(f.get("path"), str) for f in files.values()):
        raise course_error(f"Omniglot manifest {path}", "a JSON object with 'url_prefix' and "
                           "'files' (name -> {'path', 'md5'})", "another shape",
                           "restore data/omniglot_manifest.json from the repository")
    return data


_MANIFEST = load_manifest()
URL_PREFIX = _MANIFEST["url_prefix"]
#: Where each official file lives under :data:`URL_PREFIX` (``all_runs.zip`` is in a subfolder).
FILE_PATHS = {name: f["path"] for name, f in _MANIFEST["files"].items()}
#: MD5 sums of the official zips (the values torchvision also checks). Zips without a published
#: sum in the manifest can only be downloaded with an ``expected_md5`` you supply.
KNOWN_MD5 = {name: f["md5"] for name, f in _MANIFEST["files"].items() if f.get("md5")}
#: The zips that ship with the course in :data:`DEFAULT_ROOT`, and their SHA-256 sums (manifest).
SHIPPED_SHA256 = {name: f["sha256"] for name, f in _MANIFEST["files"].items() if f.get("shipped")}
#: Where the shipped minimal sets live; the default ``root`` of every loader.
DEFAULT_ROOT = PROJECT_ROOT / "data" / "omniglot"
_PNG_PATH = re.compile(r"^(?P<set>[^/]+)/(?P<alphabet>[^/]+)/(?P<char>character\d+)/(?P<file>[^/]+\.png)$")
_DRAWER = re.compile(r"_(\d+)\.png$")


@dataclass
class OmniglotSet:
    """Images ``(M, 1, 28, 28)`` float in [0, 1] (ink ≈ 1), labels ``(M,)`` class ids ``0..C-1``,
    ``alphabet_of_class`` ``(C,)``, ``class_names`` like ``"Latin/character01/rot090"``,
    ``drawers`` ``(M,)``: who drew each image (the ``NN`` of ``<id>_NN.png``, 1..20 in the release;
    -1 where a file name carries none)."""
    images: torch.Tensor
    labels: torch.Tensor
    alphabet_of_class: torch.Tensor
    class_names: list
    alphabets: list
    drawers: torch.Tensor | None = None

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


@dataclass
class OneShotRun:
    """One run of the 20-way within-alphabet one-shot benchmark.

    ``train_images`` ``(20, 1, 28, 28)`` (one per class), ``test_images`` ``(20, 1, 28, 28)``,
    ``test_targets`` ``(20,)``: the index of the training image each test item belongs to."""
    name: str
    train_images: torch.Tensor
    test_images: torch.Tensor
    test_targets: torch.Tensor


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _md5(path: Path) -> str:
    return _digest(path, "md5")


def sha256_of(path) -> str:
    """SHA-256 of a file, hex (the sums listed in ``data/omniglot/README.md`` and the manifest)."""
    return _digest(Path(path), "sha256")


def verify_shipped(root=None) -> dict:
    """Check the shipped zips in ``root`` (default :data:`DEFAULT_ROOT`) against their SHA-256.

    Returns ``{name: sha256}``; raises a :class:`CourseError` naming the file for a missing or
    altered one (what was expected, what was found, how to restore it)."""
    root = Path(root) if root is not None else DEFAULT_ROOT
    out = {}
    for name, expected in SHIPPED_SHA256.items():
        path = root / name
        if not path.is_file():
            raise course_error(f"shipped Omniglot file {name}", f"a file at {path}", "no such file",
                               "restore data/omniglot/ from the repository (git checkout -- data/omniglot)")
        got = sha256_of(path)
        if got != expected:
            raise course_error(f"SHA-256 of {path}", expected, got,
                               "the file was altered or truncated: restore it with git checkout -- data/omniglot")
        out[name] = got
    return out


def _open_zip(path: Path) -> zipfile.ZipFile:
    if not path.exists():
        raise course_error(f"Omniglot file {path.name}", f"a file at {path}", "no such file",
                           "put the official zip there (see utils.omniglot) or call "
                           "utils.omniglot.download_omniglot(root) on a machine that is online")
    try:
        zf = zipfile.ZipFile(path)
        bad = zf.testzip()
    except (zipfile.BadZipFile, OSError) as exc:
        raise course_error(f"Omniglot file {path.name}", "a valid zip archive",
                           f"an unreadable file ({exc})", "delete it and copy or download it again") from exc
    if bad is not None:
        raise course_error(f"Omniglot file {path.name}", "a zip whose members pass their CRC check",
                           f"a corrupt member {bad}", "delete it and copy or download it again")
    return zf


def _to_tensor(png_bytes: bytes, name: str, size: int = 28) -> np.ndarray:
    from PIL import Image
    try:
        img = Image.open(io.BytesIO(png_bytes)).convert("L")
    except Exception as exc:
        raise course_error(f"image {name}", "a PNG image", f"undecodable bytes ({exc})",
                           "re-copy the zip; it may be damaged") from exc
    img = img.resize((size, size), Image.Resampling.BOX)
    return 1.0 - np.asarray(img, dtype=np.float32) / 255.0  # ink → 1


def _read_set(path: Path, rotations: bool) -> OmniglotSet:
    zf = _open_zip(path)
    members = sorted(n for n in zf.namelist() if n.endswith(".png"))
    chars: dict[tuple[str, str], list[str]] = {}
    for n in members:
        m = _PNG_PATH.match(n)
        if m is None:
            raise course_error(f"member {n!r} of {path.name}",
                               "paths like <set>/<Alphabet>/<characterNN>/<id>_<drawer>.png",
                               repr(n), "use the official Omniglot zips, unmodified")
        chars.setdefault((m["alphabet"], m["char"]), []).append(n)
    if not chars:
        raise course_error(path.name, "PNG images of characters", "none", "use the official Omniglot zips")
    alphabets = sorted({a for a, _ in chars})
    images, labels, alpha_of_class, names, drawers = [], [], [], [], []
    angles = (0, 1, 2, 3) if rotations else (0,)
    for (alphabet, char), files in sorted(chars.items()):
        base = np.stack([_to_tensor(zf.read(f), f) for f in files])  # (E, 28, 28)
        who = [int(m.group(1)) if (m := _DRAWER.search(f)) else -1 for f in files]
        for k in angles:
            labels += [len(names)] * len(files)
            drawers += who
            images.append(np.rot90(base, k, axes=(1, 2)).copy())
            alpha_of_class.append(alphabets.index(alphabet))
            names.append(f"{alphabet}/{char}" + (f"/rot{90 * k:03d}" if rotations else ""))
    return OmniglotSet(torch.from_numpy(np.concatenate(images)).unsqueeze(1),
                       torch.tensor(labels), torch.tensor(alpha_of_class), names, alphabets,
                       torch.tensor(drawers))


def load_omniglot(root=None, background=True, rotations: bool = False, cache: bool = True) -> OmniglotSet:
    """Load one Omniglot set from the official zip in folder ``root``.

    With ``root=None`` it reads the minimal sets shipped in :data:`DEFAULT_ROOT` (``data/omniglot``)
    and checks their SHA-256 first; pass ``background="small1"`` or ``"small2"`` for those.

    Args:
        root: folder holding the zips (default: the shipped ``data/omniglot``).
        background: ``True``/"background" (images_background), ``False``/"evaluation",
            "small1" or "small2" (the minimal background sets).
        rotations: add the 90°, 180° and 270° rotations of every character as new classes (the
            standard augmentation of Santoro et al. 2016 / Finn et al. 2017).
        cache: keep the decoded arrays under ``data/cache/`` (written atomically), keyed by the
            zip's SHA-256, so a changed file is decoded again.
    """
    if background not in SETS:
        raise course_error("background", "True, False, 'background', 'evaluation', 'small1' or 'small2'",
                           repr(background), "pick one of those")
    shipped = root is None
    root = DEFAULT_ROOT if shipped else Path(root)
    if shipped and f"{SETS[background]}.zip" not in SHIPPED_SHA256:
        raise course_error(f"Omniglot set {background!r} in the shipped folder {root}",
                           "one of the shipped minimal sets: 'small1' or 'small2'",
                           f"{SETS[background]}.zip, which the course does not ship",
                           "download it with utils.omniglot.download_omniglot(folder) on a machine that is "
                           "online and pass root=folder, or use background='small1' / 'small2'")
    if not root.is_dir():
        raise course_error("Omniglot root", "a folder holding the official zips", f"{root} (not a folder)",
                           "pass the folder where images_background.zip etc. are")
    path = root / f"{SETS[background]}.zip"
    if not path.exists():
        _open_zip(path)  # raises the helpful error
    digest = sha256_of(path)
    if shipped and digest != SHIPPED_SHA256[path.name]:
        raise course_error(f"SHA-256 of {path}", SHIPPED_SHA256[path.name], digest,
                           "the file was altered or truncated: restore it with git checkout -- data/omniglot")
    if not cache:
        return _read_set(path, rotations)
    settings = dict(file=path.name, sha256=digest, rotations=rotations, version=OMNIGLOT_VERSION)
    return cached_torch("omniglot", settings, lambda: _read_set(path, rotations))


def load_one_shot_runs(root=None) -> list[OneShotRun]:
    """The 20 runs of ``all_runs.zip`` (Lake et al. 2015's 20-way one-shot benchmark) in ``root``
    (default :data:`DEFAULT_ROOT`; the course does not ship the file: download it when online)."""
    root = DEFAULT_ROOT if root is None else Path(root)
    zf = _open_zip(root / "all_runs.zip")
    names = set(zf.namelist())
    run_ids = sorted({m.group(1) for n in names if (m := re.match(r"^(run\d+)/class_labels\.txt$", n))})
    if not run_ids:
        raise course_error("all_runs.zip", "folders run01..run20 each with class_labels.txt",
                           "no runNN/class_labels.txt", "use the official all_runs.zip")
    runs = []
    for run in run_ids:
        pairs = []
        for line in zf.read(f"{run}/class_labels.txt").decode().splitlines():
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise course_error(f"{run}/class_labels.txt", "lines 'runNN/test/itemNN.png runNN/training/classNN.png'",
                                   repr(line), "use the official all_runs.zip")
            pairs.append(parts)
        train_files = sorted({t for _, t in pairs})
        for f in [p for pair in pairs for p in pair]:
            if f not in names:
                raise course_error(f"{run}/class_labels.txt", f"every listed image inside the zip",
                                   f"missing {f}", "use the official all_runs.zip")
        train = np.stack([_to_tensor(zf.read(f), f) for f in train_files])
        test = np.stack([_to_tensor(zf.read(q), q) for q, _ in pairs])
        targets = [train_files.index(t) for _, t in pairs]
        runs.append(OneShotRun(run, torch.from_numpy(train).unsqueeze(1), torch.from_numpy(test).unsqueeze(1),
                               torch.tensor(targets)))
    return runs


def download_omniglot(root, files=("images_background.zip", "images_evaluation.zip"),
                      expected_md5: dict | None = None, timeout: float = 60.0) -> list[Path]:
    """Download official zips into ``root`` (only when asked, and only when online), verifying MD5.

    A file already present with the right checksum is kept. A download is written to a temporary
    file and moved into place only after its checksum matched, so no half-written zip is left.
    Zips without a known checksum (``KNOWN_MD5``) need ``expected_md5={name: md5}``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    sums = {**KNOWN_MD5, **(expected_md5 or {})}
    out = []
    for name in files:
        if name not in sums:
            raise course_error(f"checksum of {name}", "a known MD5 sum", "none",
                               "pass expected_md5={%r: '<md5>'} from a source you trust" % name)
        target = root / name
        if target.exists() and _md5(target) == sums[name]:
            out.append(target)
            continue
        try:
            with urllib.request.urlopen(URL_PREFIX + FILE_PATHS.get(name, name), timeout=timeout) as resp:
                data = resp.read()
        except OSError as exc:
            raise course_error(f"download of {name}", "a reachable " + URL_PREFIX, f"an error ({exc})",
                               "copy the zips into the folder by hand, or retry when online") from exc
        got = hashlib.md5(data).hexdigest()
        if got != sums[name]:
            raise course_error(f"checksum of downloaded {name}", sums[name], got,
                               "retry; if it persists, the file changed upstream — do not use it")
        atomic_write_bytes(target, data)
        out.append(target)
    return out


def omniglot_available(root=None) -> dict:
    """Which official files are present in ``root`` (default :data:`DEFAULT_ROOT`; name → bool); never raises."""
    root = DEFAULT_ROOT if root is None else (Path(root) if root else None)
    names = [f"{v}.zip" for v in dict.fromkeys(SETS.values())] + ["all_runs.zip"]
    return {n: bool(root and (root / n).exists()) for n in names}


__all__ = ["load_omniglot", "load_one_shot_runs", "download_omniglot", "omniglot_available",
           "verify_shipped", "sha256_of", "load_manifest", "OmniglotSet", "OneShotRun", "KNOWN_MD5",
           "SHIPPED_SHA256", "DEFAULT_ROOT", "CourseError"]
