rule config_snapshot:
    output:
        "results/config.yaml",
    log:
        "logs/config_snapshot.log",
    benchmark:
        "results/benchmarks/config_snapshot/all.tsv"
    params:
        # a function: config strings may hold braces, which a plain string would expand
        text=lambda wildcards: config_snapshot(),
    run:
        with open(output[0], "w") as handle:
            handle.write(params.text)


rule report:
    input:
        metrics=all_metric_sets(),
        samples=all_sample_sets(),
        references=all_references(),
        descriptions=all_descriptions(),
        benchmarks=all_benchmarks(),
        anchors=anchor_files(),
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
    params:
        code=report_code_hash(),
    shell:
        "python -m sivi_engine report --metrics {input.metrics:q} --samples {input.samples:q}"
        " --references {input.references:q} --descriptions {input.descriptions:q}"
        " --config {input.config:q} --anchors {input.anchors:q}"
        " --benchmarks {input.benchmarks:q} --benchmark-root results/benchmarks"
        " --table {output.table:q} --out reports > {log:q} 2>&1"
