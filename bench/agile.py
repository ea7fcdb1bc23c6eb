"""Benchmark: teaching a label from reviews (issue 27), on the random-weight model.

Generates 10-s scenes with known truth: five kinds of sound (tone, noise band, harmonic
stack, chirp, click train) at random times over coloured background noise, one window
each, encoded once by the random-weight OpenFLAM (built under bench/.cache, the
embeddings cached there too). The text-only detector is at chance on random weights, so
the probe (sonotag_core.domain.probe) does the work. Scenes are split into a pool (what
the user reviews) and held-out scenes (what is scored).

A review is one moment the truth answers: the run of frames with the same truth around a
picked frame (the whole event when it is the label; up to 7 frames, ~2.2 s, when it is
not). Both strategies start from the same one "added" example event (a user marks one
sound the model missed), and both add the same weak negatives (unreviewed pool frames,
weight ``WEAK_NEGATIVE_WEIGHT``):

* random: each next review is a uniformly random unreviewed pool frame;
* Review next: the pool ranked by ``margin_ranking`` (closest to the boundary),
  ``spread_out`` over scenes, refit after every verdict up to 10, every 2 up to 20,
  every 5 after.

At each step the probe is refit (``fit_probe``) and its threshold calibrated by
``cross_validate`` (by event) on the reviews; held-out frame AUROC and event F1 are
measured. Event F1: ``detect_events`` (default event parameters, the calibrated
threshold) on each held-out scene's timeline, matched one-to-one to the truth with a
0.5-s onset collar and an offset collar of max(0.5 s, 20 % of the event) -- the frame is
0.3125 s, so DCASE's 200-ms collar would mostly score quantisation.

Then: refit time for 500 examples, re-scoring 100 stored hours (1.15 M float16 frames,
synthesised) and ranking the Review next queue over them. ``--compare`` also prints the
fit comparison (prior-centred L-BFGS at several strengths, scikit-learn from scratch,
scikit-learn with the text's logit as a feature).

Usage: .venv/bin/python bench/agile.py [--pool 64] [--held 24] [--seeds 4] [--compare]
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from sonotag_core.domain import probe as P  # noqa: E402

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
HUB = CACHE / "hub-agile"
SR = 48_000
SCENE_S = 10.0
N = int(SR * SCENE_S)
FRAMES = 32
FRAME_S = 0.3125
KINDS = ("tone", "noise band", "harmonic stack", "chirp", "click train")
SIMPLE = ("tone", "noise band", "harmonic stack")
TEXTS = {
    "tone": "a steady pure tone",
    "noise band": "a hiss of band-limited noise",
    "harmonic stack": "a buzzing harmonic drone",
    "chirp": "a rising chirp",
    "click train": "a train of clicks",
}
STEPS = (0, 2, 5, 10, 20, 50)
N_WEAK = 200  # weak negatives per refit: unreviewed pool frames (~80 % truly negative here)
TARGET_F1 = 0.8


# ---------------------------------------------------------------- scenes with known truth


def _fade(x: np.ndarray, ms: float = 15.0) -> np.ndarray:
    n = min(int(SR * ms / 1000), x.size // 2)
    ramp = np.linspace(0.0, 1.0, n)
    x[:n] *= ramp
    x[x.size - n :] *= ramp[::-1]
    return x


def _band(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    spec[(f < lo) | (f > hi)] = 0
    x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def sound(kind: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """One sound of ``kind``, ``seconds`` long, RMS about 1 (scaled by the scene).

    Each kind is one sound with a small jitter (a 1-kHz beep +-5 %, not any tone): the
    random-weight encoder has no learnt invariance, so to it a 1000-Hz and a 1150-Hz
    tone are different sounds (with 800-1200 Hz tones, margin sampling learnt the
    pitches near its first example and missed the others)."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    if kind == "tone":
        x = np.sqrt(2) * np.sin(2 * np.pi * rng.uniform(950, 1050) * t)
    elif kind == "noise band":
        lo = rng.uniform(2900, 3100)
        x = _band(rng, n, lo, lo + 2000)
    elif kind == "harmonic stack":
        f0 = rng.uniform(190, 210)
        x = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.3)) / k for k in range(1, 11))
        x = x / np.sqrt(np.mean(x**2))
    elif kind == "chirp":
        f_lo, f_hi = rng.uniform(450, 550), rng.uniform(3600, 4400)
        phase = (
            2 * np.pi * f_lo * seconds / np.log(f_hi / f_lo) * ((f_hi / f_lo) ** (t / seconds) - 1)
        )
        x = np.sqrt(2) * np.sin(phase)
    elif kind == "click train":
        x = np.zeros(n)
        period = int(SR / rng.uniform(20, 30))
        click = np.exp(-np.arange(96) / 12.0) * rng.standard_normal(96)
        for start in range(0, n - 96, period):
            x[start : start + 96] += click
        x = x / (np.sqrt(np.mean(x**2)) + 1e-12)
    else:
        raise ValueError(kind)
    return _fade(np.asarray(x, dtype=np.float64))


