"""The Omniglot loader on a tiny fixture in the official format, written by the tests themselves."""
import hashlib
import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from utils import omniglot
from utils.episodes import EpisodeSampler
from utils.errors import CourseError


def _png(seed: int) -> bytes:
    """A 105×105 'character': dark ink strokes on white, like the release."""
    rng = np.random.default_rng(seed)
    img = np.full((105, 105), 255, np.uint8)
    r, c = rng.integers(10, 60, 2)
    img[r:r + 40, c:c + 6] = 0
    img[r:r + 6, c:c + 30] = 0
    buf = io.BytesIO()
    Image.fromarray(img).convert("1").save(buf, format="PNG")
    return buf.getvalue()


def write_set(path, set_name, alphabets=("Latin", "Greek"), chars=3, drawers=4):
    with zipfile.ZipFile(path, "w") as zf:
        for a_i, alphabet in enumerate(alphabets):
            for c in range(1, chars + 1):
                for d in range(1, drawers + 1):
                    name = f"{set_name}/{alphabet}/character{c:02d}/{100 * a_i + c:04d}_{d:02d}.png"
                    zf.writestr(name, _png(1000 * a_i + 10 * c + d))


def write_runs(path, n_runs=2, ways=4):
    with zipfile.ZipFile(path, "w") as zf:
        for r in range(1, n_runs + 1):
            run = f"run{r:02d}"
            lines = []
            for i in range(1, ways + 1):
                target = ways + 1 - i  # item i belongs to class (ways+1-i)
                zf.writestr(f"{run}/training/class{i:02d}.png", _png(r * 100 + i))
                zf.writestr(f"{run}/test/item{i:02d}.png", _png(r * 100 + target))
                lines.append(f"{run}/test/item{i:02d}.png {run}/training/class{target:02d}.png")
            zf.writestr(f"{run}/class_labels.txt", "\n".join(lines) + "\n")


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    write_set(tmp_path / "images_background.zip", "images_background")
    write_set(tmp_path / "images_background_small1.zip", "images_background_small1", alphabets=("Latin",))
    write_runs(tmp_path / "all_runs.zip")
    return tmp_path


def test_load_background_set(root):
    s = omniglot.load_omniglot(root, background=True)
    assert s.images.shape == (2 * 3 * 4, 1, 28, 28)
    assert s.n_classes == 6 and s.alphabets == ["Greek", "Latin"]
    assert s.alphabet_of_class.tolist() == [0, 0, 0, 1, 1, 1]
    assert 0 <= s.images.min() and s.images.max() <= 1
    assert s.images.mean() < 0.5, "ink must be the bright minority after inversion"
    # usable by the episode sampler
    e = EpisodeSampler(s.images, s.labels, 3, 1, 2, seed=0).sample()
    assert e.support_x.shape == (3, 1, 28, 28)


def test_rotations_add_classes(root):
    s = omniglot.load_omniglot(root, background="small1", rotations=True)
    assert s.n_classes == 3 * 4 and s.images.shape[0] == 3 * 4 * 4
    assert s.class_names[1].endswith("rot090")
    first, rot = s.images[s.labels == 0][0, 0], s.images[s.labels == 1][0, 0]
    torch.testing.assert_close(torch.rot90(first, 1, (0, 1)), rot)


def test_cache_is_reused(root):
    omniglot.load_omniglot(root)
    assert len(list((root / "cache").glob("omniglot-*.pt"))) == 1
    omniglot.load_omniglot(root)
    assert len(list((root / "cache").glob("omniglot-*.pt"))) == 1


def test_one_shot_runs(root):
    runs = omniglot.load_one_shot_runs(root)
    assert [r.name for r in runs] == ["run01", "run02"]
    r = runs[0]
    assert r.train_images.shape == (4, 1, 28, 28) and r.test_images.shape == (4, 1, 28, 28)
    assert r.test_targets.tolist() == [3, 2, 1, 0]
    torch.testing.assert_close(r.test_images[0], r.train_images[3])  # same drawing in the fixture


def test_missing_and_corrupt_files(root, tmp_path):
    with pytest.raises(CourseError, match=r"images_evaluation.zip.*no such file.*download_omniglot"):
        omniglot.load_omniglot(root, background=False)
    with pytest.raises(CourseError, match="not a folder"):
        omniglot.load_omniglot(root / "nope")
    with pytest.raises(CourseError, match="background"):
        omniglot.load_omniglot(root, background="tiny")
    (root / "images_evaluation.zip").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(CourseError, match="valid zip"):
        omniglot.load_omniglot(root, background=False, cache=False)
    with zipfile.ZipFile(root / "images_background_small2.zip", "w") as zf:
        zf.writestr("flat/picture.png", _png(0))
    with pytest.raises(CourseError, match="<Alphabet>"):
        omniglot.load_omniglot(root, background="small2", cache=False)
    with zipfile.ZipFile(root / "all_runs.zip", "w") as zf:
        zf.writestr("run01/class_labels.txt", "run01/test/item01.png run01/training/class01.png\n")
    with pytest.raises(CourseError, match="missing run01/test/item01.png"):
        omniglot.load_one_shot_runs(root)


def test_download_verifies_checksum(tmp_path, monkeypatch):
    server = tmp_path / "server"
    server.mkdir()
    write_set(server / "images_background.zip", "images_background", alphabets=("Latin",), chars=1, drawers=2)
    good = hashlib.md5((server / "images_background.zip").read_bytes()).hexdigest()
    monkeypatch.setattr(omniglot, "URL_PREFIX", server.as_uri() + "/")
    dest = tmp_path / "dest"
    with pytest.raises(CourseError, match="checksum of downloaded images_background.zip"):
        omniglot.download_omniglot(dest, files=("images_background.zip",))  # real MD5 ≠ fixture
    assert not (dest / "images_background.zip").exists(), "a bad download must not be left behind"
    got = omniglot.download_omniglot(dest, files=("images_background.zip",),
                                     expected_md5={"images_background.zip": good})
    assert got[0].read_bytes() == (server / "images_background.zip").read_bytes()
    with pytest.raises(CourseError, match="known MD5"):
        omniglot.download_omniglot(dest, files=("all_runs.zip",))
    assert omniglot.omniglot_available(dest)["images_background.zip"] is True


def test_lake_benchmark_runs_end_to_end_on_glyph_stand_in(tmp_path, monkeypatch, capsys):
    """The whole real-data path: official-format zips → loader → meta-training → 20 runs."""
    from utils.course import bench
    from utils.course.fixtures import write_glyph_omniglot
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    root = write_glyph_omniglot(tmp_path / "omni", n_background=2, n_evaluation=1, chars=20,
                                drawers=3, runs=2)
    out = bench.lake(bench.build_parser().parse_args(
        ["lake", "--root", str(root), "--minutes", "0.02", "--device", "cpu"]))
    text = capsys.readouterr().out
    assert "run01" in text and "run02" in text and "overall error rate" in text
    assert len(out["per_run"]) == 2 and 0 <= out["error"] <= 1
