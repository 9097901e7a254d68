"""Meta-training over 2 processes (gloo, CPU) equals one process (issue 28).

The test starts the ranks itself (``python`` subprocesses with torchrun's variables, rendezvous on
127.0.0.1 at a free port, one thread each, bounded by timeouts) and compares what they wrote with
a one-process run here: the averaged meta-gradient (float64, <= 1e-10) for MAML and for ProtoNet
(whose batch norm spans the meta-batch), the parameters after 20 outer steps (float32, <= 1e-5),
the checkpoint (written by rank 0 only), resuming it with another number of ranks, and a killed rank
(a clear error naming it, the last checkpoint intact, a rerun resumes).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed

from utils.distributed import World, init_world, use_world, world_from_env
from utils.errors import CourseError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LIMIT_S = 120          # a launch that takes longer fails the test (it never hangs the suite)


# ----------------------------------------------------------------------------- the learners compared
def _sine(dtype=torch.float32):
    from utils.learners import MAML, sinusoid_source
    from utils.models import MLP
    from utils.tasks import SinusoidFamily
    torch.manual_seed(0)
    learner = MAML(MLP([1, 16, 16, 1]).to(dtype), inner_lr=0.01, outer_lr=4e-3, device="cpu")
    family = SinusoidFamily()
    source = sinusoid_source(family, 5, 5, seed=1)
    return learner, (lambda b: _cast(source(b), dtype))


def _proto(dtype=torch.float32):
    from utils.episodes import EpisodeSampler
    from utils.learners import ProtoNet, episode_source
    from utils.models import ConvBackbone
    g = torch.Generator().manual_seed(3)
    images, labels = torch.rand(60, 1, 8, 8, generator=g), torch.arange(10).repeat_interleave(6)
    torch.manual_seed(0)
    learner = ProtoNet(ConvBackbone(hidden=6, blocks=2, image_size=8).to(dtype), lr=3e-3, device="cpu")
    # A conv bias right before batch norm has a zero gradient (the norm subtracts the mean): Adam would
    # divide its float rounding noise by its own tiny scale and move it by up to ±lr a step, on one process
    # as on two, differently, and the running means with it. It computes nothing: hold it still.
    for block in list(learner.model)[:-1]:
        block[0].bias.requires_grad_(False)
    source = episode_source(EpisodeSampler(images, labels, 3, 1, 2, seed=5))
    return learner, (lambda b: _cast(source(b), dtype))


MAKERS = {"maml": _sine, "protonet": _proto}


def _cast(batch, dtype):
    from utils.vocab import split_batch
    return type("Batch", (), {k: (v.to(dtype) if v.is_floating_point() else v)
                              for k, v in split_batch(batch)._asdict().items()})()


def _gradient(kind: str, world: World | None, meta_batch: int = 8) -> dict:
    """The meta-gradient of one meta-batch (float64), averaged over the ranks when ``world`` has several."""
    from utils.distributed import average_gradients, synced_batch_norm
    from utils.vocab import split_batch
    learner, source = MAKERS[kind](torch.float64)
    batch = split_batch(source(meta_batch))
    if world is not None:
        batch = tuple(t[world.share(meta_batch)] for t in batch)
    learner.train_mode(True)
    with synced_batch_norm(learner.model, world) if world is not None and kind == "protonet" else _nothing():
        learner.meta_loss(*batch)[0].backward()
    if world is not None:
        average_gradients(learner.model.parameters(), world)
    return {k: p.grad.clone() for k, p in learner.model.named_parameters() if p.requires_grad}


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _train(kind: str, iterations: int, world: World | None = None, checkpoint=None, every: int = 5, learner=None,
           source=None) -> dict:
    if learner is None:
        learner, source = MAKERS[kind]()
    learner.meta_train(source, iterations, 4, progress=False, world=world, checkpoint=checkpoint,
                       checkpoint_every=every)
    state = {k: v.clone() for k, v in learner.model.state_dict().items()}
    return dict(state=state, loss=list(learner.history.loss))


def _fit(world: World | None = None) -> dict:
    """The supervised ``fit`` (the transfer baseline's loop): 50 examples, batches of 16 (the last one, 2,
    split 1 + 1), batch norm over each batch; the first layer has no bias (batch norm cancels it)."""
    from utils.training import fit
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8, bias=False), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                                torch.nn.Linear(8, 3))
    g = torch.Generator().manual_seed(7)
    x, y = torch.randn(50, 4, generator=g), torch.randint(0, 3, (50,), generator=g)
    hist = fit(model, (x, y), epochs=3, batch_size=16, device="cpu", progress=False, world=world)
    return dict(state={k: v.clone() for k, v in model.state_dict().items()}, loss=hist.train_loss, acc=hist.train_acc)


# ----------------------------------------------------------------------------- what each rank runs
def worker(scenario: str, out: str) -> None:
    """One rank (run as ``python tests/test_distributed.py SCENARIO OUT`` with torchrun's variables)."""
    import utils.checkpoints as ck
    torch.set_num_threads(1)
    out = Path(out)
    world = init_world("gloo", timeout_s=20)
    writes = []
    real = ck.save_checkpoint
    ck.save_checkpoint = lambda name, state, manifest: (writes.append(name), real(name, state, manifest))[1]
    result = {}
    with use_world(world):
        if scenario == "equal":
            result["grad"] = {k: _gradient(k, world) for k in MAKERS}
            result["maml20"] = _train("maml", 20, checkpoint="maml20")
            result["proto20"] = _train("protonet", 20)
            result["half"] = _train("maml", 10, checkpoint="half")
            result["fit"] = _fit(world)
        elif scenario == "killed":
            learner, source = _sine()
            calls = []

            def dying(b):
                calls.append(b)
                if world.rank == 1 and len(calls) == 7:     # rank 1 dies while drawing step 6's tasks
                    os.kill(os.getpid(), signal.SIGKILL)
                return source(b)
            try:
                _train("maml", 10, checkpoint="killed", every=2, learner=learner, source=dying)
            except CourseError as err:
                result["error"] = str(err)
    result["writes"] = writes
    torch.save(result, out / f"rank{world.rank}.pt")
    if "error" not in result:
        torch.distributed.destroy_process_group()


def _launch(scenario: str, tmp_path: Path, size: int = 2) -> list[subprocess.CompletedProcess]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(size),
               OMP_NUM_THREADS="1", COURSE_THREADS="1", COURSE_CHECKPOINT_DIR=str(tmp_path / "ck"),
               PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, str(HERE / "test_distributed.py"), scenario, str(tmp_path)], cwd=ROOT,
                              env=dict(env, RANK=str(r), LOCAL_RANK=str(r)), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in range(size)]
    done = []
    for p in procs:
        try:
            text, _ = p.communicate(timeout=LIMIT_S)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail(f"the {scenario!r} launch took over {LIMIT_S} s")
        done.append((p.returncode, text))
    return done


