"""ExactPath: the int8 index on MLX's CPU without measuring; on a (fake) GPU, a background copy, a few
timed probes on both paths, and the exact scan only where it measured faster at equal or better recall."""

from __future__ import annotations

import numpy as np

from app.core.exact_index import ExactPath, PathTiming, StoreState, choose_path
from app.core.vector_index import IndexConfig, VectorIndex
from app.core.vectors import quantize_int8
from tests.test_vector_index import structured


def index_of(x: np.ndarray, ids: np.ndarray) -> VectorIndex:
    index = VectorIndex(x.shape[1], IndexConfig(exhaustive_below=1000, prefix_dims=16, first_pass=256))
    q8, s8 = quantize_int8(x)
    index.add(ids, q8, s8)
    return index


class Spy:
    """Counts calls of the injected pieces; a synchronous `start` runs the background build inline."""

    def __init__(self, x: np.ndarray, ids: np.ndarray, times: dict[str, float]) -> None:
        self.x, self.ids, self.times = x, ids, times
        self.loads: list[int] = []
        self.starts = 0
        self.timed: list[str] = []

    def load(self, upto: int) -> tuple[np.ndarray, np.ndarray]:
        self.loads.append(upto)
        return self.ids, self.x.astype(np.float16)

    def start(self, work) -> None:
        self.starts += 1
        work()

    def timer(self, path, run):
        self.timed.append(path)
        return run(), self.times[path]


def path_for(spy: Spy, device: str) -> ExactPath:
    return ExactPath(spy.x.shape[1], spy.load, device=lambda: device, start=spy.start, timer=spy.timer)


def test_choose_path_keeps_the_index_on_a_cpu_and_follows_the_measurements_on_a_gpu():
    index = PathTiming(0.012, 0.995)
    assert not choose_path("cpu").exact  # never measured there
    assert not choose_path("cpu", PathTiming(0.001, 1.0), index).exact
    assert not choose_path("gpu").exact  # not measured yet
    assert choose_path("gpu", PathTiming(0.004, 1.0), index).exact
    assert not choose_path("gpu", PathTiming(0.050, 1.0), index).exact
    assert not choose_path("gpu", PathTiming(0.004, 0.9), index).exact


def test_on_the_cpu_device_nothing_is_copied_or_timed():
    x, queries = structured(3000)
    ids = np.arange(1, 3001)
    spy = Spy(x, ids, {"exact": 0.001, "index": 0.010})
    path, index, state = path_for(spy, "cpu"), index_of(x, ids), StoreState(3000, 0)
    for q in queries[:5]:
        got = path.candidates(index, q, 64, None, state)
        assert got.ids.tolist() == index.search(q, 64).ids.tolist()
        path.answered(state)
    assert spy.loads == [] and spy.starts == 0 and spy.timed == []
    assert path.choice is not None and not path.choice.exact


def test_on_a_gpu_the_copy_is_built_after_the_first_answer_probed_then_used_where_faster():
    x, queries = structured(3000, seed=1)
    ids = np.arange(1, 3001)
    spy = Spy(x, ids, {"exact": 0.004, "index": 0.012})
    path, index, state = path_for(spy, "gpu"), index_of(x, ids), StoreState(3000, 7)
    path.candidates(index, queries[0], 64, None, state)  # the first answer: index only, nothing read yet
    assert spy.loads == [] and spy.timed == []
    path.answered(state)
    assert spy.loads == [3000] and spy.starts == 1 and path.choice is None
    for q in queries[1:4]:  # three probes run both paths
        path.candidates(index, q, 64, None, state)
        path.answered(state)
    assert spy.timed == ["index", "exact"] * 3
    assert path.choice is not None and path.choice.exact
    assert path.choice.index_timing is not None and path.choice.index_timing.recall >= 0.9
    real = index.search
    index.search = lambda *a: (_ for _ in ()).throw(AssertionError("index used after choosing exact"))
    got = path.candidates(index, queries[5], 10, None, state)
    index.search = real
    f16 = x.astype(np.float16).astype(np.float32)
    truth = ids[np.argsort(-(f16 @ queries[5]), kind="stable")[:10]]
    assert sorted(got.ids.tolist()) == sorted(truth.tolist())
    # The store gains a row: the copy is stale, the index answers, and a new copy is read (no new probes).
    grown = StoreState(3001, 7)
    assert (
        path.candidates(index, queries[6], 64, None, grown).ids.tolist() == real(queries[6], 64).ids.tolist()
    )
    path.answered(grown)
    assert spy.loads == [3000, 3001] and spy.timed == ["index", "exact"] * 3
    index.search = lambda *a: (_ for _ in ()).throw(AssertionError("index used after choosing exact"))
    path.candidates(index, queries[7], 64, None, grown)


def test_on_a_gpu_where_the_index_measures_faster_the_copy_is_dropped_and_never_rebuilt():
    x, queries = structured(3000, seed=2)
    ids = np.arange(1, 3001)
    spy = Spy(x, ids, {"exact": 0.030, "index": 0.012})
    path, index, state = path_for(spy, "gpu"), index_of(x, ids), StoreState(3000, 0)
    for q in queries[:6]:
        path.candidates(index, q, 64, None, state)
        path.answered(state)
    assert path.choice is not None and not path.choice.exact
    assert path._ready is None and spy.loads == [3000]
    path.answered(StoreState(3100, 1))
    assert spy.loads == [3000]


def test_a_failed_background_copy_keeps_the_index_path_and_says_why():
    x, queries = structured(500)
    ids = np.arange(1, 501)

    def broken(upto):
        raise OSError("disk went away")

    path = ExactPath(64, broken, device=lambda: "gpu", start=lambda work: work())
    index, state = index_of(x, ids), StoreState(500, 0)
    path.candidates(index, queries[0], 10, None, state)
    path.answered(state)
    assert path.choice is not None and not path.choice.exact and "disk went away" in path.choice.reason
    assert (
        path.candidates(index, queries[1], 10, None, state).ids.tolist()
        == index.search(queries[1], 10).ids.tolist()
    )


def test_the_engine_on_either_path_returns_the_brute_force_top_k(tmp_path):
    from app.core.search import SearchEngine
    from app.core.store import Store
    from tests.test_search import D, FakeEmbedder, add_images, unit

    rng = np.random.default_rng(5)
    vecs = unit(rng.standard_normal((1500, D)))
    db = tmp_path / "lib.sqlite"
    with Store(db) as s:
        ids = np.array(add_images(s, vecs))
    cfg = IndexConfig(exhaustive_below=200, prefix_dims=8, first_pass=32)
    model = FakeEmbedder().model_id

    def load(upto):
        with Store(db, read_only=True) as s:
            return s.f16_rows(model, upto)

    times = {"exact": 0.001, "index": 0.010}
    exact = ExactPath(
        D, load, device=lambda: "gpu", start=lambda w: w(), timer=lambda p, run: (run(), times[p])
    )
    engines = {
        "index": SearchEngine(Store(db), FakeEmbedder(), config=cfg, persist=False),
        "exact": SearchEngine(Store(db), FakeEmbedder(), config=cfg, persist=False, exact=exact),
    }
    f16 = vecs.astype(np.float16).astype(np.float32)
    for q in unit(rng.standard_normal((8, D))):
        truth = ids[np.argsort(-(f16 @ q), kind="stable")[:10]].tolist()
        for engine in engines.values():
            assert [h.image_id for h in engine.search_vector(q, 10).hits] == truth
    assert exact.choice is not None and exact.choice.exact  # the later queries ran on the exact path
