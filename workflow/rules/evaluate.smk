rule evaluate:
    input:
        samples="results/runs/{target}/{label}/seed{seed}/samples.zarr",
        reference="results/reference/{target}.zarr",
    output:
        directory("results/runs/{target}/{label}/seed{seed}/metrics.zarr"),
    log:
        "logs/runs/{target}/{label}/seed{seed}/evaluate.log",
    benchmark:
        "results/benchmarks/evaluate/{target}/{label}/seed{seed}.tsv"
    conda:
        "../../envs/sivi.yaml"
    threads: config["threads_per_job"]
    params:
        code=evaluation_code_hash,
        settings=evaluation_set_args,
        device=config["device"],
    shell:
        "python -m sivi_engine evaluate --samples {input.samples:q} --reference {input.reference:q}"
        " --device {params.device:q} --threads {threads} --out {output:q} {params.settings}"
        " > {log:q} 2>&1"