def _close(a: dict, b: dict, tol: float) -> float:
    assert a.keys() == b.keys()
    worst = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    assert worst <= tol, f"largest difference {worst:.3g} > {tol:g}"
    return worst


@pytest.fixture(scope="module")
def equal_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("equal")
    done = _launch("equal", tmp)
    assert all(rc == 0 for rc, _ in done), "\n".join(t[-3000:] for _, t in done)
    return tmp, [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(2)]


# ----------------------------------------------------------------------------- the tests
@pytest.mark.parametrize("kind", list(MAKERS))
def test_averaged_meta_gradient_equals_one_process(equal_run, kind):
    _, ranks = equal_run
    one = _gradient(kind, None)
    for r in ranks:
        _close(r["grad"][kind], one, 1e-10)


@pytest.mark.parametrize("kind, key", [("maml", "maml20"), ("protonet", "proto20")])
def test_parameters_after_20_outer_steps_equal_one_process(equal_run, kind, key):
    _, ranks = equal_run
    one = _train(kind, 20)
    for r in ranks:            # batch-norm running statistics (ProtoNet's encoder) included
        _close(r[key]["state"], one["state"], 1e-5)
        assert max(abs(a - b) for a, b in zip(r[key]["loss"], one["loss"])) <= 1e-5


def test_fit_on_2_processes_equals_one_process(equal_run):
    _, ranks = equal_run
    one = _fit()
    for r in ranks:
        _close(r["fit"]["state"], one["state"], 1e-5)
        assert max(abs(a - b) for a, b in zip(r["fit"]["loss"], one["loss"])) <= 1e-6
        assert r["fit"]["acc"] == one["acc"]


