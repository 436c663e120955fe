"""sparsgd.experiments: the papers' studies as named experiments with smoke and full sizes.

    from sparsgd.experiments.runner import run_experiment
    results = run_experiment("gtopk-delta", "out/delta", smoke=True)

``registry`` lists them (``EXPERIMENTS``); each module holds one study's config and run;
``results`` is the ``results.json`` they write. See docs/experiments.md.
"""
