"""Breakdown of a transaction's gas by kind of work, read from anvil's step-by-step trace."""

from dataclasses import dataclass

from web3 import Web3

from benchmarks.chain import TRANSACTION_GAS_LIMIT, BenchmarkError

MAX_REFUND_QUOTIENT = 5
"""Since the London hard fork (EIP-3529), a refund is at most a fifth of the gas used."""

# Opcodes grouped as docs/gas.md reports them. A call's figure includes everything the callee
# does, so a token transfer's storage writes count under calls, not under storage writes.
CATEGORIES = {
    "SSTORE": "storage writes",
    "SLOAD": "storage reads",
    "LOG0": "events",
    "LOG1": "events",
    "LOG2": "events",
    "LOG3": "events",
    "LOG4": "events",
    "CALL": "calls",
    "STATICCALL": "calls",
    "DELEGATECALL": "calls",
}


@dataclass(frozen=True)
class Breakdown:
    """A transaction's gas by kind of work. The parts add up to the receipt's gasUsed."""

    intrinsic: int
    """21,000 per transaction plus 4 per zero byte and 16 per non-zero byte of calldata."""

    storage_writes: tuple[int, int]
    """Count and gas of SSTORE, including the cold-slot surcharge when a write comes first."""

    storage_reads: tuple[int, int]
    events: tuple[int, int]
    calls: tuple[int, int]
    """Count and gas of calls made by the contract called, with all the callee's own work."""

    other: int
    """Every other opcode: arithmetic, hashing, memory, jumps."""

    refund: int
    """Gas given back for storage reset to its value at the start of the transaction."""

    @property
    def total(self) -> int:
        parts = (self.storage_writes, self.storage_reads, self.events, self.calls)
        return self.intrinsic + sum(gas for _, gas in parts) + self.other - self.refund


def trace(w3: Web3, tx_hash: bytes) -> Breakdown:
    """Trace the mined transaction `tx_hash` and return its breakdown.

    Needs an anvil started with step tracing. Raise `BenchmarkError` when the refund that the
    receipt implies differs from the trace's refund counter, which would mean a misread trace.
    """
    response = w3.provider.make_request(
        "debug_traceTransaction",
        [
            Web3.to_hex(tx_hash),
            {"disableStack": True, "disableMemory": True, "disableStorage": True},
        ],
    )
    steps = response["result"]["structLogs"]
    if not steps:
        raise BenchmarkError("anvil returned no trace steps. Start it with step tracing.")

    top = [step for step in steps if step["depth"] == 1]
    totals: dict[str, list[int]] = {}
    for step, following in zip(top, top[1:] + [None], strict=True):
        # The gas a step used is the drop to the next step at the same depth. For a call,
        # that drop includes the callee's execution, which the step's own gasCost does not show.
        used = step["gas"] - following["gas"] if following else step["gasCost"]
        category = CATEGORIES.get(step["op"], "other")
        count_and_gas = totals.setdefault(category, [0, 0])
        count_and_gas[0] += 1
        count_and_gas[1] += used

    receipt = w3.eth.get_transaction_receipt(tx_hash)
    intrinsic = TRANSACTION_GAS_LIMIT - top[0]["gas"]
    executed = top[0]["gas"] - (top[-1]["gas"] - top[-1]["gasCost"])
    refund = intrinsic + executed - receipt["gasUsed"]

    def part(category: str) -> tuple[int, int]:
        count, gas = totals.get(category, (0, 0))
        return count, gas

    breakdown = Breakdown(
        intrinsic=intrinsic,
        storage_writes=part("storage writes"),
        storage_reads=part("storage reads"),
        events=part("events"),
        calls=part("calls"),
        other=part("other")[1],
        refund=refund,
    )
    # EIP-3529 caps the refund at a fifth of the gas used before the refund.
    expected_refund = min(top[-1]["refund"], (intrinsic + executed) // MAX_REFUND_QUOTIENT)
    if refund != expected_refund:
        raise BenchmarkError(
            f"The trace of {Web3.to_hex(tx_hash)} implies a refund of {refund:,} gas, but its "
            f"refund counter gives {expected_refund:,}. Check how benchmarks/breakdown.py reads "
            "traces."
        )
    return breakdown
