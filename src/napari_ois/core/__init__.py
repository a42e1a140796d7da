"""Headless engine: numpy + torch only (never napari, Qt or magicgui)."""
