"""Energy estimates from a real run (``neuro energy``): counts, cost tables as data, reports.

* :mod:`.counting`: synaptic operations (ACs/MACs, effective and dense), neuron updates, spikes,
  packets and weight reads per layer, from the reference executor (NeuroBench's rules);
* :mod:`.costs`: per-event energies per target with a citation per number (``costs.json``; users
  merge their own JSON/TOML table over it);
* :mod:`.estimate`: energy per layer, component and target; SpiNNaker simulator statistics when given;
* :mod:`.report` and :mod:`.plots`: ``report.json`` (schema ``report.schema.json``), ``report.md``,
  self-contained ``report.html``;
* :mod:`.cli`: :func:`run` behind ``neuro energy CKPT [--data PATH] --out DIR``; :func:`write_report`
  for a graph in memory.
"""
from .cli import run, summary, write_report
from .costs import COST_FIELDS, CostTable, Target, load_cost_table
from .counting import Counts, PopulationCounts, SynapseCounts, count
from .estimate import COMPONENTS, TargetEnergy, estimate

__all__ = ["COMPONENTS", "COST_FIELDS", "CostTable", "Counts", "PopulationCounts", "SynapseCounts",
           "Target", "TargetEnergy", "count", "estimate", "load_cost_table", "run", "summary",
           "write_report"]
