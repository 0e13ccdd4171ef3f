"""Benchmark case files: each defines ``cases(in_channels, channels) -> {name: builder}``."""