def test_checkpoint_written_by_rank_0_only(equal_run):
    tmp, ranks = equal_run
    assert ranks[0]["writes"] == ["maml20"] * 4 + ["half"] * 2 and ranks[1]["writes"] == []
    manifest = json.loads((tmp / "ck" / "maml20.json").read_text())
    assert (manifest["step"], manifest["world_size"], manifest["kind"]) == (20, 2, "meta-training progress")
    assert sorted(p.name for p in (tmp / "ck").iterdir()) == ["half.json", "half.pt", "maml20.json", "maml20.pt"]


def test_resume_with_another_world_size(equal_run, monkeypatch):
    tmp, _ = equal_run
    monkeypatch.setenv("COURSE_CHECKPOINT_DIR", str(tmp / "ck"))
    monkeypatch.delenv("RANK", raising=False)
    resumed = _train("maml", 20, checkpoint="half")       # 2 ranks wrote 10 steps; 1 process does the rest
    _close(resumed["state"], _train("maml", 20)["state"], 1e-5)
    assert len(resumed["loss"]) == 20


def test_a_killed_rank_gives_a_clear_error_and_the_checkpoint_resumes(tmp_path, monkeypatch):
    (rc0, text0), (rc1, _) = _launch("killed", tmp_path)
    assert rc1 == -signal.SIGKILL and rc0 == 0, text0[-3000:]
    error = torch.load(tmp_path / "rank0.pt", weights_only=False)["error"]
    assert "rank 0:" in error and "rank 1 did not" in error and "outer step 6" in error and "resume" in error
    manifest = json.loads((tmp_path / "ck" / "killed.json").read_text())
    assert manifest["step"] == 6                             # the last good checkpoint, intact
    monkeypatch.setenv("COURSE_CHECKPOINT_DIR", str(tmp_path / "ck"))
    resumed = _train("maml", 10, checkpoint="killed", every=2)
    _close(resumed["state"], _train("maml", 10)["state"], 1e-5)


