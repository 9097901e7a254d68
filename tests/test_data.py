"""Engine data: sinusoid tasks, episodes, class splits, glyphs, digits."""
import pytest
import torch

from utils.digits import load_digits_split
from utils.episodes import EpisodeSampler, split_classes
from utils.errors import CourseError
from utils.glyphs import load_glyphs
from utils.tasks import SinusoidFamily


def test_sinusoid_shapes_ranges_and_seeding():
    fam = SinusoidFamily()
    b = fam.sample(25, 10, 7, generator=torch.Generator().manual_seed(0))
    assert b.support_x.shape == (25, 10, 1) and b.query_y.shape == (25, 7, 1)
    assert b.amplitude.min() >= 0.1 and b.amplitude.max() <= 5.0
    assert b.phase.min() >= 0 and b.phase.max() <= torch.pi
    assert b.support_x.abs().max() <= 5.0
    torch.testing.assert_close(b.support_y, b.amplitude.view(-1, 1, 1) * torch.sin(b.support_x - b.phase.view(-1, 1, 1)))
    again = fam.sample(25, 10, 7, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(b.query_x, again.query_x)


def test_sinusoid_bad_input():
    with pytest.raises(CourseError, match="k_support"):
        SinusoidFamily().sample(3, 0)
    with pytest.raises(CourseError, match="low < high"):
        SinusoidFamily(amplitude=(5, 1))


def _toy(n_classes=6, per_class=8):
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    images = torch.arange(len(labels), dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()
    return images, labels


def test_episode_shapes_remapping_and_disjointness():
    images, labels = _toy()
    s = EpisodeSampler(images, labels, n_way=3, k_shot=2, q_query=4, seed=0)
    e = s.sample()
    assert e.support_x.shape == (6, 1, 2, 2) and e.query_x.shape == (12, 1, 2, 2)
    assert e.support_y.tolist() == [0, 0, 1, 1, 2, 2]
    assert sorted(set(e.query_y.tolist())) == [0, 1, 2]
    sup_ids = set(e.support_x[:, 0, 0, 0].long().tolist())
    qry_ids = set(e.query_x[:, 0, 0, 0].long().tolist())
    assert not sup_ids & qry_ids, "an example is in both support and query"
    # each relabelled class holds examples of the original class it names
    for way in range(3):
        orig = labels[e.support_x[e.support_y == way][:, 0, 0, 0].long()]
        assert (orig == e.classes[way]).all()


def test_episode_seeding_and_batch():
    images, labels = _toy()
    a = EpisodeSampler(images, labels, 3, 1, 2, seed=5).sample_batch(4)
    b = EpisodeSampler(images, labels, 3, 1, 2, seed=5).sample_batch(4)
    assert a.support_x.shape == (4, 3, 1, 2, 2) and a.query_y.shape == (4, 6)
    torch.testing.assert_close(a.query_x, b.query_x)
    c = EpisodeSampler(images, labels, 3, 1, 2, seed=6).sample_batch(4)
    assert not torch.equal(a.classes, c.classes) or not torch.equal(a.query_x, c.query_x)


def test_episode_errors_name_expected_and_found():
    images, labels = _toy(n_classes=4, per_class=5)
    with pytest.raises(CourseError, match=r"n_way: expected at most 4.*found 5"):
        EpisodeSampler(images, labels, 5, 1, 1)
    with pytest.raises(CourseError, match=r"k_shot \+ q_query.*found 3 \+ 3 = 6"):
        EpisodeSampler(images, labels, 2, 3, 3)
    with pytest.raises(CourseError, match="same number"):
        EpisodeSampler(images[:3], labels, 2, 1, 1)
    with pytest.raises(CourseError, match="absent ids"):
        EpisodeSampler(images, labels, 2, 1, 1, classes=[0, 99])


def test_split_classes_disjoint_and_grouped():
    tr, va, te = split_classes(range(20), (0.6, 0.2, 0.2), seed=0)
    assert len(tr) == 12 and len(va) == 4 and len(te) == 4
    assert not (set(tr) & set(va) or set(tr) & set(te) or set(va) & set(te))
    groups = [c // 4 for c in range(20)]
    tr, va, te = split_classes(range(20), (0.6, 0.2, 0.2), seed=1, groups=groups)
    for part_a, part_b in ((tr, va), (tr, te), (va, te)):
        assert not {groups[c] for c in part_a} & {groups[c] for c in part_b}
    with pytest.raises(CourseError, match="summing to 1"):
        split_classes(range(5), (0.5, 0.1, 0.1))


def test_glyphs_deterministic_and_shaped():
    a = load_glyphs(n_alphabets=3, chars_per_alphabet=4, examples_per_char=5, seed=7, cache=False)
    b = load_glyphs(n_alphabets=3, chars_per_alphabet=4, examples_per_char=5, seed=7, cache=False)
    c = load_glyphs(n_alphabets=3, chars_per_alphabet=4, examples_per_char=5, seed=8, cache=False)
    assert a.images.shape == (60, 1, 28, 28) and a.labels.shape == (60,)
    assert a.images.min() >= 0 and a.images.max() <= 1 and a.images.mean() > 0.02
    torch.testing.assert_close(a.images, b.images)
    assert not torch.equal(a.images, c.images)
    assert a.alphabet_of_class.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    # examples of one class differ (perturbed renderings), but resemble each other more than others
    x = a.images.flatten(1)
    d = torch.cdist(x, x)
    same = a.labels[:, None] == a.labels[None, :]
    off_diag = ~torch.eye(len(x), dtype=torch.bool)
    assert d[same & off_diag].min() > 0
    assert d[same & off_diag].mean() < d[~same].mean()


def test_glyphs_cache_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    a = load_glyphs(n_alphabets=2, chars_per_alphabet=2, examples_per_char=3, seed=1)
    files = list(tmp_path.glob("glyphs-*.pt"))
    assert len(files) == 1
    b = load_glyphs(n_alphabets=2, chars_per_alphabet=2, examples_per_char=3, seed=1)
    torch.testing.assert_close(a.images, b.images)
    files[0].write_bytes(b"corrupt")  # a damaged cache is rebuilt, not trusted
    c = load_glyphs(n_alphabets=2, chars_per_alphabet=2, examples_per_char=3, seed=1)
    torch.testing.assert_close(a.images, c.images)
    with pytest.raises(CourseError, match="n_alphabets"):
        load_glyphs(n_alphabets=0)


def test_digits_split_fixed_and_disjoint():
    d = load_digits_split()
    assert d["train"].x.shape[1:] == (1, 8, 8)
    assert len(d["train"]) + len(d["val"]) + len(d["test"]) == 1797
    assert d["train"].x.max() <= 1.0
    again = load_digits_split()
    torch.testing.assert_close(d["test"].x, again["test"].x)
    assert sorted(set(d["test"].y.tolist())) == list(range(10))
