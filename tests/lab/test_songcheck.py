"""The song check's scorer on a tiny synthetic reference: song-only clips, a result that calls part of them voice."""

from __future__ import annotations

import numpy as np
import pytest

from dramapic.config import STAGE1_LABELS
from dramapic.lab.songcheck import score_song_frames, songcheck_clips

VOICE, SONG, SILENCE = (STAGE1_LABELS.index(k) for k in ("voice", "song", "silence"))


def test_share_of_song_time_called_voice():
    # a cappella: 200 audible frames, 50 called voice -> 25 %; plus 100 quiet frames called voice, not counted
    a_cap = np.full(300, SONG)
    a_cap[:50] = VOICE
    a_cap[200:] = VOICE
    a_cap_db = np.r_[np.full(200, -20.0), np.full(100, -70.0)]
    # pop: 400 audible frames, 4 called voice -> 1 %
    pop = np.full(400, SONG)
    pop[10:14] = VOICE
    # piano: 100 audible frames, none called voice
    piano = np.full(100, SONG)
    piano[:30] = SILENCE
    report = score_song_frames([("a_cappella", a_cap, a_cap_db), ("vocal_pop", pop, np.full(400, -25.0)),
                                ("instrumental_piano", piano, np.full(100, -30.0))])
    assert report.share("a_cappella") == pytest.approx(25.0)
    assert report.share("vocal_pop") == pytest.approx(1.0)
    assert report.share("instrumental_piano") == 0.0
    assert report.share("VOCAL") == pytest.approx(100 * 54 / 600)
    assert report.share("ALL") == pytest.approx(100 * 54 / 700)
    assert report.share("rap") is None  # not in the data: unmeasured, never 0
    assert report.audible_s["a_cappella"] == pytest.approx(2.0)
    d = report.to_dict()
    assert d["unmeasured"] == ["rap", "choir"] and d["pct_song_time_called_voice"]["ALL"] == report.share("ALL")
    table = report.format_table()
    assert "a_cappella" in table and "25.00" in table and "unmeasured" in table


def test_mismatched_frames_are_refused():
    with pytest.raises(ValueError):
        score_song_frames([("vocal_pop", np.zeros(10, int), np.zeros(9))])


@pytest.mark.shared_data
def test_clip_list_holds_only_song_and_no_training_rows(shared_data):
    clips = songcheck_clips(data_root=shared_data)
    assert clips and {c.subtype for c in clips} >= {"vocal_pop", "a_cappella", "rock_song"}
    assert all(c.path.is_file() for c in clips[:5])


def test_cross_corpus_protocol_flags_a_member_that_beats_the_ensemble():
    from dramapic.lab.stage1_crosscorpus import leave_one_source_out

    fitted_without = []

    def fit(group):
        fitted_without.append(group)
        return {"ensemble": "ens", "det": "det", "fam_head": "fam"}

    table = {("ens", "voice:cv"): 0.96, ("det", "voice:cv"): 0.95, ("fam", "voice:cv"): 0.71,
             ("ens", "voice:klettres"): 0.71, ("det", "voice:klettres"): 0.79, ("fam", "voice:klettres"): 0.90}
    report = leave_one_source_out(groups=["voice:cv", "voice:klettres"], fit=fit,
                                  score=lambda scorer, group: table[scorer, group])
    assert fitted_without == ["voice:cv", "voice:klettres"]
    assert [r.best_member for r in report.rows] == ["det", "fam_head"]
    assert [r.ensemble_at_least_best_member for r in report.rows] == [True, False]
    assert report.check is False and "CHECK no member beats the ensemble on any held-out source: False" in \
        report.format_table()
