"""Stage 2 for voice: diarization (who speaks when) and each speaker's female / male decision.

Audio is cut into fixed-length windows that lie inside the voice segments found by stage 1; every window gets one
L2-normalised 256-d resemblyzer embedding (:mod:`dramapic.analysis.embeddings`). The windows are then

* clustered (agglomerative, average linkage, cosine distance) into speakers,
* re-segmented: each voice segment is split where the speaker changes (Viterbi over the windows' similarity to
  the speaker centroids, refined with extra windows around every change), and
* scored female / male by a small logistic-regression model over the embedding and the window's pitch
  features (:class:`GenderClassifier`, :mod:`dramapic.analysis.pitch`) trained by :mod:`dramapic.lab.train_gender`
  on windows computed through exactly the same feature path; a speaker's gender is decided on all of its windows
  together when it is confident and its windows agree, otherwise each turn on its own windows, and below the
  model's confidence threshold the gender stays None ("unknown", :func:`~dramapic.analysis.gender.decide_turns`).

:func:`label_voice_segments` returns, per voice segment, the :class:`VoiceTurn` s that cover it and one
:class:`~dramapic.result.SpeakerSummary` per speaker; :func:`diarize_windows` is the same on windows already
embedded; :func:`to_annotation` turns segments or turns into a ``pyannote.core.Annotation``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..config import SpeakersConfig
from ..errors import ModelError
from ..progress import ProgressHook, silent_hook
from ..result import SpeakerSummary
from .clustering import cluster_windows, fold_distance, stopping_distance
from .embeddings import EMBEDDING_DIM, MIN_REGION_S, AudioSource, SpeakerEncoder, l2
from .gender import GenderClassifier, decide_turns
from .pitch import window_pitch_features
from .smoothing import best_path, runs_of

log = logging.getLogger(__name__)

_P_CLIP = 1e-6              # probabilities given to diarize_windows are clipped before they become logits


class SpeakerProjection:
    """A linear map of speaker embeddings into a space where speakers separate better (an LDA trained by speaker).

    resemblyzer's space mixes who speaks with how: one actor's acted emotions lie as far apart as two different
    readers. Linear discriminant analysis fitted on many utterances per training speaker (emotions, music and
    noise underneath) keeps the directions that separate speakers and drops those that vary within one, so the
    clustering and re-segmentation run on :meth:`transform` of the embeddings. The gender model keeps the raw ones.

    The parameters live in an ``.npz`` of plain arrays (``mean`` (256,), ``components`` (256, d); since version 2
    also ``cluster_threshold`` () -- the calibrated stopping distance of the clustering in this space, used when
    ``speakers.cluster_threshold`` is null -- and ``calibration`` (2,)); see
    :func:`dramapic.lab.train_speakers.train_speaker_projection`.
    """

    def __init__(self, *, mean: np.ndarray, components: np.ndarray, cluster_threshold: float | None = None,
                 calibration: np.ndarray | None = None, model_info: dict[str, Any] | None = None) -> None:
        mean = np.asarray(mean, dtype=np.float64).ravel()
        components = np.asarray(components, dtype=np.float64)
        if mean.shape != (EMBEDDING_DIM,) or components.ndim != 2 or components.shape[0] != EMBEDDING_DIM \
                or not 1 <= components.shape[1] <= EMBEDDING_DIM:
            raise ModelError(f"speaker projection has wrong shapes: mean {mean.shape}, components {components.shape}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(components))):
            raise ModelError("speaker projection holds non-finite parameters")
        if cluster_threshold is not None and not 0 < float(cluster_threshold) < 2:
            raise ModelError(f"speaker projection's cluster_threshold must be in (0, 2), got {cluster_threshold}")
        if calibration is not None and (np.shape(calibration) != (2,) or not np.all(np.isfinite(calibration))):
            raise ModelError("speaker projection's calibration must hold two finite numbers (a, b)")
        self._mean, self._components = mean, components
        # the calibrated average-linkage stopping distance in this space (None: a version-1 file without one)
        self.cluster_threshold = None if cluster_threshold is None else float(cluster_threshold)
        # (a, b): P(same speaker) = sigmoid(a + b * distance) of two clusters of windows
        self.calibration = None if calibration is None else np.asarray(calibration, dtype=np.float64)
        self.model_info: dict[str, Any] = dict(model_info or {})

    @property
    def dim(self) -> int:
        return int(self._components.shape[1])

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the ``.npz`` format (what :meth:`from_manifest` reads)."""
        arrays = {"mean": self._mean, "components": self._components}
        if self.cluster_threshold is not None:
            arrays["cluster_threshold"] = np.float64(self.cluster_threshold)
        if self.calibration is not None:
            arrays["calibration"] = self.calibration
        return arrays

    @classmethod
    def from_manifest(cls, manifest, name: str = "speaker-lda") -> "SpeakerProjection":
        """Load projection ``name`` listed in ``manifest`` (sha256-verified).

        Raises
        ------
        ModelError
            Not listed, file missing or altered, or malformed.
        """
        entry = manifest.get(name)
        path = entry.file()
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in ("mean", "components")}
                # optional since version 2; files of version 1 lack them and still load
                if "cluster_threshold" in data.files:
                    arrays["cluster_threshold"] = float(data["cluster_threshold"])
                if "calibration" in data.files:
                    arrays["calibration"] = data["calibration"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ModelError(f"speaker projection {path} is unreadable: {err}") from None
        return cls(**arrays, model_info=entry.to_dict())

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        """Projected, L2-normalised embeddings.

        Parameters
        ----------
        embeddings : np.ndarray, shape (n, 256)

        Returns
        -------
        np.ndarray, shape (n, d), float32
            All-zero input rows (windows of digital silence) stay all-zero.
        """
        x = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
        if x.shape[1] != EMBEDDING_DIM:
            raise ValueError(f"embeddings must have shape (n, {EMBEDDING_DIM}), got {x.shape}")
        empty = ~np.any(x != 0, axis=1)
        out = l2((x - self._mean) @ self._components)
        out[empty] = 0.0
        return out


@dataclass(frozen=True)
class VoiceTurn:
    """One speaker turn: a stretch of a voice segment given to a single speaker.

    Attributes
    ----------
    start, end : float
        Seconds; the turns of one voice segment are consecutive and cover it exactly.
    speaker : str or None
        ``"S1"``, ``"S2"``, ...; None only when no voice segment of the input was long enough to embed.
    gender : str or None
        ``"female"`` or ``"male"``; None ("unknown") as for ``speaker``, when gender is switched off, or when the
        calibrated confidence is below the gender model's ``abstain_below``.
    gender_scores : dict
        ``{"female": p, "male": 1 - p}``, the calibrated probabilities the decision was taken from (kept for an
        unknown gender too; empty when gender is switched off or there was no window).
    confidence : float
        Calibrated probability of the more likely gender (0.5 .. 1); 0 when gender is switched off or there was
        no window.
    """

    start: float
    end: float
    speaker: str | None
    gender: str | None
    gender_scores: dict[str, float] = field(default_factory=dict)
    confidence: float = 0.0

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class VoiceLabelling:
    """The result of :func:`label_voice_segments`.

    Attributes
    ----------
    turns : tuple of tuple of VoiceTurn
        Per input segment (input order), its turns in time order: consecutive, covering the segment exactly,
        neighbours with different speakers (also without speaker ids, ``--no-speakers``, when their speaker is None).
    speakers : tuple of SpeakerSummary
        ``S1`` first (the speaker with most talk time); ``seconds`` is the summed duration of the speaker's
        turns; ``gender`` / ``gender_confidence`` are the speaker-level decision on all of its windows when it
        passed (confident, windows agreeing), else ``gender`` None with the confidence it reached.
    """

    turns: tuple[tuple[VoiceTurn, ...], ...] = ()
    speakers: tuple[SpeakerSummary, ...] = ()
    #: with the speaker ids switched off (``speakers`` empty), the speakers told apart inside all the same: what
    #: the genre rules count (how many speak, how evenly), never listed
    unnamed: tuple[SpeakerSummary, ...] = ()


def to_annotation(segments: Sequence[Any], uri: str | None = None):
    """A ``pyannote.core.Annotation`` of who speaks when.

    Parameters
    ----------
    segments : sequence
        Objects with ``start``, ``end`` and ``speaker`` attributes (:class:`~dramapic.result.Segment`,
        :class:`VoiceTurn`) or mappings with those keys. Items with a ``label`` other than ``"voice"``, without
        a speaker or with no duration are skipped.
    uri : str, optional
        The annotation's uri (the RTTM file id).

    Returns
    -------
    pyannote.core.Annotation
        One track per kept item (track names ``t0``, ``t1``, ... in input order), labelled with the speaker id.
    """
    from pyannote.core import Annotation
    from pyannote.core import Segment as Span

    annotation = Annotation(uri=uri)
    for i, item in enumerate(segments):
        get = item.get if isinstance(item, dict) else (lambda key, obj=item: getattr(obj, key, None))
        label, speaker = get("label"), get("speaker")
        start, end = float(get("start")), float(get("end"))
        if (label is not None and label != "voice") or not speaker or end <= start:
            continue
        annotation[Span(start, end), f"t{i}"] = str(speaker)
    return annotation


# -- re-segmentation ---------------------------------------------------------------------------------------------

def _viterbi(scores: np.ndarray, penalty: float) -> np.ndarray:
    """Best state path (m,) through ``scores`` (m, k) with a cost ``penalty`` for every change of state."""
    return best_path(scores, switch_penalty=penalty)


def _runs(path: np.ndarray) -> list[list[int]]:
    """``[[first, last_exclusive, state], ...]`` of the constant stretches of ``path``."""
    return [[run.start, run.end, int(run.label)] for run in runs_of(path)]


def _segment_turns(start: float, end: float, centres: np.ndarray, sims: np.ndarray, penalty: float,
                   min_turn_s: float) -> list[tuple[float, float, int, int, int]]:
    """Turns of one voice segment from its windows (time order).

    ``centres`` (m,) are window centres, ``sims`` (m, k) cosine similarities to the speaker centroids.
    Returns ``(start, end, cluster, first_window, last_window_exclusive)`` per turn. A change between windows
    i and i + 1 is placed half-way between their centres; turns shorter than ``min_turn_s`` are given to the
    neighbour whose speaker their windows resemble more, shortest first, until none is left or one turn remains.
    """
    runs = _runs(_viterbi(sims, penalty))

    def bounds(rs):
        cuts = [0.5 * (centres[r[0] - 1] + centres[r[0]]) for r in rs[1:]]
        edges = [start, *[min(max(c, start), end) for c in cuts], end]
        return [edges[j + 1] - edges[j] for j in range(len(rs))], edges

    while len(runs) > 1:
        lengths, _ = bounds(runs)
        j = int(np.argmin(lengths))
        if lengths[j] >= max(min_turn_s, 0.01):  # never a turn of (almost) no duration
            break
        a, b = runs[j][0], runs[j][1]
        options = [n for n in (j - 1, j + 1) if 0 <= n < len(runs)]
        target = max(options, key=lambda n: float(sims[a:b, runs[n][2]].sum()))
        if target < j:
            runs[target][1] = b
        else:
            runs[target][0] = a
        del runs[j]
        merged = [runs[0]]  # neighbours that now share a speaker become one run
        for r in runs[1:]:
            if r[2] == merged[-1][2]:
                merged[-1][1] = r[1]
            else:
                merged.append(r)
        runs = merged
    _, edges = bounds(runs)
    return [(edges[j], edges[j + 1], r[2], r[0], r[1]) for j, r in enumerate(runs)]


def _resegment(seg: np.ndarray, times: np.ndarray, emb: np.ndarray, region: np.ndarray, p_female: np.ndarray,
               cent: np.ndarray, options: SpeakersConfig) -> list[list[tuple[float, float, int, np.ndarray]]]:
    """Every voice segment re-segmented against the centroids ``cent`` (k, d): the raw turns
    ``[[(start, end, cluster, window_rows), ...] per segment]``.

    With ``gender_resegment_weight``, a window also leans towards speakers of its own gender: the product of its
    signed confidence (2 p - 1) and the speaker's (the same over the windows nearest its centroid) is added to the
    similarity, so a confidently female stretch inside one segment is not handed to a confidently male speaker just
    because his centroid lies a little closer. A segment without a usable window goes to the speaker of the turn
    nearest to it in time.
    """
    k = cent.shape[0]
    n_seg = seg.shape[0]
    sims_all = emb @ cent.T
    if options.gender_resegment_weight > 0:
        nearest = np.argmax(sims_all, axis=1)
        signed = 2.0 * p_female - 1.0
        counts = np.bincount(nearest, minlength=k)
        speaker_sign = np.bincount(nearest, weights=signed, minlength=k) / np.maximum(counts, 1)
        sims_all = sims_all + options.gender_resegment_weight * signed[:, None] * speaker_sign[None, :]
    per_seg = np.bincount(region, minlength=n_seg)
    centres = times.mean(axis=1)
    order = np.lexsort((centres, region))
    offsets = np.concatenate([[0], np.cumsum(per_seg)])
    raw: list[list[tuple[float, float, int, np.ndarray]]] = []
    for s in range(n_seg):
        rows = order[offsets[s]:offsets[s + 1]]
        if len(rows) == 0:
            raw.append([])
            continue
        turns = _segment_turns(float(seg[s, 0]), float(seg[s, 1]), centres[rows], sims_all[rows],
                               options.switch_penalty, options.min_turn_s)
        raw.append([(a, b, c, rows[i:j]) for a, b, c, i, j in turns])
    has = np.flatnonzero(per_seg > 0)
    for s in np.flatnonzero(per_seg == 0):  # no usable window: the speaker of the nearest turn in time
        gap = np.maximum(0.0, np.maximum(seg[has, 0] - seg[s, 1], seg[s, 0] - seg[has, 1]))
        near = int(has[int(np.argmin(gap))])
        c = raw[near][0][2] if seg[near, 0] >= seg[s, 1] else raw[near][-1][2]
        raw[s] = [(float(seg[s, 0]), float(seg[s, 1]), c, np.zeros(0, dtype=np.int64))]
    return raw


def _won_talk(raw, k: int) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    """Per cluster of ``raw`` turns (``[[(start, end, cluster, window_rows), ...] per segment]``): the seconds of
    its turns (k,) and the window rows of each of them (an empty list for a cluster that won no turn)."""
    talk = np.zeros(k)
    rows_of: list[list[np.ndarray]] = [[] for _ in range(k)]
    for turns in raw:
        for a, b, c, rows in turns:
            talk[c] += b - a
            rows_of[c].append(np.asarray(rows, dtype=np.int64))
    return talk, rows_of


def _fold_after_resegmentation(seg, times, emb, region, p_female, cent, raw, options: SpeakersConfig):
    """The clustering's seconds floor once more, on the talk each speaker won in the re-segmentation.

    The clustering folds clusters with less than ``min_speaker_s`` of talk (shrunk on a short scene:
    :func:`~dramapic.analysis.clustering.short_recording_floors`), but it counts a cluster's *windows*, and the
    re-segmentation may then hand part of them to a neighbour: cut to 25 s, the bundled sample kept a 3.6 s
    cluster (a man over a music bed and two windows of the woman after him) that won 2.1 s of turns, a third
    speaker. Here the speaker with the least won talk below that floor loses its centroid and every segment is
    re-segmented against the others, until none is left below it or ``min_speakers`` remain; centroids that won no
    turn go with it (they would not be speakers anyway).

    With ``gender_cannot_link`` on, a speaker whose turns' windows are of a confident gender
    (``gender_link_confidence``) that no other speaker has stays: a short female part among men. That is looser than
    the clustering's own exception, which also asks ``gender_link_min_s`` of talk (so, with the default equal
    floors, never protects a cluster below ``min_speaker_s``) and every other cluster of the opposite confident
    gender; without the exception the fold costs the dev-mix excerpts (``postfloor_all`` in
    ``dramapic/lab/experiments/issue14_post_floor``). Only for ``cluster_method: constrained`` without
    ``num_speakers`` (``ahc`` stays the former method bit for bit). Measured on the cross-corpus protocol, full
    length and short scenes (models/README.md, "Short scenes"). Returns the centroids and raw turns.
    """
    if options.num_speakers is not None or options.cluster_method != "constrained":
        return cent, raw
    from .clustering import short_recording_floors

    per_seg = np.bincount(region, minlength=seg.shape[0])
    talk_s = float(np.clip(seg[:, 1] - seg[:, 0], 0.0, None)[per_seg > 0].sum())  # what the windows stand for
    floor = short_recording_floors(options, total_talk_s=talk_s).min_speaker_s
    confident = options.gender_link_confidence
    while True:
        talk, rows_of = _won_talk(raw, cent.shape[0])
        alive = np.flatnonzero(talk > 0)
        if len(alive) <= max(1, options.min_speakers):
            return cent, raw
        side = {}
        for c in alive:
            rows = np.concatenate(rows_of[c])
            mean = float(p_female[rows].mean()) if len(rows) else 0.5
            side[c] = 1 if mean >= confident else (-1 if mean <= 1.0 - confident else 0)
        small = [c for c in alive[np.argsort(talk[alive], kind="stable")] if talk[c] < floor
                 and not (options.gender_cannot_link and side[c] != 0
                          and all(side[o] != side[c] for o in alive if o != c))]
        if not small:
            return cent, raw
        cent = cent[[c for c in alive if c != small[0]]]
        raw = _resegment(seg, times, emb, region, p_female, cent, options)


def _probability_decider() -> GenderClassifier:
    """A model that only decides: identity calibration, never abstains, no agreement check (the decision rule
    for windows scored by someone else, :func:`diarize_windows`)."""
    return GenderClassifier(mean=np.zeros(EMBEDDING_DIM), scale=np.ones(EMBEDDING_DIM), coef=np.zeros(EMBEDDING_DIM),
                            intercept=0.0, labels=("female", "male"))


def _male_logit_of(p_female: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p_female, dtype=np.float64), _P_CLIP, 1.0 - _P_CLIP)
    return np.log((1.0 - p) / p)


