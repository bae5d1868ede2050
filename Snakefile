# SIVI benchmark: reference posteriors -> training -> evaluation -> report.
#   snakemake --cores all                                   (config/config.yaml)
#   snakemake --cores 2 --configfile config/smoke.yaml      (one-minute install check)
# A --configfile replaces the default config instead of merging into it.

from snakemake.utils import min_version, validate

min_version("9.0")


if not config:

    configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/describe.smk"
include: "workflow/rules/reference.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


# Writing a small YAML file or a target's description: never worth a cluster job (the SLURM
# profile submits the others).
localrules:
    config_snapshot,
    describe_target,


rule all:
    default_target: True
    input:
        "reports/index.html",
        "reports/summary.md",
        "reports/reproduction.md",
