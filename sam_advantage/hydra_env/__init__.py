"""Hydra configs the plugin adds to every verl run (see `sam_advantage.startup_check`)."""
