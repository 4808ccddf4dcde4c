"""The version of archdsl, for the renderers' footers and `archdsl --version` (its own module: a stage
importing the root package would import every stage)."""
__version__ = "0.1.0"
