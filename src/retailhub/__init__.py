"""retailhub: raw retail data to a validated, documented warehouse with analytics.

The public entry point for programs is :class:`retailhub.pipeline.project.Project`;
the ``retailhub`` command line is a thin layer over it.
"""

__version__ = "0.1.0"
