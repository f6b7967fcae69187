"""rps-port: move the legacy RPS off MongoDB onto a mountable FastAPI package over SQL."""
__version__ = "0.1.0"
