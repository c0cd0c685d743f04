import numpy as np

from dramapic.analysis.smoothing import enforce_min_durations, runs_of, smooth_labels, viterbi_labels


def _probs(labels, n_labels=4, strength=0.9):
    p = np.full((len(labels), n_labels), (1 - strength) / (n_labels - 1))
    p[np.arange(len(labels)), labels] = strength
    return p


def test_viterbi_removes_flicker_but_keeps_long_runs():
    labels = np.array([0] * 50 + [1] + [0] * 50 + [2] * 80)
    path = viterbi_labels(_probs(labels), switch_penalty=5.0)
    assert [(r.label, r.end - r.start) for r in runs_of(path)] == [(0, 101), (2, 80)]


def test_zero_penalty_is_per_frame_argmax():
    rng = np.random.default_rng(0)
    probs = rng.random((200, 4))
    assert np.array_equal(viterbi_labels(probs, switch_penalty=0.0), probs.argmax(axis=1))


def test_min_durations_absorb_short_runs_into_best_neighbour():
    labels = np.array([0] * 40 + [3] * 5 + [1] * 40)
    probs = _probs(labels)
    probs[40:45, 1] = 0.5  # the short silence looks more like the song after it than the voice before it
    probs[40:45, 0] = 0.1
    out = enforce_min_durations(labels, probs, min_frames=np.array([10, 10, 10, 10]))
    assert [(r.label, r.end - r.start) for r in runs_of(out)] == [(0, 40), (1, 45)]


def test_smooth_labels_handles_empty_and_single_frame():
    assert smooth_labels(np.zeros((0, 4)), switch_penalty=3, min_frames=np.ones(4, int)).shape == (0,)
    assert smooth_labels(_probs([2]), switch_penalty=3, min_frames=np.full(4, 30)).tolist() == [2]


def test_a_last_frame_clipped_under_a_millisecond_is_no_segment_of_its_own():
    from dramapic.analysis.analyze import segments_from_frames
    from dramapic.writers import milliseconds

    # 10.0004 s of audio: 1,001 frames, the last one 0.4 ms long, given its own label (min_duration_s: 0)
    labels = np.array([0] * 1000 + [1])
    segments = segments_from_frames(labels, _probs(labels), duration=10.0004)
    assert [s.label for s in segments] == ["voice"]
    assert segments[-1].end == 10.0004
    assert all(milliseconds(s.end) > milliseconds(s.start) for s in segments)
    # a last frame of a millisecond or more keeps its label
    assert [s.label for s in segments_from_frames(labels, _probs(labels), duration=10.0012)] == ["voice", "song"]
