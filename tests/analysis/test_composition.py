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


@pytest.mark.parametrize("label, talk", [("song", None), ("song", ()), ("noise", ()), ("voice", (30,))])
def test_one_sound_throughout_is_no_confident_genre(label, talk):
    """A 1 kHz test tone, which stage 1 calls song, was a "music show (0.87)": every rule but music show scored 0
    for want of anything else to read, and the winner's share of the summed scores read as certainty (all noise, or
    one voice alone, was an "other (1.00)" the same way). One sound throughout shows no programme's shape: the
    scores are an even split, no better than a guess among the five, and the label is the rules' pick."""
    segments = [seg(0, 30, label, speaker="S1" if label == "voice" else None)]
    talk = speakers(*talk) if talk else talk
    genre = summarize(segments, 30.0, talk).genre
    assert genre.confidence == pytest.approx(1 / len(GENRES))
    assert genre.scores == pytest.approx({name: 1 / len(GENRES) for name in GENRES})
    assert genre.label == infer_genre(label_shares(segments, 30.0), talk).label
    # a pause or two in it changes nothing: silence is no second sound
    paused = [seg(0, 12, label), seg(12, 14, "silence"), seg(14, 32, label)]
    assert summarize(paused, 32.0, talk).genre.confidence == pytest.approx(1 / len(GENRES))


def test_a_song_with_a_little_else_is_a_music_show_with_less_confidence_than_a_programme():
    """A programme's shape grows with what there is besides the main sound: a song alone says little, a song with a
    few lines spoken over a tenth of it is read in full."""
    def music_show(spoken):
        segments = [seg(0, 60 - spoken, "song"), seg(60 - spoken, 60, "voice", "female", "S1")]
        return summarize(segments, 60.0, speakers(spoken)).genre

    alone, some, full = music_show(0.0), music_show(3.0), music_show(6.0)
    assert alone.label == some.label == full.label == "music_show"
    assert alone.confidence < some.confidence < full.confidence
    segments = [seg(0, 54, "song"), seg(54, 60, "voice", "female", "S1")]
    assert full.scores == pytest.approx(infer_genre(label_shares(segments, 60.0), speakers(6)).scores)


def test_a_short_clip_claims_less_than_the_same_programme_at_length():
    """5 to 30 s of content shows an exchange, not a programme: the same composition read from 8 s had the
    confidence of a whole episode. Its scores are drawn towards the even split in proportion; from 30 s of voice,
    song and noise the rules are taken at their word."""
    def drama(scale):
        segments = [seg(a * scale, b * scale, label, gender, speaker) for a, b, label, gender, speaker in
                    ((0, 10, "voice", "female", "S1"), (10, 18, "voice", "male", "S2"), (18, 24, "voice", "male", "S3"),
                     (24, 31, "song", None, None), (31, 36, "silence", None, None), (36, 40, "noise", None, None))]
        return segments, 40.0 * scale, speakers(10 * scale, 8 * scale, 6 * scale)

    rules = infer_genre(label_shares(*drama(1.0)[:2]), drama(1.0)[2])
    whole = summarize(*drama(1.0)).genre
    short = summarize(*drama(0.25)).genre  # 8.75 s of content
    assert whole == rules and whole.label == short.label == "drama"
    assert short.confidence == pytest.approx(8.75 / 30 * rules.confidence + (1 - 8.75 / 30) / len(GENRES))
    assert sum(short.scores.values()) == pytest.approx(1.0)


def test_voice_alone_with_a_shape_of_its_own_is_read_in_full():
    """Music under the voice is a second sound: a narration over a bed, all of it voice of one speaker, keeps the
    documentary the rules read. So are speakers taking turns: two voices sharing the talk keep their interview."""
    segments = [seg(0, 60, "voice", "male", "S1")]
    shares = label_shares(segments, 60.0)
    genre = summarize(segments, 60.0, speakers(60), music_under_voice=0.5).genre
    assert genre == infer_genre(shares, speakers(60), music_under_voice=0.5) and genre.label == "documentary"
    talk = [seg(0, 30, "voice", "female", "S1"), seg(30, 60, "voice", "male", "S2")]
    genre = summarize(talk, 60.0, speakers(30, 30)).genre
    assert genre == infer_genre(label_shares(talk, 60.0), speakers(30, 30)) and genre.label == "interview"
