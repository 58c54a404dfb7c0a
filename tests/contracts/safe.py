"""Deploy and drive a Safe 1.4.1 multisig wallet in ape tests.

The contracts come from the Hardhat artifacts of the pinned npm package
@safe-global/safe-contracts 1.4.1, so the tests run the bytecode that Safe wallets run on
mainnet, not a mock of ERC-1271. Owners sign hashes directly (ECDSA with v = 27 or 28), which
is the signature type Safe checks with a plain `ecrecover` of the hash.
"""

import json
from dataclasses import dataclass

import ape
import eth_abi
from ape.contracts import ContractContainer, ContractInstance
from ape.utils import ZERO_ADDRESS
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from ethpm_types import ContractType
from hexbytes import HexBytes

SAFE_VERSION = "1.4.1"
SAFE_PACKAGE = "node_modules/@safe-global/safe-contracts"
ARTIFACT_PATHS = {
    "Safe": "Safe.sol/Safe.json",
    "SafeProxyFactory": "proxies/SafeProxyFactory.sol/SafeProxyFactory.json",
    "CompatibilityFallbackHandler": (
        "handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler.json"
    ),
}

# Storage slot of the fallback handler: keccak256("fallback_manager.handler.address").
FALLBACK_HANDLER_SLOT = int.from_bytes(keccak(text="fallback_manager.handler.address"), "big")

# Safe.execTransaction operation code of a plain call, as opposed to 1 for a delegatecall.
CALL_OPERATION = 0


def load_container(name):
    """Return an ape ContractContainer for the Safe contract `name`, built from its Hardhat
    artifact (ABI, creation and runtime bytecode)."""
    package = ape.project.path / SAFE_PACKAGE
    version = json.loads((package / "package.json").read_text())["version"]
    assert version == SAFE_VERSION, f"expected @safe-global/safe-contracts {SAFE_VERSION}, found {version}"

    artifact = json.loads((package / "build/artifacts/contracts" / ARTIFACT_PATHS[name]).read_text())
    contract_type = ContractType.model_validate(
        {
            "contractName": artifact["contractName"],
            "sourceId": artifact["sourceName"],
            "abi": artifact["abi"],
            "deploymentBytecode": {"bytecode": artifact["bytecode"]},
            "runtimeBytecode": {"bytecode": artifact["deployedBytecode"]},
        }
    )
    return ContractContainer(contract_type)


@dataclass(frozen=True)
class SafeDeployment:
    """The shared Safe contracts of a chain: the singleton that every Safe proxy delegates to,
    the proxy factory and the fallback handler that implements ERC-1271 for Safes."""

    singleton: ContractInstance
    proxy_factory: ContractInstance
    fallback_handler: ContractInstance

    @classmethod
    def deploy(cls, deployer):
        return cls(
            singleton=deployer.deploy(load_container("Safe")),
            proxy_factory=deployer.deploy(load_container("SafeProxyFactory")),
            fallback_handler=deployer.deploy(load_container("CompatibilityFallbackHandler")),
        )

    def create_safe(self, deployer, owners, threshold, salt_nonce=0):
        """Create a Safe proxy owned by `owners` that needs `threshold` of their signatures,
        with the CompatibilityFallbackHandler as fallback handler, and return it as a contract
        instance with the Safe ABI."""
        initializer = self.singleton.setup.encode_input(
            [owner.address for owner in owners],
            threshold,
            ZERO_ADDRESS,  # no module setup call
            b"",
            self.fallback_handler.address,
            ZERO_ADDRESS,  # no payment token
            0,  # no payment for the deployment
            ZERO_ADDRESS,  # no payment receiver
        )
        receipt = self.proxy_factory.createProxyWithNonce(
            self.singleton, initializer, salt_nonce, sender=deployer
        )
        [creation] = receipt.events.filter(self.proxy_factory.ProxyCreation)
        return ape.chain.contracts.instance_at(
            creation.proxy,
            contract_type=self.singleton.contract_type,
            fetch_from_explorer=False,
            detect_proxy=False,
        )


def fallback_handler_of(safe):
    """Return the fallback handler address stored in `safe`."""
    word = ape.chain.provider.get_storage(safe.address, FALLBACK_HANDLER_SLOT)
    return ape.convert(HexBytes(word)[-20:], ape.types.AddressType)


def safe_message_hash(safe, message):
    """Return the hash that the owners of `safe` sign to approve `message` (raw bytes).

    It is the EIP-712 hash of `SafeMessage(bytes message)` in the Safe's domain, which has only
    a chain id and the Safe's address. CompatibilityFallbackHandler.getMessageHashForSafe
    computes the same hash on-chain.
    """
    typed_data = {
        "types": {
            "EIP712Domain": [
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "SafeMessage": [{"name": "message", "type": "bytes"}],
        },
        "primaryType": "SafeMessage",
        "domain": {"chainId": ape.chain.chain_id, "verifyingContract": safe.address},
        "message": {"message": message},
    }
    signable = encode_typed_data(full_message=typed_data)
    return HexBytes(keccak(b"\x19" + signable.version + signable.header + signable.body))


def sign_hash_as_owners(owners, data_hash):
    """Return the owners' ECDSA signatures of `data_hash`, concatenated in ascending order of
    owner address, as Safe.checkSignatures requires."""
    ordered = sorted(owners, key=lambda owner: int(owner.address, 16))
    signatures = [Account.unsafe_sign_hash(data_hash, owner.private_key).signature for owner in ordered]
    return b"".join(bytes(signature) for signature in signatures)


def erc1271_signature(safe, owners, digest):
    """Return the signature by which `safe` approves the 32-byte `digest` through ERC-1271.

    Safe 1.4.1's CompatibilityFallbackHandler.isValidSignature(bytes32 hash, bytes signature)
    checks the owners' signatures of the Safe message hash of `abi.encode(hash)`, so the owners
    sign that hash, not `digest` itself.
    """
    message = eth_abi.encode(["bytes32"], [bytes(digest)])
    return sign_hash_as_owners(owners, safe_message_hash(safe, message))


def exec_transaction(safe, owners, target, data, sender):
    """Execute a call from `safe` to `target` with calldata `data`, signed by `owners` and sent
    by `sender`. Return the receipt and the Safe transaction hash that the owners signed."""
    # The value, gas fields, gas token and refund receiver are all zero, so the Safe sends no
    # ETH and pays no gas refund.
    transaction = (target, 0, data, CALL_OPERATION, 0, 0, 0, ZERO_ADDRESS, ZERO_ADDRESS)
    # `safe.nonce` is the account nonce of the address, so the Safe's own nonce() is called by name.
    safe_nonce = safe.call_view_method("nonce")
    safe_tx_hash = safe.getTransactionHash(*transaction, safe_nonce)
    signatures = sign_hash_as_owners(owners, safe_tx_hash)
    receipt = safe.execTransaction(*transaction, signatures, sender=sender)
    return receipt, HexBytes(safe_tx_hash)
