"""Composition of a video (shares of each label, gender shares of speech, speakers) and the genre rules."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..result import GENDERS, STAGE1_LABELS, AnalysisResult, Genre, Segment, SpeakerSummary, Summary

GENRES = ("drama", "interview", "documentary", "music_show", "other")
# "other" keeps a small constant score so that a video fitting none of the rules is not forced into one
OTHER_SCORE = 0.15
#: each speaker term of a genre rule when diarization was switched off (not known: neither yes nor no)
UNKNOWN_SPEAKER_TERM = 0.5
#: seconds of voice, song and noise below which no genre is inferred (None: unknown). The rules read the shape of a
#: programme (several speakers taking turns, a narrator over a music bed, a song share): a few seconds show none of
#: it, and the shares of silence-dominated or very short input then decide alone, for "other (1.00)" on a silent file
#: or a confident guess on a two-second one. 5 s is one exchange of lines or a few bars of music, and about the
#: shortest stretch in which stage 2 finds a second speaker; unknown is preferred to confidently wrong.
GENRE_MIN_CONTENT_S = 5.0
#: seconds of unbroken silence that are dead air (blank tape before or after a capture, a recorder left running,
#: digital padding) rather than a pause of the programme: the genre rules read the programme's shares without it.
#: A drama padded with four minutes of it was otherwise an "other (1.00)", its voice share diluted under 0.2
DEAD_AIR_S = 30.0
#: seconds of voice, song and noise from which the genre rules are taken at their word. Below, their scores are drawn
#: towards an even split (:func:`genre_evidence`): from 5 to 30 s the rules see one exchange, a verse, not yet a
#: programme, and a lead of 0.87 read from 6 s claimed as much as one read from an hour
GENRE_FULL_CONTENT_S = 30.0
#: share of the content besides its one main sound (the top speaker, the song, the noise; or a music bed under the
#: voice) from which the composition shows a shape to read. A file that is one sound throughout (a test tone called
#: song, a noise bed, one voice alone) gives every rule but one a zero for want of anything else, and the winner's
#: share of the summed scores, normalised against those zeros, read as certainty: "music show (0.87)" for a 1 kHz
#: sine. Under it the scores are drawn towards an even split, at none of it to the even split itself
GENRE_FULL_MIX = 0.10


def _ramp(value: float, low: float, high: float) -> float:
    """0 below ``low``, 1 above ``high``, linear between."""
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


def label_shares(segments: Sequence[Segment], duration: float) -> dict[str, float]:
    """Share of ``duration`` under each stage-1 label."""
    seconds = {label: 0.0 for label in STAGE1_LABELS}
    for segment in segments:
        seconds[segment.label] += segment.duration
    return {label: (value / duration if duration > 0 else 0.0) for label, value in seconds.items()}


def dead_air_seconds(segments: Sequence[Segment]) -> float:
    """Seconds in runs of silence of at least :data:`DEAD_AIR_S` (adjacent silence segments joined)."""
    total = run = 0.0
    for segment in segments:
        if segment.label == "silence":
            run += segment.duration
            continue
        total += run if run >= DEAD_AIR_S else 0.0
        run = 0.0
    return total + (run if run >= DEAD_AIR_S else 0.0)


def programme_shares(segments: Sequence[Segment], duration: float) -> dict[str, float]:
    """Share of each stage-1 label in ``duration`` less its dead air (:func:`dead_air_seconds`): what the genre
    rules read. The same as :func:`label_shares` where there is none."""
    dead_air = dead_air_seconds(segments)
    if not dead_air:
        return label_shares(segments, duration)
    seconds = {label: share * duration for label, share in label_shares(segments, duration).items()}
    seconds["silence"] = max(0.0, seconds["silence"] - dead_air)
    programme = sum(seconds.values())
    return {label: (value / programme if programme > 0 else 0.0) for label, value in seconds.items()}


def gender_shares(segments: Sequence[Segment]) -> dict[str, float]:
    """Female / male share of voice time whose gender is known (both 0 when there is none)."""
    seconds = {gender: 0.0 for gender in GENDERS}
    for segment in segments:
        if segment.label == "voice" and segment.gender in seconds:
            seconds[segment.gender] += segment.duration
    total = sum(seconds.values())
    return {gender: (value / total if total > 0 else 0.0) for gender, value in seconds.items()}


def gender_unknown_share(segments: Sequence[Segment]) -> float:
    """Share of voice time whose gender is unknown (the model abstained), 0 when there is no voice."""
    voice = sum(s.duration for s in segments if s.label == "voice")
    unknown = sum(s.duration for s in segments if s.label == "voice" and s.gender is None)
    return unknown / voice if voice > 0 else 0.0


def gender_seconds(result: AnalysisResult) -> dict[str, float]:
    """Seconds of voice by gender: ``female``, ``male`` and ``unknown`` (voice the model left without a gender;
    always 0 when gender was switched off: nothing was decided, so nothing is unknown). What ``dramapic run`` prints
    and what the archive's database and reports store."""
    gender_on = result.summary.gender_shares is not None
    seconds = {"female": 0.0, "male": 0.0, "unknown": 0.0}
    for segment in result.segments:
        if segment.label != "voice":
            continue
        if segment.gender in ("female", "male"):
            seconds[segment.gender] += segment.duration
        elif gender_on:
            seconds["unknown"] += segment.duration
    return seconds