def _train_on_2_and_load(tmp_path, monkeypatch, args: list, name: str, iterations: int):
    """``course train ARGS --iterations N --nproc 2`` into a scratch checkpoint folder (torchrun underneath),
    then ``trained(name)`` from it: ``(learner, info)``, after checking that rank 0 alone printed."""
    from utils.trained import trained
    env = dict(os.environ, OMP_NUM_THREADS="1", COURSE_THREADS="1", COURSE_CHECKPOINT_DIR=str(tmp_path),
               PYTHONPATH=str(ROOT))
    env.pop("RANK", None), env.pop("WORLD_SIZE", None)
    run = subprocess.run([sys.executable, "-m", "utils.course", "train", *args, "--seeds", "0",
                          "--iterations", str(iterations), "--nproc", "2"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=LIMIT_S)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    (line,) = [json.loads(x) for x in run.stdout.splitlines() if x.startswith("{")]   # rank 0 alone prints
    assert (line["name"], line["iterations"], line["world_size"]) == (f"{name}-seed0", iterations, 2)
    monkeypatch.setenv("COURSE_CHECKPOINT_DIR", str(tmp_path))
    learner, info = trained(name, seed=0, device="cpu")
    assert info.how == "shipped" and info.iterations == iterations and info.manifest["world_size"] == 2
    return learner, info


def test_course_train_on_2_processes_gives_the_checkpoint_chapters_load(tmp_path, monkeypatch):
    """``course train ch02-sine --nproc 2`` (torchrun underneath): the checkpoint ``trained()`` loads, equal to
    the first 30 steps of the full-mode run on one process."""
    from utils.sinusoid_lab import make_sine_learner, sine_recipe, train_sine_learner
    learner, info = _train_on_2_and_load(tmp_path, monkeypatch, ["ch02-sine", "--methods", "MAML"], "ch02-sine-maml", 30)
    settings = sine_recipe("MAML")
    one = make_sine_learner(settings, 0)
    curve = train_sine_learner(one, settings, 0, iterations=30)
    _close(learner.model.state_dict(), one.model.state_dict(), 1e-5)
    assert max(abs(a - b) for a, b in zip(info.manifest["curve_head"], curve)) <= 1e-5


def test_course_train_protonet_on_2_processes_gives_the_learner_chapter_02_loads(tmp_path, monkeypatch):
    """``course train ch02-protonet --nproc 2``: the ProtoNet chapter 02 §14 loads is the 2-rank run, which is
    the one-process run: the first step's loss agrees to float rounding (the same tasks, batch norm over the
    whole meta-batch on both ranks). Later steps drift apart by more than rounding (Adam's first steps are
    ±lr whatever a gradient's size, so an entry whose gradient is at rounding level moves either way; the
    meta-gradient of a ProtoNet equals one process's to 1e-10 in float64, test_averaged_meta_gradient_equals_one_process):
    the curves stay within 1e-2 over 10 steps."""
    from utils.protonet_ranks import make_protonet, protonet_recipe, train_protonet
    learner, info = _train_on_2_and_load(tmp_path, monkeypatch, ["ch02-protonet"], "ch02-protonet", 10)
    settings = protonet_recipe()
    one = make_protonet(settings, 0, device="cpu")
    curve = train_protonet(one, settings, 0, iterations=10)
    assert abs(info.manifest["curve_head"][0] - curve[0]) <= 1e-5
    assert max(abs(a - b) for a, b in zip(info.manifest["curve_head"], curve)) <= 1e-2
    _close(learner.model.state_dict(), one.model.state_dict(), 1e-2)


def _sine_learner():
    return _sine()[0]


def _sine_tasks():
    return _sine()[1]


def test_run_ranks_measures_what_is_sent():
    """``run_ranks`` (what chapter 02 and ``bench distributed`` launch with): each outer step sends one
    gradient the size of the model (plus loss, accuracy, stop flag), and the result is one process's."""
    from functools import partial
    from utils.distributed import run_ranks
    from utils.distributed_lab import measure_meta_train
    target = partial(measure_meta_train, make=_sine_learner, make_source=_sine_tasks, steps=5, meta_batch=4, warmup=2)
    ranks = run_ranks(target, 2, timeout_s=30)
    one = target(World())
    assert ranks[0]["sent_per_step"] == one["parameters"] + 3 == (1 * 16 + 16) + (16 * 16 + 16) + (16 + 1) + 3
    assert one["sent_per_step"] == 0 and one["comm_share"] == 0 and 0 < ranks[0]["comm_share"] < 1
    for r in ranks:
        _close(r["state"], one["state"], 1e-5)


def test_wrong_launches_say_what_to_do():
    with pytest.raises(CourseError, match="WORLD_SIZE: expected at least 1"):
        world_from_env({"RANK": "0", "WORLD_SIZE": "0"})
    with pytest.raises(CourseError, match="RANK: expected 0 .. 1"):
        world_from_env({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(CourseError, match="meta_batch: expected a multiple of the 3 ranks"):
        World(rank=0, size=3).share(8)
    with pytest.raises(CourseError, match="MASTER_ADDR and MASTER_PORT"):
        init_world("gloo", env={"RANK": "0", "WORLD_SIZE": "2"})
    if not torch.cuda.is_available():
        with pytest.raises(CourseError, match="backend='nccl': expected a CUDA GPU"):
            init_world("nccl", env={"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"})
    assert world_from_env({}) is None and World().share(8) == slice(0, 8)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    worker(sys.argv[1], sys.argv[2])
