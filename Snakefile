# SIVI benchmark: reference posteriors -> training -> evaluation -> report.
#   snakemake --cores all                                   (config/config.yaml)
#   snakemake --cores 2 --configfile config/smoke.yaml      (one-minute install check)
# A --configfile replaces the default config instead of merging into it.

import yaml
from snakemake.utils import min_version, validate

min_version("9.0")


if not config:

    configfile: "config/config.yaml"


# An unknown top-level key gets one line naming it and the allowed ones (the schema's own
# message prints the whole schema).
with open(workflow.source_path("workflow/schemas/config.schema.yaml")) as _schema:
    _allowed_keys = set(yaml.safe_load(_schema)["properties"])
if set(config) - _allowed_keys:
    raise ValueError(
        f"config: unknown key(s) {sorted(set(config) - _allowed_keys)}; allowed: "
        + ", ".join(sorted(_allowed_keys))
    )


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/describe.smk"
include: "workflow/rules/reference.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


# Every job of the grid resolved as its step will resolve it, once the run starts and before
# any job: a bad setting stops the workflow with one line per refused config entry.
onstart:
    preflight.check(run_plan())


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
