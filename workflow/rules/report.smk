rule config_snapshot:
    output:
        "results/config.yaml",
    params:
        text=config_snapshot(),
    log:
        "logs/config_snapshot.log",
    benchmark:
        "results/benchmarks/config_snapshot/all.tsv"
    run:
        with open(output[0], "w") as handle:
            handle.write(params.text)


rule report:
    input:
        metrics=all_metric_sets(),
        benchmarks=all_benchmarks(),
        config="results/config.yaml",
    output:
        html=report("reports/index.html", caption="../report/index.rst", category="Report"),
        summary="reports/summary.md",
        reproduction="reports/reproduction.md",
        figures=report(
            directory("reports/figures"),
            patterns=["{name}.png"],
            caption="../report/figure.rst",
            category="Figures",
        ),
        table=directory("results/metrics.zarr"),
        csv=report("results/metrics.csv", caption="../report/table.rst", category="Tables"),
    log:
        "logs/report.log",
    benchmark:
        "results/benchmarks/report/all.tsv"
    conda:
        "../../envs/sivi.yaml"
    shell:
        "python -m sivi_engine report --metrics {input.metrics} --config {input.config}"
        " --benchmarks {input.benchmarks} --benchmark-root results/benchmarks"
        " --table {output.table} --out reports > {log} 2>&1"