def diarize_windows(
    segments: np.ndarray,
    times: np.ndarray,
    embeddings: np.ndarray,
    region: np.ndarray,
    p_female: np.ndarray,
    options: SpeakersConfig = SpeakersConfig(),
    *,
    projection: SpeakerProjection | None = None,
    gender_model: GenderClassifier | None = None,
    male_logits: np.ndarray | None = None,
) -> VoiceLabelling:
    """The diarization proper, on windows already embedded and scored (no audio, no model, no refinement).

    Parameters
    ----------
    segments : np.ndarray, shape (n_seg, 2)
        Voice segments (start, end) in seconds.
    times : np.ndarray, shape (n, 2)
        Start and end of every window.
    embeddings : np.ndarray, shape (n, 256)
        L2-normalised window embeddings; all-zero rows (digital silence) are ignored.
    region : np.ndarray, shape (n,), int
        The segment each window lies in.
    p_female : np.ndarray, shape (n,)
        The female probability of each window, decided without abstention (mean logit, 0.5 cut); ignored when
        ``gender_model`` and ``male_logits`` are given.
    options : SpeakersConfig
    projection : SpeakerProjection, optional
        Cluster and re-segment in this space (see :class:`SpeakerProjection`).
    gender_model, male_logits : GenderClassifier, np.ndarray of shape (n,), optional
        Decide genders with this model's policy (:func:`~dramapic.analysis.gender.decide_turns`) on these raw
        logits (:meth:`GenderClassifier.male_logit`), as :func:`label_voice_segments` does.

    Returns
    -------
    VoiceLabelling
        See :func:`label_voice_segments` (steps 2 to 6; every window given is clustered).
    """
    if gender_model is None or male_logits is None:
        gender_model, male_logits = _probability_decider(), _male_logit_of(p_female)
    return _diarize(segments, times, embeddings, region, male_logits, options, gender_model,
                    projection=projection)[0]


