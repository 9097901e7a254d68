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


def _as_minimal_sets(root):
    """Repack the glyph stand-in as the two minimal sets: small1 = the background alphabets,
    small2 = the evaluation alphabets plus a copy of the first background alphabet (shared, like
    Greek and Latin in the real pair)."""
    with zipfile.ZipFile(root / "images_background.zip") as bg, zipfile.ZipFile(root / "images_evaluation.zip") as ev:
        first = sorted({n.split("/")[1] for n in bg.namelist()})[0]
        for target, members in (("images_background_small1", [(bg, n) for n in bg.namelist()]),
                                ("images_background_small2", [(ev, n) for n in ev.namelist()]
                                 + [(bg, n) for n in bg.namelist() if n.split("/")[1] == first])):
            with zipfile.ZipFile(root / f"{target}.zip", "w") as out:
                for zf, n in members:
                    out.writestr(target + "/" + n.split("/", 1)[1], zf.read(n))
    return root


def test_lake_benchmark_runs_end_to_end_on_glyph_stand_in(tmp_path, monkeypatch, capsys):
    """The whole real-data path: official-format zips → loader → selection on a held-out background
    alphabet → meta-training → held-out-alphabet runs → the 20 official-format runs."""
    from utils.course import bench
    from utils.course.fixtures import write_glyph_omniglot
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    root = _as_minimal_sets(write_glyph_omniglot(tmp_path / "omni", n_background=2, n_evaluation=1, chars=20,
                                                 drawers=3, runs=2))
    out = bench.lake(bench.build_parser().parse_args(
        ["lake", "--root", str(root), "--minutes", "0.005", "--select-minutes", "0.002", "--device", "cpu",
         "--ways-grid", "5", "10", "--runs", "4", "--val-runs", "2"]))
    text = capsys.readouterr().out
    assert "validation error" in text and "<- chosen" in text and out["validation_alphabet"] == "Glyph_01"
    assert out["chosen"]["n_way"] in (5, 10) and out["runs"] == 4 and 0 <= out["heldout_error"] <= 1
    assert "held-out test runs: 4 from images_background_small2's Glyph_02" in text
    assert "run01" in text and "run02" in text and "official runs, overall error" in text
    assert len(out["official_per_run"]) == 2 and 0 <= out["official_error"] <= 1
    assert "people 4.5%" in text


# ----------------------------------------------------------------------------- the shipped real files
REAL_ROOT = omniglot.DEFAULT_ROOT
SHIPPED = {"images_background_small1.zip": (["Balinese", "Early_Aramaic", "Greek", "Korean", "Latin"], 136),
           "images_background_small2.zip": (["Greek", "Japanese_(katakana)", "Latin", "Sanskrit", "Tagalog"], 156)}


