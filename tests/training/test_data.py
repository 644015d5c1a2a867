import gzip
import os

import numpy as np
import pytest

from fervid.training.data import DataError, load_fer2013, load_ferplus_votes, validation_mask
from tests.conftest import FERPLUS_SAMPLE, SAMPLE_CSV

GOOD_ROW = "3," + " ".join(["128"] * 2304) + ",Training\n"
HEADER = "emotion,pixels,Usage\n"


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_loads_the_sample_and_filters_by_usage():
    everything = load_fer2013(SAMPLE_CSV)
    assert len(everything) == 600
    public = load_fer2013(SAMPLE_CSV, usage="PublicTest")
    assert len(public) == 80 and set(public.usage) == {"PublicTest"}
    assert public.pixels.shape == (80, 48, 48) and public.pixels.dtype == np.uint8
    assert public.rows[0] == 520  # position in the file, not in the split
    assert len(load_fer2013(SAMPLE_CSV, usage="Training", limit=10)) == 10


def test_plain_csv_and_gzip_give_the_same_rows(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_bytes(gzip.decompress(SAMPLE_CSV.read_bytes()))
    a, b = load_fer2013(plain), load_fer2013(SAMPLE_CSV)
    assert np.array_equal(a.pixels, b.pixels) and np.array_equal(a.labels, b.labels)


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("label,pixels,Usage\n" + GOOD_ROW, "expected header"),
    (HEADER + GOOD_ROW + "3,1 2 3,Training\n", ":3: expected 2304 pixel values, got 3"),
    (HEADER + GOOD_ROW.replace("3,", "9,", 1), ":2: emotion 9 is outside 0..6"),
    (HEADER + GOOD_ROW.replace("3,", "x,", 1), ":2: emotion 'x' is not an integer"),
    (HEADER + GOOD_ROW.replace("128 128", "128 abc", 1), ":2: pixels contain a non-integer"),
    (HEADER + GOOD_ROW.replace("128 128", "128 300", 1), ":2: pixel values must lie in 0..255"),
    (HEADER + GOOD_ROW.replace("Training", " "), ":2: empty Usage"),
    (HEADER + "3,128\n", ":2: expected 3 columns"),
])
def test_malformed_csv_names_the_line(tmp_path, text, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_fer2013(write(tmp_path, text))


def test_truncated_gzip_is_a_clear_error(tmp_path):
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(SAMPLE_CSV.read_bytes()[:50000])
    with pytest.raises(DataError, match="cannot read|expected"):
        load_fer2013(path)


def test_missing_file_and_unknown_split(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_fer2013(tmp_path / "absent.csv")
    with pytest.raises(DataError, match=r"no rows with Usage 'Validation' \(its Usage values: PublicTest, Training\)"):
        load_fer2013(SAMPLE_CSV, usage="Validation")


def test_any_usage_name_is_a_split_of_its_own(tmp_path):
    """Data of one's own in the same format names its splits as it likes; --split selects by that name."""
    text = HEADER + GOOD_ROW.replace("Training", "Clinic-A") + GOOD_ROW.replace("3,", "5,", 1).replace("Training", "Val")
    path = write(tmp_path, text)
    everything = load_fer2013(path)
    assert everything.usage.tolist() == ["Clinic-A", "Val"]
    assert load_fer2013(path, usage="Val").labels.tolist() == [5]
    assert everything.split("Clinic-A").labels.tolist() == [3]
    with pytest.raises(DataError, match=r"its Usage values: Clinic-A, Val"):
        everything.split("Training")


def test_ferplus_votes_align_by_position_and_sum_to_one():
    data = load_fer2013(SAMPLE_CSV, usage="Training")
    votes = load_ferplus_votes(FERPLUS_SAMPLE, data)
    assert votes.shape == (520, 7)
    usable = ~np.isnan(votes).any(axis=1)
    assert usable.mean() > 0.9
    assert np.allclose(votes[usable].sum(axis=1), 1.0)
    # FER+ majorities agree with the FER2013 label for most images (they relabel the same pictures).
    assert (votes[usable].argmax(1) == data.labels[usable]).mean() > 0.6


def test_ferplus_misaligned_usage_is_refused():
    data = load_fer2013(SAMPLE_CSV)  # includes PublicTest rows beyond the FER+ sample
    with pytest.raises(DataError, match="needs"):
        load_ferplus_votes(FERPLUS_SAMPLE, data)


def test_validation_mask_is_fixed_stratified_and_disjoint():
    labels = load_fer2013(SAMPLE_CSV, usage="Training").labels
    a, b = validation_mask(labels), validation_mask(labels)
    assert np.array_equal(a, b)
    assert 0.08 < a.mean() < 0.13
    assert set(labels[a]) == set(labels)
    assert not np.array_equal(a, validation_mask(labels, seed=1))


def test_gzip_is_recognised_by_its_bytes_not_its_name(tmp_path):
    """A gzip named in capitals (``DATA.CSV.GZ``, as some systems write names) or without ``.gz``
    is read as gzip; a plain CSV that is only named ``.gz`` is read as plain text."""
    reference = load_fer2013(SAMPLE_CSV)
    upper = tmp_path / "DATA.CSV.GZ"
    upper.write_bytes(SAMPLE_CSV.read_bytes())
    unnamed = tmp_path / "data.bin"
    unnamed.write_bytes(SAMPLE_CSV.read_bytes())
    misnamed = tmp_path / "plain.csv.gz"
    misnamed.write_bytes(gzip.decompress(SAMPLE_CSV.read_bytes()))
    for path in (upper, unnamed, misnamed):
        assert np.array_equal(load_fer2013(path).labels, reference.labels), path.name


def test_a_folder_or_a_pipe_is_named_for_what_it_is(tmp_path):
    """Not "no such file" for a folder that exists; a named pipe is refused before it is opened
    (opening one blocks until a writer comes)."""
    with pytest.raises(DataError, match=f"^{tmp_path}: is a directory, not a CSV file$"):
        load_fer2013(tmp_path)
    pipe = tmp_path / "data.csv"
    os.mkfifo(pipe)
    with pytest.raises(DataError, match="data.csv: is a named pipe, not a CSV file$"):
        load_fer2013(pipe)
