"""An anvil process and a minimal JSON-RPC client for the benchmarks.

The benchmarks talk to anvil with plain JSON-RPC over one `requests` session, so that the time
spent generating a chain goes into anvil and signing, not into web3's formatters.
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
ANVIL_FROM_NPM = ROOT / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"

BLOCK_TIME = 12
"""Seconds between blocks, as on Ethereum mainnet, so that deadlines pass at a realistic pace."""

BLOCK_GAS_LIMIT = 100_000_000
"""Gas per block. Above mainnet's 30 million (as of 2024) so that a block holds every
transaction sent for it even at the benchmark's fixed, generous per-transaction gas limits."""


class RpcError(Exception):
    """The node answered a JSON-RPC request with an error."""


class Rpc:
    """JSON-RPC over HTTP to one node, with batches."""

    def __init__(self, url: str, timeout: float = 120.0):
        self.url = url
        self.timeout = timeout
        self._session = requests.Session()
        # Local chains only: the proxy variables that the project's commands set must not
        # catch these requests.
        self._session.trust_env = False
        self._next_id = 0

    def call(self, method: str, *params):
        """Send one request and return its result, or raise `RpcError`."""
        return self.batch([(method, list(params))])[0]

    def batch(self, calls: list[tuple[str, list]]) -> list:
        """Send the requests as one JSON-RPC batch and return the results in order."""
        if not calls:
            return []
        payload = []
        for method, params in calls:
            self._next_id += 1
            payload.append({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        response = self._session.post(self.url, data=json.dumps(payload), timeout=self.timeout,
                                      headers={"Content-Type": "application/json"})
        response.raise_for_status()
        answers = {answer["id"]: answer for answer in response.json()}
        results = []
        for request in payload:
            answer = answers[request["id"]]
            if "error" in answer:
                raise RpcError(f"{request['method']} failed: {answer['error']}")
            results.append(answer["result"])
        return results


def anvil_program() -> str:
    """Return the anvil executable: the npm package's binary, or the one on PATH."""
    if ANVIL_FROM_NPM.exists():
        return str(ANVIL_FROM_NPM)
    found = shutil.which("anvil")
    if found is None:
        raise FileNotFoundError(f"No anvil at {ANVIL_FROM_NPM} or on PATH. Run `make setup` first.")
    return found


class Anvil:
    """An anvil process on 127.0.0.1, started and stopped as a context manager.

    Mining is manual (`--no-mining`): the generator sends a block's transactions to the pool and
    then mines them together, as a real chain packs many transactions into one block.
    """

    def __init__(self, port: int, *, load_state: Path | None = None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.load_state = load_state
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Anvil":
        command = [
            anvil_program(),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--hardfork", "shanghai",
            "--gas-limit", str(BLOCK_GAS_LIMIT),
            "--no-mining",
            "--silent",
        ]
        if self.load_state is not None:
            command += ["--load-state", str(self.load_state)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        rpc = Rpc(self.url, timeout=2)
        # Loading a saved chain of a few thousand blocks takes a few seconds.
        for _ in range(300):
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode(errors="replace")
                raise RuntimeError(f"anvil exited with code {self.process.returncode}: {error}")
            try:
                rpc.call("eth_chainId")
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise TimeoutError(f"anvil did not answer on {self.url} within 30 s")

    def cpu_seconds(self) -> float:
        """Return the CPU time anvil has used so far, from /proc (Linux only)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 of the file, in clock ticks.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc_info) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def version() -> str:
    """Return anvil's version line, such as "anvil Version: 1.7.1"."""
    output = subprocess.run([anvil_program(), "--version"], capture_output=True, text=True, check=True)
    return output.stdout.splitlines()[0].strip()
