import numpy as np
import pytest

from runtime.errors import DataError
from runtime.lines import format_lines, parse_lines, read_lines_file, write_lines_file


def test_every_text_line_is_a_lane_but_the_final_newline_is_not():
    lanes = parse_lines("1 2 3 4 \n\n5 6\n")
    assert [len(l) for l in lanes] == [2, 0, 1]
    assert parse_lines("") == []
    assert len(parse_lines("1 2 3 4")) == 1  # no trailing newline


def test_round_trip_keeps_coordinates(tmp_path):
    lanes = [np.array([[532.893, 590.0], [542.567, 580.0]]), np.array([[-20.4835, 580.0], [19.3893, 570.0], [58.1682, 560.0]])]
    path = tmp_path / "a" / "b.lines.txt"
    write_lines_file(path, lanes)
    back = read_lines_file(path)
    assert len(back) == 2
    for a, b in zip(lanes, back):
        np.testing.assert_allclose(a, b, atol=1e-3)
    assert path.read_text().splitlines()[0].endswith(" ")  # CULane's trailing space


def test_format_skips_empty_lanes():
    assert format_lines([np.zeros((0, 2)), np.array([[1.0, 2.0]])]) == "1 2 \n"


@pytest.mark.parametrize(
    "text, problem",
    [("1 2 3\n", "odd number of coordinates"), ("1 2\n3 x\n", "not a number: 'x'"), ("1 nan\n", "not finite")],
)
def test_malformed_files_name_file_and_line(tmp_path, text, problem):
    path = tmp_path / "bad.lines.txt"
    path.write_text(text)
    with pytest.raises(DataError) as err:
        read_lines_file(path)
    assert str(path) in str(err.value) and problem in str(err.value)
    line = 2 if "\n3 x" in text else 1
    assert f"bad.lines.txt:{line}:" in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_lines_file(tmp_path / "nope.lines.txt")
