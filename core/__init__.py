"""medkg shared records, settings, hardware probe, precision policy and model store."""