def genre_evidence(segments: Sequence[Segment], speakers: Sequence[SpeakerSummary] | None, *,
                   music_under_voice: float = 0.0) -> float:
    """How much the composition gives the genre rules to read, from 0 (nothing) to 1 (a programme's worth).

    The product of two terms: the seconds of voice, song and noise over :data:`GENRE_FULL_CONTENT_S` (at most 1),
    and the share of that content besides its one main sound ramped 0 → :data:`GENRE_FULL_MIX`. The main sound is
    the song, the noise or the voice's top speaker (the whole voice where the speakers are not known: ``speakers``
    None or empty); music under the voice counts as a second sound, so a narrator over a music bed has a shape.
    Silence is not content: pauses and dead air neither add nor take away.
    """
    seconds = {label: 0.0 for label in ("voice", "song", "noise")}
    for segment in segments:
        if segment.label in seconds:
            seconds[segment.label] += segment.duration
    content = sum(seconds.values())
    if content <= 0:
        return 0.0
    talk = [s.seconds for s in speakers or () if s.seconds > 0]
    top_voice = min(max(talk), seconds["voice"]) if talk else seconds["voice"]
    main = max(top_voice, seconds["song"], seconds["noise"])
    mixed = max(1.0 - main / content, music_under_voice * seconds["voice"] / content)
    return min(1.0, content / GENRE_FULL_CONTENT_S) * _ramp(mixed, 0.0, GENRE_FULL_MIX)


