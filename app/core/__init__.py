"""Fovea's core: no printing, no exiting, no Qt. The CLI and the GUI drive it."""
