rule reference:
    output:
        directory("results/reference/{target}.zarr"),
    log:
        "logs/reference/{target}.log",
    benchmark:
        "results/benchmarks/reference/{target}.tsv"
    conda:
        "../../envs/sivi.yaml"
    threads: config["threads_per_job"]
    params:
        target=registered_target,
        code=reference_code_hash,
        engine=reference_engine,
        settings=reference_set_args,
    shell:
        "python -m sivi_engine reference --target {params.target:q}"
        " --target-label {wildcards.target:q} --engine {params.engine:q}"
        " --threads {threads} --out {output:q} {params.settings} > {log:q} 2>&1"
