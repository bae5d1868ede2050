"""The benchmark's steps, one module each: ``reference``, ``train``, ``evaluate``.

The command line imports the module of the command it runs (the report's is
:mod:`sivi_engine.report`), and nothing imports these modules together, so a job's code hash
(:mod:`sivi_engine.provenance`) covers its own step's imports only: editing the evaluation
step does not rerun training.
"""