def infer_genre(shares: dict[str, float], speakers: Sequence[SpeakerSummary] | None, *,
                music_under_voice: float = 0.0, evidence: float = 1.0) -> Genre:
    """Score each genre by a documented rule over the composition and return the best.

    Rules (each score in [0, 1]; ramps are linear between the two numbers):

    - music_show: song share ramps 0.30 → 0.60.
    - interview: voice share ramps 0.45 → 0.75; two speakers (three: ×0.6, else ×0.25); little music
      (music, counting music under speech, ramps down 0.10 → 0.30); talk not monopolised (the top speaker's
      share of speech ramps down 0.75 → 0.95).
    - documentary: voice share ramps 0.30 → 0.60; one dominant narrator (top share ramps 0.60 → 0.85);
      a music bed (share of speech over music ramps 0.10 → 0.40, or song share ramps 0.05 → 0.20).
    - drama: several speakers (count ramps 1.5 → 3); music and noise present (their sum ramps 0.10 → 0.30);
      not mostly music (song share ramps down 0.40 → 0.70); some speech (voice share ramps 0.20 → 0.40).
    - other: a constant 0.15.

    Each score is then its share of the summed scores, drawn towards an even split (1/5 each) by the want of
    ``evidence``: ``evidence × share + (1 − evidence) / 5``. The label is the rules' winner and the confidence its
    score: the winner's share of the summed scores on full evidence, 0.2 (a guess among five) on none.

    Parameters
    ----------
    shares : dict
        Stage-1 label shares of the whole duration.
    speakers : sequence of SpeakerSummary, or None
        None (not counted: stage 2 did not run, ``--no-gender --no-speakers``): the speaker terms are not known,
        so each counts a neutral 0.5 instead of 0 (no speakers would read as "not a drama" and make a confident
        "other"); the genre then rests on the composition alone, with a lower confidence.
    music_under_voice : float
        Share of voice time with music detected underneath it (a music bed).
    evidence : float
        How much the composition shows, in [0, 1] (:func:`genre_evidence`); 1 takes the rules at their word.
    """
    voice, song, noise = shares.get("voice", 0.0), shares.get("song", 0.0), shares.get("noise", 0.0)
    music_total = song + music_under_voice * voice
    if speakers is None:
        pair = shared_talk = narrator = several = UNKNOWN_SPEAKER_TERM
    else:
        talk = [s.seconds for s in speakers if s.seconds > 0]
        dominance = max(talk) / sum(talk) if talk else 0.0
        pair = {2: 1.0, 3: 0.6}.get(len(talk), 0.25)
        shared_talk = 1 - _ramp(dominance, 0.75, 0.95)
        narrator = _ramp(dominance, 0.60, 0.85)
        several = _ramp(len(talk), 1.5, 3.0)
    scores = {
        "music_show": _ramp(song, 0.30, 0.60),
        "interview": _ramp(voice, 0.45, 0.75) * pair * (1 - _ramp(music_total, 0.10, 0.30)) * shared_talk,
        "documentary": _ramp(voice, 0.30, 0.60) * narrator
        * max(_ramp(music_under_voice, 0.10, 0.40), _ramp(song, 0.05, 0.20)),
        "drama": several * _ramp(song + noise, 0.10, 0.30) * (1 - _ramp(song, 0.40, 0.70))
        * _ramp(voice, 0.20, 0.40),
        "other": OTHER_SCORE,
    }
    total = sum(scores.values())
    normalised = {genre: scores[genre] / total for genre in GENRES}
    best = max(normalised, key=normalised.get)
    # the rules' zeros are zeros for want of anything else to read as often as evidence against a genre: without
    # a composition to read, the winner's share is no certainty, so it is drawn towards the even split
    weight = float(np.clip(evidence, 0.0, 1.0))
    drawn = normalised if weight >= 1.0 else {genre: weight * share + (1.0 - weight) / len(GENRES)
                                              for genre, share in normalised.items()}
    return Genre(label=best, confidence=drawn[best], scores=drawn)


def summarize(segments: Sequence[Segment], duration: float, speakers: Sequence[SpeakerSummary] | None, *,
              music_under_voice: float = 0.0, gender: bool = True,
              counted: Sequence[SpeakerSummary] | None = None) -> Summary:
    """The composition summary of one analysed video.

    ``speakers`` None (diarization switched off) and ``gender`` false (gender switched off) leave the summary's
    ``speakers`` and ``gender_shares`` / ``gender_unknown_share`` None: not known, rather than empty or zero. The
    genre is None (unknown) when there is less than :data:`GENRE_MIN_CONTENT_S` of anything but silence to judge,
    and judged on :func:`programme_shares` (without dead air) otherwise, with ``speakers``, or where they are
    None the speakers ``counted`` (told apart with their ids switched off: ``--no-speakers`` still clusters them
    to decide gender per speaker; None too when stage 2 did not run: the speaker terms are then unknown), its
    scores drawn towards an even split where the content is short or one sound throughout (:func:`genre_evidence`).
    """
    shares = label_shares(segments, duration)
    content = sum(s.duration for s in segments if s.label != "silence")
    told = speakers if speakers is not None else counted
    # the summary's shares are of the whole duration; the genre's, of the programme without its dead air
    genre = infer_genre(programme_shares(segments, duration), told, music_under_voice=music_under_voice,
                        evidence=genre_evidence(segments, told, music_under_voice=music_under_voice)) \
        if content >= GENRE_MIN_CONTENT_S else None
    return Summary(duration=duration, shares=shares, gender_shares=gender_shares(segments) if gender else None,
                   speakers=tuple(speakers) if speakers is not None else None, genre=genre,
                   gender_unknown_share=gender_unknown_share(segments) if gender else None)
