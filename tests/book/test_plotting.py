"""Reading metrics logs and plotting them."""

import json

import matplotlib

matplotlib.use("Agg")
import pytest  # noqa: E402

from lmbasics.book.plotting import plot_losses, read_metrics, series  # noqa: E402

RECORDS = [
    {"step": 10, "tokens_seen": 100, "wall_time_s": 1.0, "train_loss": 3.0},
    {"step": 20, "tokens_seen": 200, "wall_time_s": 2.0, "train_loss": 2.5, "val_loss": 2.7},
    {"step": 30, "tokens_seen": 300, "wall_time_s": 3.0, "train_loss": 2.0, "val_loss": 2.2},
]


def write_log(tmp_path, records=RECORDS):
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return tmp_path


def test_read_metrics_from_a_run_directory_and_select_series(tmp_path):
    records = read_metrics(write_log(tmp_path))
    assert records == RECORDS
    assert series(records, "step", "val_loss") == ([20, 30], [2.7, 2.2])
    assert series(records, "tokens_seen", "train_loss") == ([100, 200, 300], [3.0, 2.5, 2.0])


def test_plot_draws_one_line_per_run(tmp_path):
    ax = plot_losses({"a": write_log(tmp_path), "b": RECORDS}, x="wall_time_s", metric="train_loss")
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    assert list(ax.get_lines()[0].get_xdata()) == [1.0, 2.0, 3.0]
    assert ax.get_xlabel() == "wall-clock time (s)"


def test_missing_or_damaged_logs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metrics log"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\nnot json\n')
    with pytest.raises(ValueError, match="metrics.jsonl:2: not a JSON record"):
        read_metrics(tmp_path)
