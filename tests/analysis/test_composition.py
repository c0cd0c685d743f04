import pytest

from dramapic.analysis.composition import GENRES, gender_shares, infer_genre, label_shares, summarize
from dramapic.result import Segment, SpeakerSummary


def seg(start, end, label, gender=None, speaker=None):
    return Segment(start=start, end=end, label=label, confidence=0.9, gender=gender, speaker=speaker)


def speakers(*seconds):
    return [SpeakerSummary(id=f"S{i + 1}", gender="female", seconds=s) for i, s in enumerate(seconds)]


def test_shares_sum_to_one_and_gender_shares_are_of_voice_time():
    segments = [seg(0, 6, "voice", "female", "S1"), seg(6, 8, "voice", "male", "S2"), seg(8, 9, "song"),
                seg(9, 10, "silence")]
    shares = label_shares(segments, 10.0)
    assert shares == pytest.approx({"voice": 0.8, "song": 0.1, "noise": 0.0, "silence": 0.1})
    assert gender_shares(segments) == pytest.approx({"female": 0.75, "male": 0.25})
    assert gender_shares([seg(0, 1, "song")]) == {"female": 0.0, "male": 0.0}


@pytest.mark.parametrize("shares, talk, bed, expected", [
    ({"voice": 0.15, "song": 0.75, "noise": 0.05, "silence": 0.05}, (10,), 0.0, "music_show"),
    ({"voice": 0.85, "song": 0.02, "noise": 0.03, "silence": 0.1}, (50, 40), 0.0, "interview"),
    ({"voice": 0.7, "song": 0.1, "noise": 0.1, "silence": 0.1}, (90, 5), 0.6, "documentary"),
    ({"voice": 0.5, "song": 0.2, "noise": 0.2, "silence": 0.1}, (30, 25, 20, 10), 0.2, "drama"),
    ({"voice": 0.0, "song": 0.05, "noise": 0.3, "silence": 0.65}, (), 0.0, "other"),
])
def test_genre_rules(shares, talk, bed, expected):
    genre = infer_genre(shares, speakers(*talk), music_under_voice=bed)
    assert genre.label == expected
    assert set(genre.scores) == set(GENRES)
    assert sum(genre.scores.values()) == pytest.approx(1.0)
    assert genre.confidence == pytest.approx(max(genre.scores.values()))


def test_a_genre_without_diarization_rests_on_the_composition_not_on_zero_speakers():
    # a drama's composition with --no-speakers: speakers not known is not "nobody speaks" (was a confident other)
    drama = {"voice": 0.5, "song": 0.2, "noise": 0.2, "silence": 0.1}
    known = infer_genre(drama, speakers(30, 25, 20, 10), music_under_voice=0.2)
    unknown = infer_genre(drama, None, music_under_voice=0.2)
    assert unknown.label == known.label == "drama" and unknown.confidence < known.confidence
    assert infer_genre(drama, [], music_under_voice=0.2).label == "other"  # diarization ran and found nobody
    music = {"voice": 0.15, "song": 0.75, "noise": 0.05, "silence": 0.05}
    assert infer_genre(music, None).label == "music_show"


def test_summarize_round_trips_through_dict():
    from dramapic.result import Summary

    summary = summarize([seg(0, 5, "voice", "male", "S1"), seg(5, 10, "noise")], 10.0, speakers(5))
    assert Summary.from_dict(summary.to_dict()).to_dict() == summary.to_dict()


def _drama(offset: float) -> list:
    """40 s of a drama's composition from ``offset``: three speakers, a song, a short pause, noise."""
    return [seg(offset, offset + 10, "voice", "female", "S1"), seg(offset + 10, offset + 18, "voice", "male", "S2"),
            seg(offset + 18, offset + 24, "voice", "male", "S3"),
            seg(offset + 24, offset + 31, "song"), seg(offset + 31, offset + 36, "silence"),
            seg(offset + 36, offset + 40, "noise")]


def test_dead_air_does_not_turn_a_drama_into_other():
    """A capture with minutes of blank tape or digital padding around the programme (the sample between two
    130 s stretches of digital silence came out "other (1.00)"): its voice share, diluted under 0.2, failed every
    rule. The genre now reads the programme without runs of silence of 30 s or more; the shares stay of the
    whole duration, and a short pause still counts."""
    padded = [seg(0, 130, "silence"), *_drama(130), seg(170, 250, "silence"), seg(250, 300, "silence")]
    alone = summarize(_drama(0), 40.0, speakers(10, 8, 6))
    summary = summarize(padded, 300.0, speakers(10, 8, 6))
    assert summary.shares["silence"] == pytest.approx(265 / 300)
    assert summary.genre.label == alone.genre.label == "drama"
    assert summary.genre.scores == pytest.approx(alone.genre.scores)
    # pauses under 30 s are the programme's own and count as they always did
    paused = [*_drama(0), seg(40, 69, "silence")]
    assert summarize(paused, 69.0, speakers(10, 8, 6)).genre.scores == pytest.approx(
        infer_genre(label_shares(paused, 69.0), speakers(10, 8, 6)).scores)
