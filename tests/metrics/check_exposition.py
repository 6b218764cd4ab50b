#!/usr/bin/env python3
"""Parses metrics text from stdin with the Prometheus Python client's parsers.

    check_exposition.py openmetrics   strict OpenMetrics 1.0 parser (grouping, # EOF, le, ...)
    check_exposition.py prometheus    Prometheus text format 0.0.4 parser

Prints "ok: N families, M samples" and exits 0, or prints the parser's error and exits 1.
Exits 77 when the python3-prometheus-client package is not installed (the test then skips).
"""
import sys

try:
    from prometheus_client.openmetrics import parser as openmetrics_parser
    from prometheus_client import parser as prometheus_parser
except ImportError:
    print("python3-prometheus-client is not installed")
    sys.exit(77)


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("openmetrics", "prometheus"):
        print("usage: check_exposition.py openmetrics|prometheus")
        return 2
    text = sys.stdin.read()
    parser = openmetrics_parser if sys.argv[1] == "openmetrics" else prometheus_parser
    try:
        families = list(parser.text_string_to_metric_families(text))
    except Exception as error:  # the parsers raise ValueError and others
        print(f"invalid {sys.argv[1]} text: {error}")
        return 1
    samples = sum(len(f.samples) for f in families)
    print(f"ok: {len(families)} families, {samples} samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
