"""The app layer: the `rerank` command line and launchers, above the stages (tasks) and the flows."""
