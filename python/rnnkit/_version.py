"""The package version: the single source, read by pyproject.toml (scikit-build-core regex provider)."""
__version__ = "0.1.0"
