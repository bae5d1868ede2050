"""The official scripts the anchor runner knows how to drive, and the project target each
official target matches.

An entry says only how to call the authors' code from the outside: which class of the script
trains, how its config namespace is built, and what has to be switched off or supplied
(plotting, a data file the repository does not ship). Nothing of the official code is copied
here; the runner imports it from the checkout the user names with ``--repo``.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class OfficialScript:
    """How to drive one official training script.

    - ``task``: the class of the script whose ``learn()`` trains; its trained generator is
      ``task.SemiVInet`` and ``SemiVInet.sampling(num=n)`` draws from q;
    - ``config_module``: the module whose ``parse_config()`` turns ``--config NAME`` into the
      script's namespace (``""``: the script's own ``parse_config``);
    - ``task_takes_date``: the class is built as ``Task("", config=config)`` (SIVI-SM) rather
      than ``Task(config)`` (KSIVI);
    - ``plots``: how plotting is switched off from the outside: the target class's methods
      named here become no-ops (the 2-D scripts' ``contour_plot``, the diffusion's
      ``trace_plot``); with ``plots_every_visual_time`` also ``sampling.visual_time`` is set
      past the last epoch (the LR and BNN scripts plot, and print held-out scores, every
      ``visual_time`` epochs);
    - ``argv``: extra command-line arguments the script's parser expects;
    - ``config_attrs``: attributes set on the parsed config that the script reads but its
      parser does not provide;
    - ``method``: the project method the script implements (``""``: the config file's stem,
      for a repository whose configs name the method, as AISIVI's ``banana/bsivi.yml``);
    - ``root``: the folder of the checkout the script reads ``configs/`` and ``datasets/``
      from, relative to the working directory (``""``: the checkout's root);
    - ``driver``: the file beside this one that trains the script in a subprocess (run by
      the interpreter the user names for the repository: a TensorFlow or JAX environment);
    - ``configs``: for a script without config files, the names the driver takes as
      ``--config`` and the official target each one trains on (empty: YAML files under
      ``<root>/configs`` whose ``target_score`` names the target).
    """

    repository: str
    script: str
    task: str = ""
    config_module: str = ""
    task_takes_date: bool = False
    plots: tuple[str, ...] = ("contour_plot",)
    plots_every_visual_time: bool = False
    argv: tuple[str, ...] = ()
    config_attrs: tuple[tuple[str, str], ...] = ()
    method: str = ""
    root: str = ""
    driver: str = "official.py"
    configs: tuple[tuple[str, str], ...] = ()


SCRIPTS: dict[str, OfficialScript] = {
    spec.script: spec
    for spec in (
        OfficialScript(
            "longinYu/KSIVI", "sivistein_2d.py", "KernelSIVI", "utils.parse_config", method="ksivi"
        ),
        OfficialScript(
            "longinYu/KSIVI",
            "sivistein_t_student.py",
            "KernelSIVI",
            "utils.parse_config",
            method="ksivi",
        ),
        OfficialScript(
            "longinYu/KSIVI",
            "sivistein_lr.py",
            "KernelSIVI_lr",
            "utils.parse_config",
            plots=(),
            plots_every_visual_time=True,
            # run.sh passes --baseline_sample (read for plots only), which KSIVI's
            # utils/parse_config.py does not accept: set on the config instead
            config_attrs=(("baseline_sample", "SGLD_trace/parallel_SGLD_LRwaveform.pt"),),
            method="ksivi",
        ),
        # the diffusion: timed only (speed.py), its full length is hours here; the BNN (~45 min
        # per seed at full length on one thread) is scored on its own split (official_split.py)
        OfficialScript(
            "longinYu/KSIVI",
            "sivistein_langevin_post.py",
            "KernelSIVI_langevin",
            "utils.parse_config",
            plots=("trace_plot",),
            plots_every_visual_time=True,
            method="ksivi",
        ),
        OfficialScript(
            "longinYu/KSIVI",
            "sivistein_bnn.py",
            "KernelSIVI_bnn",
            "utils.parse_config",
            plots=(),
            plots_every_visual_time=True,
            method="ksivi",
        ),
        OfficialScript(
            "longinYu/SIVISM", "sivism_2d.py", "SIVISM", task_takes_date=True, method="sivi_sm"
        ),
        OfficialScript(
            "longinYu/SIVISM",
            "sivism_bnn.py",
            "SIVISM",
            task_takes_date=True,
            plots=(),
            plots_every_visual_time=True,
            method="sivi_sm",
        ),
        OfficialScript(
            "longinYu/SIVISM",
            "sivism_lr.py",
            "SIVISM",
            task_takes_date=True,
            plots=(),
            plots_every_visual_time=True,
            argv=("--baseline_sample", "SGLD_LR/parallel_SGLD_LRwaveform.pt"),
            method="sivi_sm",
        ),
        # AISIVI's scripts are functions main(config, res_path[, log_file]) of one run.py per
        # experiment, with configs/<target>/<method>.yml (toys) or configs/<method>.yml (LR)
        OfficialScript(
            "tpielok/AISIVI",
            "experiments/toy_examples/run.py",
            root="experiments/toy_examples",
            driver="official_aisivi.py",
        ),
        OfficialScript(
            "tpielok/AISIVI",
            "experiments/bayes_log_reg/run.py",
            root="experiments/bayes_log_reg",
            driver="official_aisivi.py",
        ),
        # SIVI's TensorFlow 1 scripts: flat, no config files; run under tf.compat.v1 by
        # official_sivi.py (a TensorFlow 2 interpreter), the config naming the target
        OfficialScript(
            "mingzhang-yin/SIVI",
            "SIVI_2d.py",
            method="sivi",
            driver="official_sivi.py",
            configs=(("banana", "sivi_banana"), ("xshape", "sivi_xshape"), ("gmm2d", "sivi_gmm2d")),
        ),
        # reads ./waveform.mat: run in the checkout's data/, which ships it
        OfficialScript(
            "mingzhang-yin/SIVI",
            "SIVI_LR.py",
            method="sivi",
            root="data",
            driver="official_sivi.py",
            configs=(("waveform", "sivi_waveform"),),
        ),
        # pvi (JAX): the config is <problem>-<algorithm>, one (problem, algorithm) of the
        # script's grid, run by official_pvi.py as the script runs it (rerun 0 of --seed)
        OfficialScript(
            "jenninglim/pvi",
            "scripts/sec_5.2/run.py",
            driver="official_pvi.py",
            configs=tuple(
                (f"{problem}-{algorithm}", f"pvi_{problem}")
                for problem in ("banana", "multimodal", "xshape")
                for algorithm in ("pvi", "sm", "svi", "uvi")
            ),
        ),
        OfficialScript(
            "jenninglim/pvi",
            "scripts/sec_5.3/runner.py",
            driver="official_pvi.py",
            configs=tuple(
                (f"waveform-{algorithm}", "pvi_waveform")
                for algorithm in ("pvi", "sm", "svi", "uvi")
            ),
        ),
    )
}


@dataclasses.dataclass(frozen=True)
class TargetMatch:
    """The project target with the same density as an official target, and how they relate."""

    target: str
    note: str
    #: the official target reads ``datasets/waveform.mat``: the runner supplies the split
    needs_waveform: bool = False
    #: a target of the same size but not the same posterior: its runs are timed, not scored
    timed_only: bool = False
    #: scored on the official script's own data split (:mod:`official_split`), not against a
    #: project reference: the BNN's held-out RMSE and log-likelihood
    official_split: bool = False


#: Official ``target_score`` → project target. The 2-D densities are checked numerically by
#: the runner (the official ``logp`` against the project's ``log_prob`` at the reference's
#: draws, up to a constant) and the result is stored with every anchor run.
TARGETS: dict[str, TargetMatch] = {
    "banana": TargetMatch(
        "banana",
        "(x1, x2 + x1^2 + 1) ~ N(0, [[1, .9], [.9, 1]]) in KSIVI, SIVI-SM and AISIVI alike "
        "(measured: their log-densities agree with the project's to float32 round-off); SIVI's "
        "banana is another density (project target banana_sivi)",
    ),
    "multimodal": TargetMatch("multimodal", "equal mixture of N((+-2, 0), I)"),
    "x_shaped": TargetMatch("x_shaped", "equal mixture of N(0, [[2, +-1.8], [+-1.8, 2]])"),
    "student_uc": TargetMatch(
        "student_t2d", "2-D Student-t, df 2, unit-determinant mixing matrix from seed 50"
    ),
    "LRwaveform": TargetMatch(
        "blr_waveform",
        "logistic regression, N(0, 100 I) prior, on the 400/4600 waveform split (the file the "
        "runner is given; KSIVI's repository does not ship it)",
        needs_waveform=True,
    ),
    "Langevin_post": TargetMatch(
        "diffusion",
        "KSIVI's conditioned diffusion: 100 steps, 20 noisy observations of a path it simulates "
        "itself (torch seed 2022); the project's diffusion draws its own path",
        timed_only=True,
    ),
    "Bnn_boston": TargetMatch(
        "bnn_boston",
        "KSIVI's and SIVI-SM's BNN on Boston housing (13 features, 50 hidden units, 751 "
        "parameters, the project's θ layout), the project's model; their data split is their "
        "own (scikit-learn's train_test_split, random_state 42: 455 / 51 rows, of which the "
        "last 46 training rows are a dev set, so 409 train the network; standardised on those "
        "409 with sd ddof 1) and their log γ, log λ are their own (KSIVI −2.556 / −1.004, "
        "SIVI-SM −2.552 / −0.981): scored this project's way on that split, not against the "
        "project's reference (its splits are the protocol's 20)",
        official_split=True,
    ),
    "sivi_banana": TargetMatch(
        "banana_sivi",
        "SIVI_2d.py's banana: x1 ~ N(0, 2^2), x2 | x1 ~ N(x1^2/4, 1) (the density check compares "
        "the script's log_P)",
    ),
    "sivi_xshape": TargetMatch("x_shaped", "SIVI_2d.py's Xshape: the same X-shaped mixture"),
    "sivi_gmm2d": TargetMatch("multimodal", "SIVI_2d.py's gmm2d: equal mixture of N((+-2, 0), I)"),
    "sivi_waveform": TargetMatch(
        "blr_waveform",
        "SIVI_LR.py: prior N(0, I/alpha), alpha = 0.01 (= N(0, 100 I)) on all 22 coefficients "
        "(intercept included), likelihood on all 400 training points (labels recoded to +-1, "
        "the same likelihood); it reads the data/waveform.mat its repository ships, whose "
        "X_train, y_train, X_test, y_test equal the project's waveform split",
    ),
    "pvi_banana": TargetMatch(
        "banana_sivi", "pvi's Banana: x1 ~ N(0, 2^2), x2 | x1 ~ N(x1^2/4, 1), as SIVI's"
    ),
    "pvi_multimodal": TargetMatch(
        "multimodal4",
        "pvi's Multimodal: weights 1/8, 1/8, 1/2, 1/4 at (2, 2), (-2, -2), (2, -2), (-2, 2), "
        "covariance I",
    ),
    "pvi_xshape": TargetMatch("x_shaped", "pvi's XShape: the same X-shaped mixture"),
    "pvi_waveform": TargetMatch(
        "blr_waveform",
        "pvi's Waveform: prior N(0, 1/alpha), alpha = 0.01 (= N(0, 100 I)) on all 22 "
        "coefficients, labels 0/1, N x mean log-likelihood over the subsample (n_subsample 400 "
        "= all training points); it reads the data/waveform/waveform.mat its repository "
        "ships, byte-identical to SIVI's, whose arrays equal the project's split",
    ),
}


#: Official codes and configurations not run here at full length, and why (measured).
NOT_RUNNABLE: dict[str, str] = {
    "longinYu/KSIVI sivistein_2d.py with train.ustat: true (the U-statistic its configs offer)": (
        "fails in the official script: its U-statistic branch calls loss.backward(), then the "
        "common path calls it again on the freed graph (RuntimeError: Trying to backward "
        "through the graph a second time); running it needs a change to the authors' code"
    ),
    "tpielok/AISIVI experiments/bayes_log_reg (aisivi.yml, bsivi.yml)": (
        "aisivi.yml's inner batch of 9182 importance samples was killed at 22.6 GB of this "
        "machine's 24 GB in its first iteration (with the inner batch cut to 2296: 4.5 s and "
        "7.3 GB per iteration, so >= 50 h for the shipped 10k); bsivi.yml: 4.5 s of CPU per "
        "iteration measured, ~12 h per seed. Both need a GPU."
    ),
    "tpielok/AISIVI experiments/toy_examples banana/aisivi.yml": (
        "2.2 s of CPU per iteration measured (its conditional RealNVP over 1000 inner draws): "
        "~2.4 h per seed at the shipped 4000 iterations"
    ),
    "jenninglim/pvi scripts/sec_5.2/run.py (pvi, svi, uvi on banana, multimodal, xshape)": (
        "seconds per 1000 updates on one shared core, measured: PVI 63-78, SVI 227-331, UVI "
        "~1550 (SM 12-21); at the shipped 15000 updates that is 16-20 min (PVI), 57-83 min "
        "(SVI) and ~6.5 h (UVI) per problem and seed, ~3 h, ~10 h and ~58 h for 3 problems x 3 "
        "seeds. run.py's own metrics add ~25 min per cell (100 mmdfuse tests of 15 s); the "
        "anchors skip them"
    ),
    "jenninglim/pvi scripts/sec_5.3/runner.py (waveform-pvi, waveform-svi, waveform-uvi)": (
        "seconds per 1000 full-batch steps on one shared core, measured: PVI 3366, SVI 244, "
        "UVI 1230 (SM 5.6); at the shipped 20000 steps ~18.7 h (PVI), ~81 min (SVI) and ~6.8 h "
        "(UVI) per seed"
    ),
    "franrruiz/uivi (MATLAB; banana, gaussmix xshape/multimodal, usivi and sivi)": (
        "runs in Octave 7.3 (Debian) unchanged through training, but the toy runs save no "
        "draws (plot_toy.m only prints a PDF: a save hook in a copy is needed) and the tail "
        "needs MATLAB's Financial Toolbox tsmovavg and a graphics toolkit; 18 s per 1000 "
        "iterations measured on banana (usivi, one shared core), ~15 min per seed at the "
        "shipped 50000; its seed is fixed in main_demo.m and Octave's streams differ from "
        "MATLAB's. Its banana (E x2 = -2) is the project's banana, not SIVI's"
    ),
}
