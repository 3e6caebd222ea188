"""``smarties bench``: run the SMARTIES paper table through the project's own configs, and report it.

``smarties bench run`` executes rows of the paper table shipped with the package (``data/paper_table.yaml``, one
entry per row of the paper's evaluation table, configs from the package's ``configs/``: any working directory
works), per backbone, each in-process through TerraTorch's LightningCLI with the row's config, then records one
JSON result per row and backbone. ``smarties bench report`` turns the results into a markdown table of measured
vs published numbers (with the difference), a CSV, a JSON file and a PNG bar chart.

Three kinds of results, kept in separate folders and report sections, never mixed:

* ``real``: the paper protocol on the real datasets (``--data-root``, laid out by ``smarties data download``) with
  the official weights (``--weights DIR|FILE``, or ``--weights hub``: fetched from the Hugging Face Hub at one
  resolved commit); a row whose data or weights are missing is recorded as ``skipped: <what, where it was looked for>``.
* ``smoke`` (``--smoke``): every row end-to-end on tiny generated files in the dataset's real on-disk layout
  (:mod:`smarties_terratorch.testing`), 2-block random backbone, a few batches: proves the wiring, measures nothing.
* ``real-data`` (``--real-data``): the rows that run here on CPU on the real imagery shipped in registry packages
  (the land-cover scene, the six BigEarthNet patches); wiring checks on real pixels, not benchmarks.

The modules, one concern each:

* :mod:`~smarties_terratorch.bench.table`: the table as dataclasses, and which jobs a selection runs.
* :mod:`~smarties_terratorch.bench.config`: the one place a row's TerraTorch / LightningCLI config is built.
* :mod:`~smarties_terratorch.bench.run`: :class:`~smarties_terratorch.bench.run.BenchRun`, running rows in process
  (resume, skips, failures, atomic result files, provenance) and in parallel worker processes.
* :mod:`~smarties_terratorch.bench.report`: measured vs published, where SMARTIES stands, the chart.
* :mod:`~smarties_terratorch.bench.cli`: ``smarties bench run|report``.
"""
