rule train:
    output:
        directory("results/runs/{target}/{label}/seed{seed}/samples.zarr"),
    log:
        "logs/runs/{target}/{label}/seed{seed}/train.log",
    benchmark:
        "results/benchmarks/train/{target}/{label}/seed{seed}.tsv"
    conda:
        "../../envs/sivi.yaml"
    threads: config["threads_per_job"]
    params:
        target=registered_target,
        code=train_code_hash,
        method=method_name,
        settings=train_set_args,
        device=config["device"],
    shell:
        "python -m sivi_engine train --method {params.method:q} --label {wildcards.label:q}"
        " --target {params.target:q} --target-label {wildcards.target:q}"
        " --seed {wildcards.seed:q} --device {params.device:q}"
        " --threads {threads} --out {output:q} {params.settings} > {log:q} 2>&1"