@dataclass
class Scene:
    audio: np.ndarray  # (N,) float32
    events: list[tuple[str, float, float]]  # (kind, onset_s, offset_s)

    def truth(self, kind: str) -> np.ndarray:
        """(32,) bool: frames at least half covered by an event of ``kind``."""
        out = np.zeros(FRAMES, bool)
        starts = np.arange(FRAMES) * FRAME_S
        for k, on, off in self.events:
            if k == kind:
                cover = np.clip(np.minimum(starts + FRAME_S, off) - np.maximum(starts, on), 0, None)
                out |= cover >= FRAME_S / 2
        return out


def make_scene(rng: np.random.Generator) -> Scene:
    """Coloured noise, then each kind with probability 0.55 (once, sometimes twice) at a
    random free time, 0.8-2.5 s long, 6-16 dB over the background."""
    spec = np.fft.rfft(rng.standard_normal(N)) / np.sqrt(np.maximum(np.fft.rfftfreq(N, 1 / SR), 50))
    bg = np.fft.irfft(spec, N)
    level = rng.uniform(0.01, 0.03)
    audio = bg / np.sqrt(np.mean(bg**2)) * level
    busy: list[tuple[float, float]] = []
    events: list[tuple[str, float, float]] = []
    for kind in KINDS:
        for _ in range(1 + int(rng.random() < 0.25)):
            if rng.random() >= 0.55:
                continue
            for _try in range(20):
                dur = rng.uniform(0.8, 2.5)
                on = rng.uniform(0.0, SCENE_S - dur)
                if all(on + dur + 0.3 < a or on > b + 0.3 for a, b in busy):
                    break
            else:
                continue
            busy.append((on, on + dur))
            x = sound(kind, dur, rng) * level * 10 ** (rng.uniform(6, 16) / 20)
            i = int(on * SR)
            audio[i : i + x.size] += x
            events.append((kind, on, on + x.size / SR))
    return Scene(audio.astype(np.float32), sorted(events, key=lambda e: e[1]))


# ---------------------------------------------------------------- the model


def load():
    from sonotag_core.inference.model import load_model
    from sonotag_core.settings import Settings

    marker = HUB / "READY"
    if not marker.exists():
        from sonotag_core.testing.random_checkpoint import build_random_checkpoint

        print("building the random-weight checkpoint (once) ...", file=sys.stderr)
        build_random_checkpoint(HUB, text_layers=2, vocab_size=1000)
        marker.write_text("ok")
    settings = Settings(model_dir=str(HUB), data_dir=str(CACHE / "data-agile"), threads=2)
    return load_model(settings.validated())


