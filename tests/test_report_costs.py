"""Cost tables summed from Snakemake's benchmark files."""

from __future__ import annotations

from pathlib import Path


def test_cost_tables_sum_benchmark_files(tmp_path: Path) -> None:
    from sivi_engine.report import costs

    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    jobs = {
        "train/banana/k/seed0": (10.0, 300.0),
        "train/banana/k/seed1": (14.0, 320.0),
        "train/banana/s/seed0": (5.0, 200.0),
        "evaluate/banana/k/seed0": (2.0, 150.0),
    }
    paths = []
    for job, (seconds, rss) in jobs.items():
        path = tmp_path / f"{job}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + f"{seconds}\t0:00:10\t{rss}\t1\t1\t1\t0\t0\t50\t1\n")
        paths.append(path)
    frame = costs.read_benchmarks(paths, tmp_path)
    by_rule = {row[0]: row for row in costs.cost_by_rule(frame).rows}
    assert by_rule["train"][1:] == ("3", "29.0", "9.67", "14.0", "320")
    by_method = {row[0]: row for row in costs.cost_by_method(frame).rows}
    assert by_method["k"][1:3] == ("2", "24.0") and by_method["s"][1:3] == ("1", "5.00")
    # training loops of 20 s in all: train jobs 29 s, so 9 s beyond the loops, evaluate 2 s
    split = {row[0]: row[1:] for row in costs.cost_split(frame, 20.0).rows}
    assert split["training loops"] == ("20.0", "100 %")
    assert split["train jobs beyond the loop"] == ("9.00", "45 %")
    assert split["evaluate jobs"] == ("2.00", "10 %")
    assert split["per-run overhead (train beyond the loop + evaluate)"] == ("11.0", "55 %")
