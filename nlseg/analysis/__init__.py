"""Measurement beside the library: tables of training runs over seeds on real data."""
