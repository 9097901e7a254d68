"""``bench maml-throughput``'s contenders: they run, and they are always stopped."""
import os

import pytest

from utils.course.bench_maml import _load_higher, _load_learn2learn, busy_processes


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is not running
        return f.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc (Linux)")
def test_busy_processes_are_stopped_even_on_error():
    with busy_processes(2, 60) as procs:
        pids = [p.pid for p in procs]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
    assert not any(_alive(p) for p in pids)
    with pytest.raises(KeyboardInterrupt):
        with busy_processes(1, 60) as procs:
            pid = procs[0].pid
            raise KeyboardInterrupt
    assert not _alive(pid)
    with busy_processes(0, 60) as procs:
        assert procs == []


def test_peer_loaders_answer_none_or_a_usable_object():
    l2l = _load_learn2learn()
    assert l2l is None or hasattr(l2l, "clone")
    higher = _load_higher()
    assert higher is None or hasattr(higher, "innerloop_ctx")
