import json
import os
from pathlib import Path

import pytest

from fundtrail.deployments import (
    DEFAULT_PATH,
    ContractRecord,
    Deployment,
    DeploymentsFile,
    is_in_process,
)
from fundtrail.errors import DeploymentError

ESCROW = ContractRecord("0x5FbDB2315678afecb367f032d93F642f64180aa3", 1, "0x" + "ab" * 32)
REGISTRY = ContractRecord("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512", 2, "0x" + "cd" * 32)
USDC = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"


def local_deployment(network="ethereum:local:test", chain_id=1337):
    return Deployment(
        network=network,
        chain_id=chain_id,
        contracts={"MilestoneEscrow": ESCROW, "DonationRegistry": REGISTRY},
        tokens={"USDC": USDC},
    )


def test_save_then_load_returns_equal_deployment(tmp_path):
    deployments = DeploymentsFile(tmp_path / "deployments.json")

    deployments.save(local_deployment())

    assert deployments.load("ethereum:local:test") == local_deployment()


def test_save_writes_sorted_indented_json(tmp_path):
    path = tmp_path / "deployments.json"

    DeploymentsFile(path).save(local_deployment())

    text = path.read_text()
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert data == {
        "networks": {
            "ethereum:local:test": {
                "chain_id": 1337,
                "contracts": {
                    "DonationRegistry": {
                        "address": REGISTRY.address,
                        "block": 2,
                        "tx_hash": REGISTRY.tx_hash,
                    },
                    "MilestoneEscrow": {
                        "address": ESCROW.address,
                        "block": 1,
                        "tx_hash": ESCROW.tx_hash,
                    },
                },
                "tokens": {"USDC": USDC},
            }
        },
        "version": 1,
    }


def test_save_keeps_other_networks(tmp_path):
    deployments = DeploymentsFile(tmp_path / "deployments.json")
    sepolia = local_deployment("ethereum:sepolia:node", 11155111)
    deployments.save(sepolia)

    deployments.save(local_deployment())

    assert deployments.networks() == ["ethereum:local:test", "ethereum:sepolia:node"]
    assert deployments.load("ethereum:sepolia:node") == sepolia


def test_save_replaces_same_network(tmp_path):
    deployments = DeploymentsFile(tmp_path / "deployments.json")
    deployments.save(local_deployment(chain_id=1))

    deployments.save(local_deployment(chain_id=1337))

    assert deployments.load("ethereum:local:test").chain_id == 1337


def test_save_creates_parent_folders(tmp_path):
    path = tmp_path / "a" / "b" / "deployments.json"

    DeploymentsFile(path).save(local_deployment())

    assert path.is_file()


def test_save_leaves_no_temporary_file(tmp_path):
    DeploymentsFile(tmp_path / "deployments.json").save(local_deployment())

    assert sorted(item.name for item in tmp_path.iterdir()) == ["deployments.json"]


