"""DocFocus benchmarks: `python -m bench [--quick] [--only SECTION ...]`."""
