"""Hydra recipes for verl and the scripts that launch them."""