def encode(model, scenes: list[Scene], key: str) -> np.ndarray:
    """(scenes, 32, 512) float32 frame embeddings, cached under bench/.cache."""
    from sonotag_core.domain.windows import iter_windows
    from sonotag_core.inference.encode import encode_windows

    path = CACHE / f"agile-{key}.npy"
    if path.exists():
        return np.load(path)
    t0 = time.perf_counter()
    feats = []
    for s in scenes:  # one 10-s scene is exactly one window
        for _starts, f in encode_windows(model, iter_windows([s.audio], N), batch_size=4):
            feats.append(f[0])
    out = np.stack(feats)
    print(f"encoded {len(scenes)} scenes in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


# ---------------------------------------------------------------- scoring held-out scenes


def event_f1(probe: P.Probe, threshold: float, feats: np.ndarray, scenes: list[Scene], kind: str):
    from sonotag_core.domain.events import EventParams, detect_events
    from sonotag_core.domain.timeline import Timeline

    params = EventParams(threshold=float(min(max(threshold, 1e-4), 0.9999)))
    scores = probe.scores(feats, unit=True)  # (scenes, 32)
    tp = n_det = n_truth = 0
    for s, row in zip(scenes, scores, strict=True):
        det = detect_events(Timeline((kind,), row[None, :].astype(np.float32), SCENE_S), params)
        truth = [(on, off) for k, on, off in s.events if k == kind]
        n_det += len(det)
        n_truth += len(truth)
        used: set[int] = set()
        for on, off in zip(det["onset_s"], det["offset_s"], strict=True):
            for j, (t_on, t_off) in enumerate(truth):
                collar = max(0.5, 0.2 * (t_off - t_on))
                if j not in used and abs(on - t_on) <= 0.5 and abs(off - t_off) <= collar:
                    used.add(j)
                    tp += 1
                    break
    return 2 * tp / (n_det + n_truth) if n_det + n_truth else 1.0


# ---------------------------------------------------------------- the review loop


def review_unit(truth: np.ndarray, frame: int) -> np.ndarray:
    """Frames one verdict covers: the same-truth run around ``frame`` (a negative run
    capped to +-3 frames)."""
    value = truth[frame]
    lo = frame
    while lo > 0 and truth[lo - 1] == value and (value or frame - lo < 3):
        lo -= 1
    hi = frame
    while hi < truth.size - 1 and truth[hi + 1] == value and (value or hi - frame < 3):
        hi += 1
    return np.arange(lo, hi + 1)


class Loop:
    """Reviews of one kind on the pool, by one strategy."""

    def __init__(self, prior, pool, truth, seed: int, strategy: str, strength: float) -> None:
        self.prior, self.pool, self.truth = prior, pool, truth  # (S,32,512), (S,32)
        self.flat = pool.reshape(-1, pool.shape[-1])
        self.flat_truth = truth.reshape(-1)
        self.rng = np.random.default_rng(seed)
        self.strategy, self.strength = strategy, strength
        self.reviewed = np.zeros(self.flat_truth.size, bool)
        self.group = np.full(self.flat_truth.size, -1)
        self.n_reviews = 0
        self.probe = prior
        self.threshold = prior.even_odds
        self.queue: list[int] = []
        positives = np.flatnonzero(self.flat_truth)  # the seed: one "added" example event
        self.verdict(int(self.rng.choice(positives)))

    def verdict(self, index: int) -> None:
        scene, frame = divmod(index, FRAMES)
        unit = scene * FRAMES + review_unit(self.truth[scene], frame)
        unit = unit[~self.reviewed[unit]]
        self.reviewed[unit] = True
        self.group[unit] = self.n_reviews
        self.n_reviews += 1

    def refit(self) -> None:
        idx = np.flatnonzero(self.reviewed)
        weak = self.rng.choice(np.flatnonzero(~self.reviewed), N_WEAK, replace=False)
        X = self.flat[np.r_[idx, weak]]
        y = np.r_[self.flat_truth[idx], np.zeros(N_WEAK, bool)].astype(float)
        w = np.r_[np.ones(idx.size), np.full(N_WEAK, P.WEAK_NEGATIVE_WEIGHT)]
        groups = np.r_[self.group[idx], -1 - np.arange(N_WEAK)]
        is_weak = np.r_[np.zeros(idx.size, bool), np.ones(N_WEAK, bool)]
        self.probe = P.fit_probe(self.prior, X, y, sample_weight=w, strength=self.strength)
        cv = P.cross_validate(
            self.prior, X, y, groups, sample_weight=w, weak=is_weak, strength=self.strength
        )
        self.threshold = self.probe.even_odds if math.isnan(cv.threshold) else cv.threshold
        self.queue = []
        if self.strategy == "queue":
            scores = self.probe.scores(self.flat, unit=True)
            order = P.margin_ranking(
                scores, self.threshold, prior_bias=self.probe.prior_bias, exclude=self.reviewed
            )
            picks = P.spread_out(
                order,
                np.arange(self.flat_truth.size) // FRAMES,
                np.arange(self.flat_truth.size) % FRAMES,
                count=10,
                min_gap=4,
            )
            self.queue = [int(i) for i in picks]

    def next_review(self) -> None:
        if self.strategy == "queue":
            while self.queue and self.reviewed[self.queue[0]]:
                self.queue.pop(0)
            if self.queue:
                self.verdict(self.queue.pop(0))
                return
        self.verdict(int(self.rng.choice(np.flatnonzero(~self.reviewed))))


def schedule(n: int) -> int:
    """Verdicts between refits: 1 up to 10 reviews, 2 up to 20, 5 after."""
    return 1 if n < 10 else 2 if n < 20 else 5


def run_loop(prior, pool, truth, held, held_truth, held_scenes, kind, seed, strategy, strength):
    loop = Loop(prior, pool, truth, seed, strategy, strength)
    flat_held = held.reshape(-1, held.shape[-1])
    curve: dict[int, tuple[float, float]] = {}
    text_scores = prior.scores(flat_held, unit=True)
    curve[0] = (
        P.auroc(text_scores, held_truth.reshape(-1)),
        event_f1(prior, prior.even_odds, held, held_scenes, kind),
    )
    reached = None
    while loop.n_reviews <= max(STEPS):
        loop.refit()
        n = loop.n_reviews
        a = P.auroc(loop.probe.scores(flat_held, unit=True), held_truth.reshape(-1))
        f = event_f1(loop.probe, loop.threshold, held, held_scenes, kind)
        curve[n] = (a, f)
        if reached is None and f >= TARGET_F1:
            reached = n
        if n >= max(STEPS):
            break
        for _ in range(min(schedule(n), max(STEPS) - n)):
            loop.next_review()
    return curve, reached


def at_step(curve: dict[int, tuple[float, float]], step: int) -> tuple[float, float]:
    """The figures with ``step`` reviews (the last refit at or before it)."""
    return curve[max(n for n in curve if n <= step)]


# ---------------------------------------------------------------- fit comparison


def compare_fits(priors, pool, truths, held, held_truths, seeds: int) -> None:
    """Held-out frame AUROC of each fit from the same balanced random examples, from
    the random model's text (which knows nothing) and from a planted text that does."""
    from sklearn.linear_model import LogisticRegression

    def sk_scratch(C):
        def fit(prior, X, y, w):
            m = LogisticRegression(C=C, max_iter=2000).fit(P.normalised(X), y, sample_weight=w)
            return lambda F: m.decision_function(P.normalised(F))

        return fit

    def sk_prior_feature(C):
        def fit(prior, X, y, w):
            # the text's logit as a 513th feature, scaled up so its coefficient is all
            # but unpenalised: logit = c * text logit + v . x + b, v pulled toward 0
            z = lambda F: prior.logits(F)[:, None] * 10.0  # noqa: E731
            Xa = np.hstack([P.normalised(X), z(X)])
            m = LogisticRegression(C=C, max_iter=2000).fit(Xa, y, sample_weight=w)
            return lambda F: m.decision_function(np.hstack([P.normalised(F), z(F)]))

        return fit

    def centred(strength):
        def fit(prior, X, y, w):
            return P.fit_probe(prior, X, y, sample_weight=w, strength=strength).logits

        return fit

    methods = {
        "(a) prior-centred s=0.001": centred(0.001),
        "(a) prior-centred s=0.01": centred(0.01),
        "(a) prior-centred s=0.1": centred(0.1),
        "(b) sklearn from scratch C=1": sk_scratch(1.0),
        "(b) sklearn from scratch C=100": sk_scratch(100.0),
        "(c) sklearn + text logit C=100": sk_prior_feature(100.0),
    }
    counts = (2, 5, 10, 20)
    flat = pool.reshape(-1, 512)
    planted = {}  # a text that knows the sound: the pool's mean yes - mean no, scaled
    for kind in priors:
        ft = truths[kind].reshape(-1)
        d = P.normalised(flat[ft].mean(0) - flat[~ft].mean(0))
        mid = 0.5 * (flat[ft] @ d).mean() + 0.5 * (flat[~ft] @ d).mean()
        scale = 4.0 / (flat @ d).std()
        planted[kind] = P.Probe(scale * d, -scale * mid + priors[kind].bias, priors[kind].bias)
    print(
        "\nfit comparison: held-out frame AUROC from balanced random example events (half "
        f"yes) + {N_WEAK} weak negatives; mean of {seeds} seeds"
    )
    for text_name, texts in (("random model's text", priors), ("planted knowing text", planted)):
        print(
            f"from the {text_name}: "
            + ", ".join(
                f"{k} {P.auroc(t.logits(held.reshape(-1, 512)), held_truths[k].reshape(-1)):.3f}"
                for k, t in texts.items()
            )
            + " with no examples"
        )
        print(f"{'method':32s} {'kind':15s} " + " ".join(f"{c:>6d}" for c in counts) + "  fit ms")
        for name, method in methods.items():
            for kind in texts:
                prior, truth, ht = texts[kind], truths[kind], held_truths[kind]
                row, times = [], []
                for c in counts:
                    vals = []
                    for seed in range(seeds):
                        rng = np.random.default_rng(100 + seed)
                        X, y, w = _balanced(rng, flat, truth.reshape(-1), truth, c)
                        t0 = time.perf_counter()
                        f = method(prior, X, y, w)
                        times.append(time.perf_counter() - t0)
                        vals.append(P.auroc(f(held.reshape(-1, 512)), ht.reshape(-1)))
                    row.append(float(np.mean(vals)))
                print(
                    f"{name:32s} {kind:15s} "
                    + " ".join(f"{v:6.3f}" for v in row)
                    + f"  {1000 * np.mean(times):5.0f}"
                )


def _balanced(rng, flat, flat_truth, truth, count):
    """``count`` example events, half yes (whole events) and half no (7-frame runs),
    plus weak negatives; (X, y, weight)."""
    idx: list[np.ndarray] = []
    pos = np.flatnonzero(flat_truth)
    neg = np.flatnonzero(~flat_truth)
    for i in range(count):
        pick = int(rng.choice(pos if i % 2 == 0 else neg))
        s, f = divmod(pick, FRAMES)
        idx.append(s * FRAMES + review_unit(truth[s], f))
    chosen = np.unique(np.concatenate(idx))
    rest = np.setdiff1d(np.arange(flat_truth.size), chosen)
    weak = rng.choice(rest, N_WEAK, replace=False)
    X = flat[np.r_[chosen, weak]]
    y = np.r_[flat_truth[chosen], np.zeros(N_WEAK, bool)].astype(float)
    w = np.r_[np.ones(chosen.size), np.full(N_WEAK, P.WEAK_NEGATIVE_WEIGHT)]
    return X, y, w


# ---------------------------------------------------------------- speed at library size


def speed(prior: P.Probe, pool_feats: np.ndarray) -> dict[str, float]:
    rng = np.random.default_rng(7)
    # refit: 500 examples (a quarter yes) from the pool's real frames, jittered
    base = pool_feats.reshape(-1, 512)
    X = base[rng.integers(0, base.shape[0], 500)] + 0.01 * rng.standard_normal((500, 512))
    y = (rng.random(500) < 0.25).astype(float)
    y[: X.shape[0] // 4] = 1.0
    w = np.where(rng.random(500) < 0.4, P.WEAK_NEGATIVE_WEIGHT, 1.0)
    refits = []
    for _ in range(3):
        t0 = time.perf_counter()
        P.fit_probe(prior, X, y, sample_weight=w)
        refits.append(time.perf_counter() - t0)
    # 100 stored hours: 100 * 3600 / 0.3125 frames of unit-norm float16 (synthesised)
    n = int(100 * 3600 / FRAME_S)
    frames = np.empty((n, 512), np.float16)
    for i in range(0, n, 65536):
        block = rng.standard_normal((min(65536, n - i), 512), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        frames[i : i + block.shape[0]] = block
    probe = P.fit_probe(prior, X, y, sample_weight=w)
    t0 = time.perf_counter()
    exact = probe.scores(frames, unit=True)  # the domain's numpy path (float32 blocks)
    rescore_numpy = time.perf_counter() - t0
    from sonotag_core.inference.scoring import half_cosines

    t0 = time.perf_counter()  # the text search's float16 cosines, then the probe's map
    unit_w, norm = probe.direction()
    scores = probe.probability(norm * half_cosines(frames, unit_w).astype(np.float64) + probe.bias)
    rescore = time.perf_counter() - t0
    half_diff = float(np.abs(scores - exact).max())
    reviewed = np.zeros(n, bool)
    reviewed[rng.integers(0, n, 500)] = True
    sources = np.arange(n) // 11_520  # one stored hour per audio
    t0 = time.perf_counter()
    order = P.margin_ranking(scores, 0.5, prior_bias=probe.prior_bias, exclude=reviewed, top=2000)
    P.spread_out(order, sources, np.arange(n) % 11_520, count=50, per_source=5)
    queue = time.perf_counter() - t0
    t0 = time.perf_counter()
    probe.scores(frames)  # the same with normalisation (frames not known to be unit)
    rescore_norm = time.perf_counter() - t0
    return {
        "refit_s_500": min(refits),
        "rescore_100h_s": rescore,
        "rescore_100h_numpy_s": rescore_numpy,
        "rescore_100h_normalising_s": rescore_norm,
        "half_max_diff": half_diff,
        "queue_100h_s": queue,
        "frames_100h": n,
    }


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pool", type=int, default=64, help="scenes the user reviews")
    parser.add_argument("--held", type=int, default=24, help="held-out scenes scored")
    parser.add_argument("--seeds", type=int, default=4, help="repeats of each loop")
    parser.add_argument("--strength", type=float, default=P.DEFAULT_STRENGTH)
    parser.add_argument("--compare", action="store_true", help="also compare fits")
    parser.add_argument("--compare-only", action="store_true", help="only compare fits")
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()
    t_start = time.perf_counter()
    from sonotag_core.inference.scoring import TextCache, frame_probabilities

    rng = np.random.default_rng(2027)
    scenes = [make_scene(rng) for _ in range(args.pool + args.held)]
    key = hashlib.sha256(f"v2-{args.pool}-{args.held}-2027".encode()).hexdigest()[:12]
    model = load()
    feats = encode(model, scenes, key)
    pool, held = feats[: args.pool], feats[args.pool :]
    pool_scenes, held_scenes = scenes[: args.pool], scenes[args.pool :]
    kinds = [k for k in args.kinds.split(",") if k]
    enc = TextCache(model).encode([TEXTS[k] for k in kinds])
    priors = {
        k: P.text_probe(enc.features[i], float(enc.scale[i]), float(enc.bias[i]))
        for i, k in enumerate(kinds)
    }
    # no reviews: the probe is the text-only detector (openflam's own map on the same frames)
    reference = frame_probabilities(held, enc)  # (scenes, labels, 32)
    no_review = max(
        float(
            np.abs(
                P.fit_probe(priors[k], np.zeros((0, 512)), np.zeros(0)).scores(held)
                - reference[:, i, :]
            ).max()
        )
        for i, k in enumerate(kinds)
    )
    truths = {k: np.stack([s.truth(k) for s in pool_scenes]) for k in kinds}
    held_truths = {k: np.stack([s.truth(k) for s in held_scenes]) for k in kinds}
    print(
        f"{len(scenes)} scenes of {SCENE_S:.0f} s ({args.pool} pool, {args.held} held out); "
        "events in the pool / held out: "
        + ", ".join(
            f"{k} {sum(e[0] == k for s in pool_scenes for e in s.events)}/"
            f"{sum(e[0] == k for s in held_scenes for e in s.events)}"
            for k in kinds
        )
    )
    print(
        f"text alpha(t) {np.round(enc.scale, 2).tolist()}, beta(t) {np.round(enc.bias, 2).tolist()}"
    )
    print(f"no reviews vs openflam's map: max |diff| {no_review:.2e}")
    if args.compare or args.compare_only:
        compare_fits(priors, pool, truths, held, held_truths, args.seeds)
        if args.compare_only:
            return

    results: dict[str, dict[str, dict[int, tuple[float, float]]]] = {}
    needed: dict[str, dict[str, list[int | None]]] = {}
    for kind in kinds:
        for strategy in ("random", "queue"):
            curves = []
            for seed in range(args.seeds):
                curve, reached = run_loop(
                    priors[kind],
                    pool,
                    truths[kind],
                    held,
                    held_truths[kind],
                    held_scenes,
                    kind,
                    seed,
                    strategy,
                    args.strength,
                )
                curves.append(curve)
                needed.setdefault(kind, {}).setdefault(strategy, []).append(reached)
            results.setdefault(kind, {})[strategy] = {
                s: tuple(np.mean([at_step(c, s) for c in curves], axis=0)) for s in STEPS
            }
        print(f"  {kind}: done ({time.perf_counter() - t_start:.0f} s)", file=sys.stderr)

    print(
        f"\nheld-out frame AUROC / event F1 by reviewed events (mean of {args.seeds} seeds; "
        "text only = 0 reviews)"
    )
    print(f"{'kind':15s} {'strategy':8s} " + " ".join(f"{s:>11d}" for s in STEPS))
    for kind in kinds:
        for strategy in ("random", "queue"):
            row = results[kind][strategy]
            print(
                f"{kind:15s} {strategy:8s} "
                + " ".join(f"{row[s][0]:.3f}/{row[s][1]:.2f}" for s in STEPS)
            )
    censored = max(STEPS) + 1
    print(f"\nreviews to reach event F1 {TARGET_F1} (per seed; '-' = not within {max(STEPS)}):")
    tot = {"random": 0, "queue": 0}
    for kind in kinds:
        pairs = list(zip(needed[kind]["random"], needed[kind]["queue"], strict=True))
        for r, q in pairs:
            if r is not None:  # where random choice gets there; Review next's misses count 51
                tot["random"] += r
                tot["queue"] += censored if q is None else q
        print(
            f"  {kind:15s} "
            + "; ".join(
                f"{strategy} "
                + ",".join("-" if v is None else str(v) for v in needed[kind][strategy])
                for strategy in ("random", "queue")
            )
        )
    ratio = tot["queue"] / tot["random"] if tot["random"] else math.nan
    print(
        f"  over the runs random choice completes: Review next {tot['queue']} reviews vs "
        f"random {tot['random']} -> {ratio:.2f}"
    )

    prior0 = priors[kinds[0]]
    sp = speed(prior0, pool)
    print(
        f"\nrefit, 500 examples: {sp['refit_s_500']:.3f} s; 100 stored hours "
        f"({sp['frames_100h']} float16 frames): re-score {sp['rescore_100h_s']:.2f} s with "
        f"the search's float16 cosines (max diff {sp['half_max_diff']:.1e} from the numpy "
        f"path), {sp['rescore_100h_numpy_s']:.2f} s by Probe.scores in numpy "
        f"({sp['rescore_100h_normalising_s']:.2f} s normalising too); Review next queue "
        f"{sp['queue_100h_s']:.2f} s"
    )
    simple = [k for k in SIMPLE if k in kinds]
    auroc10 = (
        min(min(results[k][s][10][0] for s in ("random", "queue")) for k in simple)
        if simple
        else math.nan
    )
    total_s = time.perf_counter() - t_start
    print(f"whole bench {total_s:.0f} s")
    print(
        json.dumps(
            {
                "auroc_at_10": round(auroc10, 4),
                "auroc_at_10_random": {k: round(results[k]["random"][10][0], 4) for k in kinds},
                "auroc_at_10_queue": {k: round(results[k]["queue"][10][0], 4) for k in kinds},
                "f1_at_10_random": {k: round(results[k]["random"][10][1], 3) for k in kinds},
                "f1_at_10_queue": {k: round(results[k]["queue"][10][1], 3) for k in kinds},
                "queue_vs_random_reviews": round(ratio, 3),
                "refit_s_500": round(sp["refit_s_500"], 4),
                "rescore_100h_s": round(sp["rescore_100h_s"], 3),
                "rescore_100h_numpy_s": round(sp["rescore_100h_numpy_s"], 3),
                "queue_100h_s": round(sp["queue_100h_s"], 3),
                "no_review_max_diff": float(f"{no_review:.3g}"),
                "strength": args.strength,
                "seeds": args.seeds,
                "bench_s": round(total_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
