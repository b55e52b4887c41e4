"""The measurements `offline-assistants bench` runs on the user's model and machine (truncation, throughput,
time to first token), each against a baseline in the same run; benchmarks/ holds thin scripts over the same code."""
