"""Hardware backends (installs as ``neuro.hardware``): one subpackage per target.

The Loihi 2 (Lava), SpiNNaker-style and FPGA backends consume the graph IR (``neuro.graph``);
none of them exists yet in this release.
"""