def test_failed_save_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "deployments.json"
    DeploymentsFile(path).save(local_deployment())
    before = path.read_text()

    def fail(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        DeploymentsFile(path).save(local_deployment("ethereum:sepolia:node", 11155111))

    assert path.read_text() == before
    assert sorted(item.name for item in tmp_path.iterdir()) == ["deployments.json"]


def test_default_path(monkeypatch):
    monkeypatch.delenv("FUNDTRAIL_DEPLOYMENTS", raising=False)

    assert DeploymentsFile().path == DEFAULT_PATH == Path(".fundtrail/deployments.json")


def test_env_var_overrides_default_path(tmp_path, monkeypatch):
    path = tmp_path / "elsewhere.json"
    monkeypatch.setenv("FUNDTRAIL_DEPLOYMENTS", str(path))

    assert DeploymentsFile().path == path


def test_explicit_path_beats_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv("FUNDTRAIL_DEPLOYMENTS", str(tmp_path / "elsewhere.json"))

    assert DeploymentsFile(tmp_path / "mine.json").path == tmp_path / "mine.json"


def test_networks_of_missing_file_is_empty(tmp_path):
    assert DeploymentsFile(tmp_path / "missing.json").networks() == []


def test_load_without_file_names_network_file_and_fix(tmp_path):
    path = tmp_path / "missing.json"

    with pytest.raises(DeploymentError) as raised:
        DeploymentsFile(path).load("ethereum:sepolia:node")

    assert str(raised.value) == (
        f"No deployments file at {path}, so nothing is recorded for network "
        "ethereum:sepolia:node. Run `fundtrail deploy --network ethereum:sepolia:node` first. Or "
        "set FUNDTRAIL_DEPLOYMENTS to the deployments file you meant."
    )


def test_load_without_file_explains_in_process_chain(tmp_path):
    path = tmp_path / "missing.json"

    with pytest.raises(DeploymentError) as raised:
        DeploymentsFile(path).load("ethereum:local:test")

    assert str(raised.value) == (
        f"No deployments file at {path}, so nothing is recorded for network ethereum:local:test. "
        "ethereum:local:test is ape's in-process chain, the default without --network, and it "
        "disappears when each command ends, so no later command can use a deployment there. "
        "Deploy to a chain that keeps running, such as the anvil of `make anvil` (see "
        "docs/local-chains.md), and pass its --network. Or set FUNDTRAIL_DEPLOYMENTS to the "
        "deployments file you meant."
    )
    assert "deploy --network ethereum:local:test" not in str(raised.value)


def test_load_unknown_network_suggests_recorded_one(tmp_path):
    path = tmp_path / "deployments.json"
    DeploymentsFile(path).save(local_deployment("ethereum:local:foundry", 31337))

    with pytest.raises(DeploymentError) as raised:
        DeploymentsFile(path).load("ethereum:local:test")

    assert str(raised.value) == (
        f"No deployment recorded for network ethereum:local:test in {path} (recorded networks: "
        "ethereum:local:foundry). Add `--network ethereum:local:foundry` to use the deployment "
        "recorded there, or set FUNDTRAIL_DEPLOYMENTS to the deployments file you meant. "
        "ethereum:local:test is ape's in-process chain, the default without --network, and it "
        "disappears when each command ends."
    )


def test_load_unknown_network_lists_every_recorded_one(tmp_path):
    path = tmp_path / "deployments.json"
    deployments = DeploymentsFile(path)
    deployments.save(local_deployment("ethereum:sepolia:node", 11155111))
    deployments.save(local_deployment("ethereum:local:foundry", 31337))

    with pytest.raises(DeploymentError) as raised:
        deployments.load("ethereum:mainnet:node")

    assert str(raised.value) == (
        f"No deployment recorded for network ethereum:mainnet:node in {path} (recorded "
        "networks: ethereum:local:foundry, ethereum:sepolia:node). Add --network with one of "
        "ethereum:local:foundry, ethereum:sepolia:node, such as `--network "
        "ethereum:local:foundry`, to use the deployment recorded there, or set "
        "FUNDTRAIL_DEPLOYMENTS to the deployments file you meant."
    )


def test_load_never_suggests_recorded_in_process_chain(tmp_path):
    path = tmp_path / "deployments.json"
    DeploymentsFile(path).save(local_deployment())

    with pytest.raises(DeploymentError) as raised:
        DeploymentsFile(path).load("ethereum:sepolia:node")

    assert str(raised.value) == (
        f"No deployment recorded for network ethereum:sepolia:node in {path} (recorded networks: "
        "ethereum:local:test). Run `fundtrail deploy --network ethereum:sepolia:node` first. Or "
        "set FUNDTRAIL_DEPLOYMENTS to the deployments file you meant."
    )


def test_load_from_empty_file_suggests_deploy(tmp_path):
    path = tmp_path / "deployments.json"
    path.write_text('{"networks": {}, "version": 1}')

    with pytest.raises(DeploymentError) as raised:
        DeploymentsFile(path).load("ethereum:local:foundry")

    assert str(raised.value) == (
        f"No deployment recorded for network ethereum:local:foundry in {path} (recorded "
        "networks: none). Run `fundtrail deploy --network ethereum:local:foundry` first. Or set "
        "FUNDTRAIL_DEPLOYMENTS to the deployments file you meant."
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[]", "has no 'networks' object"),
        ('{"networks": []}', "has no 'networks' object"),
        ('{"networks": {}, "version": 2}', "has version 2, but this FundTrail reads version 1"),
    ],
)
def test_unreadable_file_raises_deployment_error(tmp_path, content, message):
    path = tmp_path / "deployments.json"
    path.write_text(content)

    with pytest.raises(DeploymentError, match=message):
        DeploymentsFile(path).load("ethereum:local:test")
    with pytest.raises(DeploymentError, match=message):
        DeploymentsFile(path).save(local_deployment())

    assert path.read_text() == content


@pytest.mark.parametrize(
    "entry",
    [
        {"contracts": {}, "tokens": {}},
        {"chain_id": "1337", "contracts": {}, "tokens": {}},
        {
            "chain_id": 1337,
            "contracts": {"MilestoneEscrow": {"address": ESCROW.address}},
            "tokens": {},
        },
        {"chain_id": 1337, "contracts": [], "tokens": {}},
        {"chain_id": 1337, "contracts": {}, "tokens": {"USDC": 5}},
    ],
)
def test_malformed_entry_raises_deployment_error(tmp_path, entry):
    path = tmp_path / "deployments.json"
    path.write_text(json.dumps({"networks": {"ethereum:local:test": entry}, "version": 1}))

    with pytest.raises(DeploymentError) as raised:
        DeploymentsFile(path).load("ethereum:local:test")

    assert f"The ethereum:local:test entry in the deployments file {path} is malformed" in str(
        raised.value
    )
    assert str(raised.value).endswith(
        "Fix the entry, or deploy to ethereum:local:test again."
    )


def test_contract_returns_record():
    assert local_deployment().contract("MilestoneEscrow") == ESCROW


def test_contract_missing_names_fix():
    deployment = local_deployment()
    del deployment.contracts["DonationRegistry"]

    with pytest.raises(DeploymentError) as raised:
        deployment.contract("DonationRegistry")

    assert str(raised.value) == (
        "No DonationRegistry deployment recorded for network ethereum:local:test. "
        "ethereum:local:test is ape's in-process chain, the default without --network, and it "
        "disappears when each command ends, so no later command can use a deployment there. "
        "Deploy to a chain that keeps running, such as the anvil of `make anvil` (see "
        "docs/local-chains.md), and pass its --network."
    )


def test_contract_missing_on_persistent_chain_suggests_deploy():
    deployment = local_deployment("ethereum:local:foundry", 31337)
    del deployment.contracts["DonationRegistry"]

    with pytest.raises(DeploymentError) as raised:
        deployment.contract("DonationRegistry")

    assert str(raised.value) == (
        "No DonationRegistry deployment recorded for network ethereum:local:foundry. "
        "Run `fundtrail deploy --network ethereum:local:foundry` first."
    )


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        ("ethereum:local:test", True),
        ("ethereum:local:foundry", False),
        ("ethereum:sepolia:node", False),
        ("ethereum:local", False),
    ],
)
def test_is_in_process(network, expected):
    assert is_in_process(network) is expected


def test_token_address_ignores_case():
    deployment = local_deployment()

    assert deployment.token_address("usdc") == USDC
    assert deployment.token_address("DAI") is None
