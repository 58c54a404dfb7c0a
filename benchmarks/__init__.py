"""Gas benchmarks of FundTrail's contracts, measured on a throwaway anvil chain.

`python -m benchmarks gas` measures every operation and writes `docs/gas.md` and the snapshot
`benchmarks/gas-snapshot.json`. `python -m benchmarks check` measures again and fails when an
operation costs more than the snapshot allows. The Makefile's `gas` and `gas-check` targets run
both commands.
"""
