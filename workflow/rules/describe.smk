rule describe_target:
    output:
        directory("results/targets/{target}.zarr"),
    log:
        "logs/targets/{target}.log",
    benchmark:
        "results/benchmarks/describe_target/{target}.tsv"
    conda:
        "../../envs/sivi.yaml"
    params:
        target=registered_target,
        code=description_code_hash,
        settings=description_set_args,
    shell:
        "python -m sivi_engine describe --target {params.target:q}"
        " --target-label {wildcards.target:q} --out {output:q} {params.settings} > {log:q} 2>&1"