def test_shipped_minimal_sets_match_their_published_checksums():
    """data/omniglot holds both minimal sets, their LICENSE, and a README whose sums are the manifest's."""
    sums = omniglot.verify_shipped()
    assert set(sums) == set(SHIPPED) == set(omniglot.SHIPPED_SHA256)
    readme = (omniglot.DEFAULT_ROOT / "README.md").read_text(encoding="utf-8")
    for name, digest in sums.items():
        assert digest == hashlib.sha256((omniglot.DEFAULT_ROOT / name).read_bytes()).hexdigest()
        assert digest in readme and name in readme
        assert omniglot.KNOWN_MD5[name] in readme, "the README lists the md5 the download checks too"
    licence = (omniglot.DEFAULT_ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "MIT" in licence and "Brenden Lake" in licence
    assert "Lake" in readme and "Salakhutdinov" in readme and "Tenenbaum" in readme


def test_loader_reads_the_shipped_set_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    s = omniglot.load_omniglot(background="small1")          # no root: data/omniglot, no network
    alphabets, n_chars = SHIPPED["images_background_small1.zip"]
    assert s.alphabets == alphabets and s.n_classes == n_chars
    assert s.images.shape == (20 * n_chars, 1, 28, 28) and s.images.dtype == torch.float32
    assert torch.bincount(s.labels).tolist() == [20] * n_chars, "20 drawings of every character"
    korean = s.alphabets.index("Korean")
    assert int((s.alphabet_of_class == korean).sum()) == 40
    for c in (0, n_chars - 1):
        assert sorted(s.drawers[s.labels == c].tolist()) == list(range(1, 21)), "one drawing per drawer"
    assert 0.02 < float(s.images.mean()) < 0.2, "ink (≈1) is the minority of pixels"
    again = omniglot.load_omniglot(background="small1")      # from the cache, written atomically
    assert torch.equal(again.images, s.images) and len(list((tmp_path / "cache").glob("omniglot-*.pt"))) == 1
    assert not list((tmp_path / "cache").glob(".*.tmp")), "no temporary file left behind"


def test_shipped_folder_errors_are_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(CourseError, match=r"does not ship.*download_omniglot"):
        omniglot.load_omniglot(background="evaluation")
    fake = tmp_path / "shipped"
    fake.mkdir()
    monkeypatch.setattr(omniglot, "DEFAULT_ROOT", fake)
    with pytest.raises(CourseError, match=r"images_background_small1.zip.*no such file.*git checkout"):
        omniglot.verify_shipped()
    for name in SHIPPED:
        (fake / name).write_bytes((REAL_ROOT / name).read_bytes())
    assert omniglot.verify_shipped(fake) == omniglot.verify_shipped(REAL_ROOT)
    data = bytearray((fake / "images_background_small2.zip").read_bytes())
    data[-100] ^= 0xFF                                          # one flipped byte
    (fake / "images_background_small2.zip").write_bytes(bytes(data))
    with pytest.raises(CourseError, match=r"SHA-256 of .*images_background_small2.zip.*git checkout"):
        omniglot.load_omniglot(background="small2")
    with pytest.raises(CourseError, match="SHA-256"):
        omniglot.verify_shipped()
    with pytest.raises(CourseError, match=r"all_runs.zip.*no such file.*download_omniglot"):
        omniglot.load_one_shot_runs()


def test_held_out_alphabet_runs_on_the_real_sets(tmp_path, monkeypatch):
    """Lake-style runs: alphabets new to the training set, 20 characters of one alphabet per run,
    training images by one drawer and test images by another."""
    from utils import lake
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    train, test = omniglot.load_omniglot(background="small1"), omniglot.load_omniglot(background="small2")
    alphabets = lake.held_out_alphabets(train, test)
    assert alphabets == ["Japanese_(katakana)", "Sanskrit"], "Greek/Latin are shared; Tagalog has 17 characters"
    assert lake.split_background(train, test) == (["Balinese", "Early_Aramaic", "Greek", "Latin"], "Korean")
    runs = lake.alphabet_runs(test, alphabets, 4, seed=3)
    assert [r.name.split("-")[0] for r in runs] == alphabets * 2
    flat = test.images.flatten(1)
    for run in runs:
        assert run.train_images.shape == run.test_images.shape == (20, 1, 28, 28)
        assert sorted(run.test_targets.tolist()) == list(range(20))
        idx = lambda img: int(torch.nonzero((flat == img.flatten()).all(1))[0])
        tr = [idx(x) for x in run.train_images]
        te = [idx(x) for x in run.test_images]
        assert len({int(test.drawers[i]) for i in tr}) == 1 and len({int(test.drawers[i]) for i in te}) == 1
        assert test.drawers[tr[0]] != test.drawers[te[0]], "training and test images by different drawers"
        assert all(test.labels[te[j]] == test.labels[tr[t]] for j, t in enumerate(run.test_targets.tolist()))
        alphabet = test.alphabets.index(run.name.split("-")[0])
        assert all(int(test.alphabet_of_class[test.labels[i]]) == alphabet for i in tr), "within one alphabet"
    again = lake.alphabet_runs(test, alphabets, 4, seed=3)
    assert all(torch.equal(a.test_images, b.test_images) for a, b in zip(runs, again)), "seeded"
    pixel = lake.evaluate_runs(lake.NearestNeighbour(), runs)
    assert len(pixel.errors) == 4 and all(0 <= e <= 1 for e in pixel.errors)
    with pytest.raises(CourseError, match="rotations=False"):
        lake.alphabet_runs(omniglot.load_omniglot(background="small2", rotations=True), alphabets, 1)
    with pytest.raises(CourseError, match="at least 20 characters"):
        lake.alphabet_runs(test, ["Tagalog"], 1)


def test_shipped_protonet_checkpoint_is_what_the_code_trains(tmp_path, monkeypatch):
    """The ProtoNet that chapters 01–03 load: trained by today's code (code version, settings),
    its recorded held-out error reproduced from the weights, its first training losses reproduced
    by a short seeded retrain."""
    from utils import lake
    from utils.cache import settings_key
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    from utils.trained import trained
    learner, info = trained(lake.CHECKPOINT)
    m = info.manifest
    assert m["code_version"] == lake.training_code_version(), f"training code changed since: rerun `{m['command']}`"
    assert m["settings_hash"] == settings_key(m["settings"]) and "bench lake" in m["command"]
    assert m["metric"]["runs"]["n_runs"] == lake.CHECKPOINT_RUNS["n_runs"]
    feats = lake.heldout_features(learner, m, ways=20)
    runs = lake.alphabet_runs(feats, feats.alphabets, lake.CHECKPOINT_RUNS["n_runs"], 20,
                              seed=lake.CHECKPOINT_RUNS["seed"])
    got = lake.evaluate_runs(lake.NearestNeighbour(), runs)
    assert feats.alphabets == m["metric"]["runs"]["alphabets"]
    assert abs(got.mean - m["metric"]["heldout_error"]) < 0.005, (got.mean, m["metric"]["heldout_error"])
    assert got.mean < m["metric"]["pixel_error"] - 0.2, "the meta-learned metric beats pixels by far"
    train_aug = omniglot.load_omniglot(background=m["metric"]["runs"]["train_set"], rotations=True)
    keys = ("method", "n_way", "q_query", "lr", "meta_batch", "augment", "seed")
    torch.set_num_threads(1)
    short = lake.train_learner(train_aug, list(range(train_aug.n_classes)), cpu_seconds=1e9, max_iterations=10,
                               **{k: m["settings"][k] for k in keys})
    head = m["curve_head"][:10]
    assert abs(sum(short.curve) - sum(head)) < 0.02 * sum(head)
    assert all(abs(a - b) < 0.1 * b for a, b in zip(short.curve, head))


@pytest.mark.parametrize("chapter", ["01_mapping", "02_maml_vs_transfer", "04_distillation"])
def test_chapters_show_their_headline_on_real_omniglot(chapter):
    """Chapters 01, 02 and 04 (distillation) each carry a real-Omniglot headline cell that loads the
    shipped ProtoNet (no training), asserts its claims, and labels the published figures as such."""
    import nbformat
    from conftest import REPO
    nb = nbformat.read(REPO / "solutions" / chapter / f"{chapter}.ipynb", as_version=4)
    cells = {c.get("id"): c for c in nb.cells}
    md, code = cells["omniglot-headline-md"].source, cells["omniglot-headline"].source
    if "real-omniglot-summary" in cells:     # chapter 04 splits measure and summary (no cell over 40 lines)
        code += "\n" + cells["real-omniglot-summary"].source
    assert "Lake, Salakhutdinov & Tenenbaum" in md and "data/omniglot/" in md and "held-out alphabets" in md
    assert ("assert " in code or "ch.claim(" in code) and ("headline(" in code or 'trained("omniglot-protonet' in code)
    assert "meta_train" not in code and "train_learner" not in code, "FAST mode loads the shipped checkpoint"
    if chapter != "04_distillation":
        assert "people 4.5%" in md and "Bayesian Program Learning 3.3%" in md and "Lake et al. 2015" in md