def _valid(times, emb, region, male_logits):
    """Drop windows of pure digital silence (all-zero embeddings: no direction, no evidence)."""
    emb = np.asarray(emb, dtype=np.float32)
    keep = np.linalg.norm(emb, axis=1) > 0
    return (np.asarray(times, dtype=np.float64).reshape(-1, 2)[keep], emb[keep],
            np.asarray(region, dtype=np.int64)[keep], np.asarray(male_logits, dtype=np.float64)[keep])


def _diarize(segments, times, embeddings, region, male_logits, options, gender_model, centroids=None,
             projection=None, say_count=True, say_bound=True):
    """:func:`diarize_windows` on raw male logits (n,) decided by ``gender_model``, also returning the centroids
    (k, d) (in the projected space when ``projection`` is given) and the raw turns
    ``[[(start, end, cluster, window_rows), ...] per segment]``; with ``centroids`` given nothing is clustered.
    ``say_count=False``: no warning about a count asked for and not found (a first pass a second one replaces);
    ``say_bound=False``: none about the ``max_speakers`` bound folding speakers away (said where the clustering
    runs, once: the refined pass reuses its centroids)."""
    seg = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    n_seg = seg.shape[0]
    if n_seg == 0:
        return VoiceLabelling(), centroids, []
    times, emb, region, z = _valid(times, embeddings, region, male_logits)
    if emb.shape[0] == 0:
        turns = tuple((VoiceTurn(float(s), float(e), None, None, {}, 0.0),) for s, e in seg)
        return VoiceLabelling(turns=turns, speakers=()), centroids, []
    if projection is not None:
        emb = projection.transform(emb)

    # 1. cluster the windows; each carries an equal share of its segment's duration
    per_seg = np.bincount(region, minlength=n_seg)
    # calibrated window probabilities (0.5 everywhere when gender is off: nothing refused, no gender pull)
    cal_a, cal_b = gender_model.window_calibration
    p_female = 1.0 / (1.0 + np.exp(cal_a * z + cal_b))
    clustered_here = centroids is None
    if clustered_here:
        seg_dur = np.clip(seg[:, 1] - seg[:, 0], 0.0, None)
        bound_folded: list[float] = []
        ids = cluster_windows(embeddings=emb, weights=seg_dur[region] / per_seg[region], p_female=p_female,
                              options=options, threshold=stopping_distance(options, projection),
                              fold_threshold=fold_distance(options, projection), bound_folded=bound_folded)
        if say_bound and bound_folded:
            _say_bound(options, bound_folded)
        centroids = l2(np.stack([emb[ids == c].mean(axis=0) for c in range(int(ids.max()) + 1)]))
    cent = centroids

    # 2. re-segment every voice segment against the centroids (Viterbi, then a minimum turn length); see
    # _resegment for the gender pull
    raw = _resegment(seg, times, emb, region, p_female, cent, options)
    if clustered_here:
        cent, raw = _fold_after_resegmentation(seg, times, emb, region, p_female, cent, raw, options)
    k = cent.shape[0]

    # 3. number speakers by talk time; clusters that won no turn are dropped
    talk, rows_of = _won_talk(raw, k)
    member = np.full(emb.shape[0], -1, dtype=np.int64)
    for c, parts in enumerate(rows_of):
        for rows in parts:
            member[rows] = c
    won = [bool(parts) for parts in rows_of]  # a turn without windows (a segment too short for one) counts too
    ranked = [c for c in sorted(range(k), key=lambda c: (-talk[c], c)) if won[c]]
    name = {c: f"S{i + 1}" for i, c in enumerate(ranked)}
    if say_count:
        _say_count(options, len(ranked), k)

    # 4. genders: per speaker when it is confident and its windows agree, else per turn, else unknown
    decisions, by_speaker = decide_turns(gender_model, turn_rows=[[t[3] for t in turns] for turns in raw],
                                         turn_speakers=[[name[t[2]] for t in turns] for turns in raw],
                                         male_logits=z)
    speakers = []
    for c in ranked:
        passed = by_speaker.get(name[c])
        # a speaker whose decision did not pass still reports how confident all of its windows together were
        shown = passed if passed is not None else gender_model.decide(z[member == c])
        speakers.append(SpeakerSummary(id=name[c], gender=passed.gender if passed is not None else None,
                                       seconds=float(talk[c]), gender_confidence=float(shown.confidence)))
    out = []
    for turns, decided in zip(raw, decisions):
        out.append(tuple(VoiceTurn(start=float(a), end=float(b), speaker=name[c], gender=d.gender,
                                   gender_scores=d.scores, confidence=float(d.confidence))
                         for (a, b, c, _rows), d in zip(turns, decided)))
    log.debug("speakers: %d segments, %d windows, %d clusters, %d speakers, %d turns", n_seg, emb.shape[0], k,
              len(speakers), sum(len(t) for t in out))
    return VoiceLabelling(turns=tuple(out), speakers=tuple(speakers)), cent, raw


