"""annotated.mp4 (analysis.annotated_video): the sample clip re-encoded frame for frame, each face's
box and label drawn in its class colour on the frames faces.csv names (and held between analysed
frames), nothing under the final name when interrupted."""
from __future__ import annotations

import numpy as np
import pytest

from fervid.analysis.annotated_video import faces_by_frame, write_annotated
from fervid.analysis.faces_csv import format_rows, header_line, read_rows
from fervid.analysis.video_file import probe_video
from fervid.errors import AnalysisOutputError, VideoError
from fervid.media.samples import SAMPLE_CLIP
from fervid.models.annotate import EMOTION_COLOURS_BGR, draw_faces
from fervid.models.faces import Faces
from tests.helpers.face_rows_factory import in_frame_order, track_rows
from tests.helpers.video_frames import read_frames

HAPPY_BOX = (100, 80, 120, 120)
SAD_BOX = (400, 100, 100, 100)


@pytest.fixture(scope="module")
def video():
    return probe_video(SAMPLE_CLIP)


@pytest.fixture(scope="module")
def faces_csv(tmp_path_factory, video):
    """every=2: track 1 happy on the analysed frames 0..98, nobody on 100..148, track 2 sad on 150..272."""
    rows = in_frame_order(track_rows(1, range(0, 100, 2), video.fps, "happy", box=HAPPY_BOX),
                          track_rows(2, range(150, 275, 2), video.fps, "sad", box=SAD_BOX, seed=1))
    path = tmp_path_factory.mktemp("analysis") / "faces.csv"
    path.write_text(header_line() + format_rows(rows))
    return path


@pytest.fixture(scope="module")
def annotated(tmp_path_factory, video, faces_csv):
    dest = tmp_path_factory.mktemp("out") / "annotated.mp4"
    reported = []
    written = write_annotated(video, read_rows(faces_csv, chunk_rows=7), dest, every=2, on_frames=reported.append)
    return dest, written, reported


def test_every_frame_is_written_at_the_videos_size(annotated, video):
    dest, written, reported = annotated
    assert written == video.frames == 275 and sum(reported) == 275
    out = read_frames(dest)
    assert len(out) == 275 and out[0].shape == (360, 640, 3)
    assert [p.name for p in dest.parent.iterdir()] == ["annotated.mp4"]  # no partial file left


def painted(source: np.ndarray, faces: Faces, emotion: str) -> np.ndarray:
    """Where ``draw_faces`` paints ``faces`` in ``emotion``'s colour on ``source`` (box and label)."""
    drawn = draw_faces(source, faces)
    return np.all(drawn == np.array(EMOTION_COLOURS_BGR[emotion], np.uint8), axis=2) & np.any(drawn != source, axis=2)


@pytest.mark.parametrize("index, expected", [(10, "happy"), (11, "happy"),  # analysed; held on the next frame
                                             (120, None), (121, None),  # analysed, no face; held empty
                                             (200, "sad"), (201, "sad")])
def test_each_face_is_drawn_in_its_class_colour_where_the_csv_says(annotated, faces_csv, index, expected):
    """Where the CSV's faces of the last analysed frame would be painted, the annotated frame shows
    their class colour (through MPEG-4's loss); where the CSV has no face, the source's pixels."""
    source, out = read_frames(SAMPLE_CLIP)[index], read_frames(annotated[0])[index]
    csv_faces = dict(faces_by_frame(read_rows(faces_csv)))
    for emotion, example in (("happy", csv_faces[0]), ("sad", csv_faces[150])):
        where = painted(source, example, emotion)
        assert where.sum() > 300
        seen = np.median(out[where].astype(int), axis=0)
        colour = np.array(EMOTION_COLOURS_BGR[emotion])
        underneath = np.median(source[where].astype(int), axis=0)
        if emotion == expected:
            assert np.array_equal(painted(source, csv_faces[index - index % 2], emotion), where)
            assert np.abs(seen - colour).sum() < 0.4 * np.abs(underneath - colour).sum(), \
                f"frame {index}: {emotion}'s box not drawn where the CSV says"
        else:
            assert np.abs(seen - underneath).max() < 20, f"frame {index}: a {emotion} box where the CSV has none"


def test_an_interrupted_run_leaves_no_file_under_the_final_name(tmp_path, video, faces_csv):
    def stop(_: int) -> None:
        raise KeyboardInterrupt

    dest = tmp_path / "annotated.mp4"
    with pytest.raises(KeyboardInterrupt):
        write_annotated(video, read_rows(faces_csv), dest, every=2, on_frames=stop)
    assert list(tmp_path.iterdir()) == []


def test_faces_after_the_videos_end_mean_the_file_changed(tmp_path, video):
    rows = track_rows(1, [10, 400], video.fps, "happy")
    with pytest.raises(VideoError, match="ends after 275 frames, but faces were found on frame 400"):
        write_annotated(video, [rows], tmp_path / "annotated.mp4", every=1)
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_destination_is_an_output_error(tmp_path, video):
    with pytest.raises(AnalysisOutputError, match="cannot write an MPEG-4 video there"):
        write_annotated(video, [], tmp_path / "missing" / "annotated.mp4", every=1)


def test_a_frame_split_across_chunks_comes_out_once_and_order_is_checked(video):
    rows = in_frame_order(track_rows(1, [3, 5], video.fps, "happy"), track_rows(2, [5, 8], video.fps, "sad"))
    chunks = [rows.take(slice(i, i + 1)) for i in range(len(rows))]
    assert [(frame, faces.track_ids.tolist()) for frame, faces in faces_by_frame(chunks)] == [
        (3, [1]), (5, [1, 2]), (8, [2])]
    with pytest.raises(ValueError, match="frame order"):
        list(faces_by_frame(chunks[::-1]))
