import subprocess
import sys

from dramapic.cli import build_parser
from conftest import REPO, SAMPLE


def test_parser_defaults():
    args = build_parser().parse_args(["run", "movie.mp4"])
    assert (args.format, args.soft_subs, args.no_video, args.overwrite, args.audio_track) == ("srt", False, False,
                                                                                               False, 0)


def test_soft_subs_and_no_video_are_exclusive():
    done = subprocess.run([sys.executable, "-m", "dramapic", "run", str(SAMPLE), "--soft-subs", "--no-video"],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "not allowed with" in done.stderr


def test_run_prints_where_outputs_are_and_quiet_prints_nothing(tmp_path):
    tmp_path = tmp_path / "new" / "out"  # created on demand
    done = subprocess.run([sys.executable, "-m", "dramapic", "run", str(SAMPLE), "-o", str(tmp_path),
                           "--no-video"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert str(tmp_path / "drama_sample.srt") in done.stdout
    assert done.stderr == ""  # not a TTY: no progress bars
    again = subprocess.run([sys.executable, "-m", "dramapic", "run", str(SAMPLE), "-o", str(tmp_path),
                            "--no-video", "--overwrite", "--quiet"], capture_output=True, text=True, cwd=REPO)
    assert again.returncode == 0 and again.stdout == "" and again.stderr == ""