def _say_bound(options: SpeakersConfig, folded_s: Sequence[float]) -> None:
    """Warn that the ``max_speakers`` bound, not the voices, set the count: clusters with talk enough to be
    speakers of their own were folded into others (a long episode with a large cast; or one speaker's voice heard
    so differently that it made two clusters, which the bound then happened to mend: the warning cannot tell)."""
    low, high = round(min(folded_s)), round(max(folded_s))
    talk = f"{low} s of talk" if low == high else f"{low}-{high} s of talk each"
    log.warning("the speaker count stopped at its upper bound, %d: %d more cluster(s) of voice with %s were folded "
                "into the speakers most like them (more speakers than the bound, or one voice heard as two); "
                "--max-speakers N (speakers.max_speakers) raises the bound", options.max_speakers, len(folded_s), talk)


def _say_count(options: SpeakersConfig, found: int, clusters: int, *, windows: int | None = None,
               voice_s: float = 0.0) -> None:
    """Warn when fewer speakers hold a turn than ``--num-speakers`` / ``--min-speakers`` asked for.

    ``windows``: the speaker windows clustered, where known (None: not said); ``voice_s``: the seconds of voice
    they came from (0: the recording has none)."""
    asked = options.num_speakers if options.num_speakers is not None else options.min_speakers
    if not asked > 1 or found >= asked:
        return
    # said, not hidden: a count the user asked for that this recording lacks; and why, truly (re-segmentation was
    # blamed also where the clustering itself had fewer clusters than asked for, or there was no voice at all)
    if not clusters and voice_s > 0:
        # voice too short (or digitally silent) for one window: it kept no speaker, and nothing said so
        log.warning("%d speaker(s) asked for, none found: its %.1f s of voice gave no speaker window to tell "
                    "speakers apart in (each piece under %.1f s, or digital silence), so that voice has no speaker",
                    asked, voice_s, MIN_REGION_S)
    elif not clusters:
        log.warning("%d speaker(s) asked for, none found: the recording has no voice to tell speakers apart in",
                    asked)
    elif windows is not None and windows < asked:
        # the clustering cannot make more clusters than windows: the count was lowered to them
        log.warning("%d speaker(s) asked for, %d found: its voice holds only %d speaker window(s) of %.1f s, so the "
                    "count was lowered to %d", asked, found, windows, options.window_s, windows)
    elif clusters < asked:
        log.warning("%d speaker(s) asked for, %d found: its voice gave only %d cluster(s) (too few windows of "
                    "speech, or windows alike, to tell more apart)", asked, found, clusters)
    else:
        log.warning("%d speaker(s) asked for, %d found: after re-segmentation only %d cluster(s) of %d held a turn "
                    "of their own (the others' windows are closer to them)", asked, found, found, clusters)


