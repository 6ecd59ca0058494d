"""Scanned bills to text lines: readers, OpenVINO det/cls/rec engines, renderer of test bills."""
