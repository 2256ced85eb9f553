"""Decisions the build takes (what to collect, what the plist says, the minimum macOS, the signing order),
as plain functions that tests check on any platform; build.spec and the scripts only call them."""