def _refinement_starts(segments: np.ndarray, times: np.ndarray, raw, window_s: float,
                       fine_hop_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Start times and segments of the extra windows that refine each change of speaker.

    Between the last window of a turn and the first window of the next one, windows are added every
    ``fine_hop_s`` (inside the segment, not repeating an existing start), so that the second pass can place the
    change at ``fine_hop_s`` resolution. Returns ``(starts (m,), region (m,))``.
    """
    starts, regions = [], []
    for s, turns in enumerate(raw):
        lo, hi = float(segments[s, 0]), float(segments[s, 1]) - window_s
        for left, right in zip(turns, turns[1:]):
            if len(left[3]) == 0 or len(right[3]) == 0:
                continue
            a, b = float(times[left[3][-1], 0]), float(times[right[3][0], 0])
            for t in np.arange(a + fine_hop_s, b - 0.5 * fine_hop_s, fine_hop_s):
                if lo - 1e-6 <= t <= hi + 1e-6:
                    starts.append(min(max(t, lo), hi))
                    regions.append(s)
    return np.asarray(starts, dtype=np.float64), np.asarray(regions, dtype=np.int64)


def label_voice_segments(
    audio: AudioSource,
    *,
    sample_rate: int,
    segments: Sequence[tuple[float, float]],
    encoder: SpeakerEncoder,
    gender_model: GenderClassifier | None,
    options: SpeakersConfig = SpeakersConfig(),
    projection: SpeakerProjection | None = None,
    progress: ProgressHook = silent_hook,
) -> VoiceLabelling:
    """Who speaks when inside the voice segments of one recording, with each speaker's gender.

    Parameters
    ----------
    audio : AudioSource, shape (n_samples,)
        The whole mono recording: an array, or the spooled audio (read back a group of segments at a time).
    sample_rate : int
        Its rate (resampled to 16 kHz for the encoder when different; a spool must be at 16 kHz).
    segments : sequence of (start_s, end_s)
        The voice segments (stage 1), any order, not overlapping. They are not merged; each is split into
        turns where the speaker changes.
    encoder : SpeakerEncoder
        Embeds the windows.
    gender_model : GenderClassifier or None
        Scores every window female / male (:meth:`GenderClassifier.male_logit` of its embedding and its pitch
        features, :func:`~dramapic.analysis.pitch.window_pitch_features` read from the same ``audio``) and decides
        (:func:`~dramapic.analysis.gender.decide_turns`); None: no gender is decided (every ``gender`` of the
        turns and speakers is None, no scores).
    options : SpeakersConfig
        Window, clustering, speaker-count and re-segmentation settings. With ``options.enabled`` false there are
        no speakers: with a ``gender_model`` the turns and their genders are those of a run with speakers, each
        turn without its speaker id (gender decided per speaker is what is measured across corpora; decided per
        segment, a dialogue's was mostly unknown); without one, each segment is one turn with neither.
    projection : SpeakerProjection, optional
        Steps 2-3 run on the projected embeddings (the trained ``speaker-lda`` of the default pipeline); the
        gender model always scores the raw embeddings.
    progress : ProgressHook
        Called as ``progress("speakers", windows_embedded, windows_total)``, finally with done == total.

    Returns
    -------
    VoiceLabelling
        Per segment (input order) a tuple of :class:`VoiceTurn` covering it exactly, and the speakers, ``S1``
        talking most.

    Notes
    -----
    1. Windows (``options.window_s`` / ``hop_s``: 1.5 s every 0.75 s) are embedded inside every segment
       (:meth:`SpeakerEncoder.embed_windows`) and scored female / male.
    2. Windows are clustered (:mod:`dramapic.analysis.clustering`; ``cluster_method: constrained`` adds the gender
       cannot-link and share-based small clusters described there): average-linkage agglomerative clustering on
       cosine distance, stopped at ``cluster_threshold`` (null: the projection's calibrated one), the count then clamped to ``[min_speakers, max_speakers]`` (or exactly
       ``num_speakers``); above ``max_speakers`` the clusters with the least talk are folded into their nearest
       neighbour, so that outlier windows never make two real speakers merge. Above 3,000 windows a seeded random subsample of 3,000 is clustered and every window
       goes to the nearest cluster centroid, so memory stays linear in the input length. Clusters whose talk
       time (each window carries an equal share of its segment's duration) is below ``min_speaker_s`` are merged
       into the nearest cluster (not with ``num_speakers``, and never below ``min_speakers``).
    3. Re-segmentation: inside each segment a Viterbi pass over the windows' cosine similarities to the cluster
       centroids, with ``switch_penalty`` for every change of speaker, gives each window a speaker. Between the
       last window of a turn and the first of the next, extra windows are embedded every ``refine_hop_s``
       (0.25 s) and a second pass over all windows (same centroids, no re-clustering) places each change half-way
       between the centres of the two windows either side of it. Turns shorter than ``min_turn_s`` go to the
       neighbouring speaker their windows resemble more. With ``cluster_method: constrained`` and no
       ``num_speakers``, a speaker whose turns of the first pass total less than the clustering's ``min_speaker_s``
       floor (its windows passed it, its turns do not) loses its centroid and the first pass is redone without it,
       unless it is the only speaker of its confident gender (:func:`_fold_after_resegmentation`). Overlapped
       speech therefore gets one speaker, the one whose voice dominates the windows (usually the louder), and
       interjections shorter than ``min_turn_s`` are absorbed by the surrounding turn.
    4. A segment with no usable window (shorter than 0.3 s, or digital silence) takes the speaker of the turn
       nearest in time.
    5. Speakers are numbered by talk time (the summed duration of their turns), ``S1`` most; a cluster that won
       no turn is dropped.
    6. Gender (:func:`~dramapic.analysis.gender.decide_turns`): a speaker's decision is the calibrated mean
       logit over *all* windows of its turns; when its confidence reaches the model's ``abstain_below`` and at
       least ``agree_min`` of its windows lie on the decided side, every turn takes it, except a turn whose own
       windows give the other gender ``override_p`` or more (a likely clustering error or overlapped speech).
       Otherwise each turn is decided on its own windows, and a turn below ``abstain_below`` gets gender None
       ("unknown"). A speaker whose decision did not pass has gender None.
    """
    n_seg = len(segments)
    if n_seg == 0:
        progress("speakers", 0, 0)
        if options.enabled:  # a count asked of music or silence alone: "0 speaker(s)" without a word puzzled
            _say_count(options, 0, 0)
        return VoiceLabelling()
    seg = np.asarray([(float(s), float(e)) for s, e in segments], dtype=np.float64).reshape(n_seg, 2)
    times, emb, region = encoder.embed_regions(audio, sample_rate=sample_rate, regions=[tuple(r) for r in seg],
                                               window_s=options.window_s, hop_s=options.hop_s, progress=progress)
    z = _male_logits(gender_model, emb, audio, times, sample_rate)
    times, emb, region, z = _valid(times, emb, region, z)
    n_windows = emb.shape[0]
    speakers_wanted = options.enabled
    if not speakers_wanted:
        if gender_model is None:
            return _without_speakers(seg)
        # gender is decided as with speakers, then the speakers are dropped: decided per stage-1 segment, a
        # dialogue's segment (a woman and a man taking turns) averaged to neither and was left unknown, so
        # switching the speaker ids off lost the female/male speaking time as well (the sample's: all of it)
        options = dataclasses.replace(options, enabled=True)
    decider = gender_model if gender_model is not None else _probability_decider()
    # the count is said once, of the final pass (the refined one replaces the first; it used to be said twice)
    result, cent, raw = _diarize(seg, times, emb, region, z, options, decider, projection=projection,
                                 say_count=False, say_bound=speakers_wanted)
    if options.refine_hop_s < options.hop_s and any(len(turns) > 1 for turns in raw):
        starts, where = _refinement_starts(seg, times, raw, options.window_s, options.refine_hop_s)
        if len(starts):
            # each extra window is embedded as a region of exactly one window (same feature path as the others)
            extra_t, extra_e, extra_r = encoder.embed_regions(
                audio, sample_rate=sample_rate, regions=[(t, t + options.window_s) for t in starts],
                window_s=options.window_s, hop_s=options.window_s)
            times = np.concatenate([times, extra_t])
            emb = np.concatenate([emb, extra_e])
            region = np.concatenate([region, where[extra_r]])
            z = np.concatenate([z, _male_logits(gender_model, extra_e, audio, extra_t, sample_rate)])
            log.debug("speakers: %d windows added around %d changes", len(extra_t), sum(len(t) - 1 for t in raw))
            result = _diarize(seg, times, emb, region, z, options, decider, centroids=cent,
                              projection=projection, say_count=False)[0]
    if not speakers_wanted:
        return _speakers_dropped(result)
    # said of the final pass, with the windows the clustering had (the refined pass adds windows, not clusters)
    _say_count(options, len(result.speakers), cent.shape[0] if cent is not None else 0, windows=n_windows,
               voice_s=float(np.clip(seg[:, 1] - seg[:, 0], 0.0, None).sum()))
    return result if gender_model is not None else _without_gender(result)


def _male_logits(gender_model: GenderClassifier | None, embeddings: np.ndarray, audio: AudioSource,
                 times: np.ndarray, sample_rate: int) -> np.ndarray:
    """Raw male logit of each window, shape (n,); zeros when gender is switched off (never shown then).

    The pitch features are read from the same ``audio`` (array or spool) and ``times`` as the embeddings, so the
    model sees each window exactly as at training time; an embedding-only model skips them (no cost).
    """
    n = embeddings.shape[0]
    if gender_model is None or not n:
        return np.zeros(n)
    pitch = window_pitch_features(audio, times=times, sample_rate=sample_rate) if gender_model.n_pitch else None
    return gender_model.male_logit(embeddings, pitch)


def _without_gender(labelling: VoiceLabelling) -> VoiceLabelling:
    """``labelling`` with every gender decision removed (gender switched off: unknown, not guessed)."""
    return VoiceLabelling(
        turns=tuple(tuple(dataclasses.replace(t, gender=None, gender_scores={}, confidence=0.0) for t in turns)
                    for turns in labelling.turns),
        speakers=tuple(dataclasses.replace(s, gender=None, gender_confidence=0.0) for s in labelling.speakers))


def _without_speakers(segments: np.ndarray) -> VoiceLabelling:
    """Diarization and gender both switched off: each segment is one turn with neither."""
    return VoiceLabelling(turns=tuple((VoiceTurn(float(start), float(end), None, None, {}, 0.0),)
                                      for start, end in segments), speakers=())


def _speakers_dropped(labelling: VoiceLabelling) -> VoiceLabelling:
    """``labelling`` without speaker ids (``--no-speakers``): its turns, split where the speaker changes and
    gendered as with speakers, keep no speaker id; there is no speaker list (the speakers are kept as ``unnamed``
    for the genre rules)."""
    return VoiceLabelling(turns=tuple(tuple(dataclasses.replace(t, speaker=None) for t in turns)
                                      for turns in labelling.turns), speakers=(), unnamed=labelling.speakers)


