"""The `fundtrail` command line: thin click commands over `fundtrail.client.FundTrail`.

Every command checks its input and the chain state before it sends anything. Bad input exits
with status 2 and sends nothing. A transaction that fails on-chain exits with status 1.
"""

import functools
import os
import shutil
from pathlib import Path

import click
from ape.cli import ConnectedProviderCommand, account_option, network_option
from ape.exceptions import ApeException
from rich.markup import escape

from fundtrail import __version__, render

# ape-solidity finds compilers only in SOLCX_BINARY_PATH, and `make` installs the project's
# solc-js launcher in .solcx. Without this, a compile started by a command run from the
# repository would try to download solc, which fails offline.
if "SOLCX_BINARY_PATH" not in os.environ and (Path.cwd() / ".solcx").is_dir():
    os.environ["SOLCX_BINARY_PATH"] = str(Path.cwd() / ".solcx")
# ape-foundry starts the `anvil` it finds on PATH, and `make` puts the npm package's anvil
# there. Run from the repository without make, `--network ethereum:local:foundry` would
# otherwise fail with "Missing local Foundry node client".
_NPM_ANVIL = Path.cwd() / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin"
if shutil.which("anvil") is None and (_NPM_ANVIL / "anvil").is_file():
    os.environ["PATH"] = os.pathsep.join([str(_NPM_ANVIL), os.environ.get("PATH", "")])
from fundtrail.accounts import resolve_account
from fundtrail.client import FundTrail
from fundtrail.deployments import DeploymentsFile
from fundtrail.donor import NO_DONOR_REF, donor_commitment
from fundtrail.errors import MISSING, DeploymentError, FundTrailError, SpecError
from fundtrail.evidence import hash_file, parse_hash, to_hex
from fundtrail.spec import GrantSpec
from fundtrail.units import parse_amount

EXIT_FAILED = 1
"""Exit status when the chain rejected or failed a transaction."""
EXIT_BAD_INPUT = 2
"""Exit status for invalid input, the same as click uses for usage errors. Nothing was sent."""
EXIT_UNVERIFIED = 3
"""Exit status of `attest verify` when no check failed but some cannot run offline."""


class ChainCommand(ConnectedProviderCommand):
    """A command connected to the network from `--network`, which turns errors into exit codes."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FundTrailError as error:
            render.stderr().print(f"[bold red]Error:[/] {escape(str(error))}", soft_wrap=True)
            ctx.exit(EXIT_BAD_INPUT)
        except ApeException as error:
            render.stderr().print(
                f"[bold red]Failed:[/] {escape(type(error).__name__)}: {escape(str(error))}",
                soft_wrap=True,
            )
            ctx.exit(EXIT_FAILED)


def chain_options(*, sends: bool):
    """Add `--network`, `--deployments` and, for commands that send, `--account`."""

    def decorator(function):
        function = click.option(
            "--deployments",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Deployments file. Defaults to $FUNDTRAIL_DEPLOYMENTS, "
            "else .fundtrail/deployments.json.",
        )(function)
        if sends:
            function = account_option()(function)
            # ape's account_option takes no help text, so it goes on the option just added.
            function.__click_params__[-1].help = (
                "Account that signs and pays for the transaction: an alias from `ape accounts "
                "list`, or TEST::0 to TEST::9 on local chains. Always pass it: without it, ape "
                "asks for an account interactively."
            )
        return network_option()(function)

    return decorator


def _client(deployments: Path | None) -> FundTrail:
    from ape import networks

    deployment = DeploymentsFile(deployments).load(networks.provider.network_choice)
    return FundTrail.from_deployment(deployment)


def _hash_input(file: Path | None, hex_hash: str | None, field: str) -> bytes:
    """Return the hash of `file` or the parsed `hex_hash`, whichever of the two was given."""
    options = f"--{field}-file / --{field}-hash"
    if file is None and hex_hash is None:
        raise SpecError(
            options,
            MISSING,
            "missing",
            f"Pass exactly one of them: the {field} file to hash it, or its hash as 0x and 64 "
            "hex digits.",
        )
    if file is not None and hex_hash is not None:
        raise SpecError(
            options,
            "both",
            "needs exactly one of the two",
            f"Pass the {field} file to hash it, or its hash as 0x and 64 hex digits.",
        )
    return hash_file(file) if file is not None else parse_hash(hex_hash, f"--{field}-hash")


def _donor_ref(donor_ref: str | None, salt: str | None, label: str | None) -> bytes:
    if donor_ref is not None:
        if salt is not None or label is not None:
            raise SpecError(
                "--donor-ref",
                donor_ref,
                "given together with --donor-ref-salt/--donor-label",
                "Pass only one form.",
            )
        return parse_hash(donor_ref, "--donor-ref")
    if salt is None and label is None:
        return NO_DONOR_REF
    if salt is None or label is None:
        raise SpecError(
            "--donor-ref-salt / --donor-label",
            "only one given",
            "the commitment needs both",
            "Pass the secret salt and the label together, and keep both to prove the gift later.",
        )
    try:
        salt_bytes = bytes.fromhex(salt.removeprefix("0x"))
    except ValueError:
        raise SpecError(
            "--donor-ref-salt",
            "(hidden)",
            "not hex",
            "Pass the salt as hex digits, such as secrets.token_hex(32).",
        ) from None
    return donor_commitment(salt_bytes, label)


def _print_receipt(action: str, receipt) -> None:
    render.stdout().print(render.receipt_line(action, receipt))


@click.group()
@click.version_option(__version__, prog_name="fundtrail")
def cli():
    """FundTrail: milestone grants released by attestor quorum, and transparent donations."""


@cli.command(cls=ChainCommand)
@chain_options(sends=True)
@click.option(
    "--registrar",
    help="Alias or address of the registry owner, who verifies projects. Defaults to --account.",
)
@click.option(
    "--token",
    "tokens",
    multiple=True,
    metavar="SYMBOL=ADDRESS",
    help="Record a token so grant specs can name it by symbol. Repeat for more tokens.",
)
@click.option(
    "--yes", is_flag=True, help="Do not ask for confirmation before deploying to a live network."
)
def deploy(account, deployments, registrar, tokens, yes):
    """Deploy the escrow and the donation registry, and record them in the deployments file."""
    from ape import networks

    provider = networks.provider
    registrar_address = resolve_account(registrar, "--registrar") if registrar else account.address
    deployments_file = DeploymentsFile(deployments)
    try:
        known_tokens = deployments_file.load(provider.network_choice).tokens
    except DeploymentError:
        known_tokens = {}
    for item in tokens:
        symbol, _, address = item.partition("=")
        if not symbol or not address:
            raise SpecError("--token", item, "not SYMBOL=ADDRESS", "Write it as USDC=0x....")
        known_tokens[symbol] = resolve_account(address, f"--token {symbol}")

    # As ApePay's deploy script does, ask before spending real gas. Local chains need no prompt.
    if not provider.network.is_dev and not yes:
        click.confirm(
            f"Deploy FundTrail to {provider.network_choice} from {account.address}?", abort=True
        )
    deployment = FundTrail.deploy(
        account, registrar=registrar_address, network=provider.network_choice, tokens=known_tokens
    )
    deployments_file.save(deployment)

    console = render.stdout()
    console.print(render.deployment_table(deployment))
    console.print(f"Saved to {escape(str(deployments_file.path))}")


@cli.group()
def project():
    """Register and verify projects that take direct donations."""


@project.command("register", cls=ChainCommand)
@chain_options(sends=True)
@click.option("--admin", help="Alias or address that manages the project. Defaults to --account.")
@click.option("--payout", required=True, help="Alias or address that receives the donations.")
@click.option(
    "--metadata-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Project description to hash.",
)
@click.option(
    "--metadata-hash", help="keccak256 hash of the project description, instead of --metadata-file."
)
@click.option(
    "--metadata-uri", required=True, help="Where the description can be read. Published on-chain."
)
@click.option(
    "--allow-personal-data",
    is_flag=True,
    help="Publish the URI even if it looks like personal data.",
)
def register_project(
    account,
    deployments,
    admin,
    payout,
    metadata_file,
    metadata_hash,
    metadata_uri,
    allow_personal_data,
):
    """Register a project, which takes donations once the registrar verifies it."""
    metadata = _hash_input(metadata_file, metadata_hash, "metadata")
    admin_address = resolve_account(admin, "--admin") if admin else account.address
    payout_address = resolve_account(payout, "--payout")
    client = _client(deployments)

    project_id, receipt = client.register_project(
        admin_address,
        payout_address,
        metadata,
        metadata_uri,
        account,
        allow_personal_data=allow_personal_data,
    )
    _print_receipt(f"Registered project {project_id} (Pending)", receipt)


@project.command("verify", cls=ChainCommand)
@chain_options(sends=True)
@click.argument("project_id", type=click.IntRange(min=1))
def verify_project(account, deployments, project_id):
    """Mark a project Verified, as the registrar."""
    receipt = _client(deployments).verify_project(project_id, account)
    _print_receipt(f"Verified project {project_id}", receipt)


@cli.group()
def grant():
    """Create, fund and inspect milestone grants."""


@grant.command("create", cls=ChainCommand)
@chain_options(sends=True)
@click.argument("spec_path", metavar="SPEC.yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--fund", is_flag=True, help="Fund the whole grant from --account in the same transaction."
)
@click.option(
    "--allow-personal-data",
    is_flag=True,
    help="Publish the terms URI even if it looks like personal data.",
)
def create_grant(account, deployments, spec_path, fund, allow_personal_data):
    """Create a grant from a YAML spec, checking every field first."""
    spec = GrantSpec.from_yaml(spec_path)
    client = _client(deployments)
    token = client.token_info(spec.token)
    resolved = spec.resolve(
        now=client.now(),
        token=token,
        resolve_account=resolve_account,
        allow_personal_data=allow_personal_data,
    )

    grant_id, receipt = client.create_grant(resolved, account, fund=fund)
    _print_receipt(f"Created grant {grant_id}" + (" and funded it" if fund else ""), receipt)
    render.stdout().print(render.grant_view(client.grant(grant_id)))


@grant.command("fund", cls=ChainCommand)
@chain_options(sends=True)
@click.argument("grant_id", type=click.IntRange(min=1))
@click.argument("amount")
def fund_grant(account, deployments, grant_id, amount):
    """Add AMOUNT to a grant, in token units such as "2,500 USDC" or "0.5 ETH" (not wei)."""
    client = _client(deployments)
    base_units = parse_amount(amount, client.grant_token(grant_id), "AMOUNT")
    receipt = client.fund(grant_id, base_units, account)
    _print_receipt(f"Funded grant {grant_id}", receipt)


@grant.command("show", cls=ChainCommand)
@chain_options(sends=False)
@click.argument("grant_id", type=click.IntRange(min=1))
def show_grant(deployments, grant_id):
    """Show a grant's books, milestones and funders."""
    render.stdout().print(render.grant_view(_client(deployments).grant(grant_id)))


@grant.command("list", cls=ChainCommand)
@chain_options(sends=False)
def list_grants(deployments):
    """List every grant with its funding and progress."""
    render.stdout().print(render.grants_table(_client(deployments).grants()))


@cli.group()
def evidence():
    """Submit evidence that a milestone is done."""


@evidence.command("submit", cls=ChainCommand)
@chain_options(sends=True)
@click.argument("grant_id", type=click.IntRange(min=1))
@click.argument("index", type=click.IntRange(min=0))
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--uri", required=True, help="Where the attestors can read FILE. Published on-chain.")
@click.option(
    "--allow-personal-data",
    is_flag=True,
    help="Publish the URI even if it looks like personal data.",
)
def submit_evidence(account, deployments, grant_id, index, file, uri, allow_personal_data):
    """Hash FILE and submit the hash and URI for milestone INDEX. The file stays off-chain."""
    evidence_hash = hash_file(file)
    client = _client(deployments)
    receipt = client.submit_evidence(
        grant_id, index, evidence_hash, uri, account, allow_personal_data=allow_personal_data
    )
    _print_receipt(
        f"Submitted evidence {to_hex(evidence_hash)} for milestone {index} of grant {grant_id}",
        receipt,
    )


@cli.group()
def attest():
    """Approve or reject a milestone's evidence, as one of the grant's attestors."""


def _evidence_options(function, *, default: str = ""):
    """Add --evidence-file and --evidence-hash, with `default` saying what neither of them means."""
    either = default or "Give this or --evidence-hash."
    function = click.option(
        "--evidence-hash",
        help="The evidence hash shown by `grant show`, instead of --evidence-file."
        + (f" {default}" if default else ""),
    )(function)
    return click.option(
        "--evidence-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"The evidence file you reviewed, to hash it. {either}",
    )(function)


@attest.command("approve", cls=ChainCommand)
@chain_options(sends=True)
@click.argument("grant_id", type=click.IntRange(min=1))
@click.argument("index", type=click.IntRange(min=0))
@_evidence_options
def approve(account, deployments, grant_id, index, evidence_file, evidence_hash):
    """Approve the evidence of milestone INDEX. The approval that reaches the quorum pays it.

    Pass exactly one of --evidence-file and --evidence-hash.
    """
    expected = _hash_input(evidence_file, evidence_hash, "evidence")
    client = _client(deployments)
    receipt = client.approve(grant_id, index, expected, account)
    approved = client.escrow.MilestoneApproved.from_receipt(receipt)[0]
    count = f"approval {approved.approvalCount} of {client.escrow.getGrant(grant_id).threshold}"
    released = client.escrow.MilestoneReleased.from_receipt(receipt)
    suffix = ", which released it" if released else ""
    _print_receipt(f"Approved milestone {index} of grant {grant_id} ({count}){suffix}", receipt)


@attest.command("reject", cls=ChainCommand)
@chain_options(sends=True)
@click.argument("grant_id", type=click.IntRange(min=1))
@click.argument("index", type=click.IntRange(min=0))
@_evidence_options
@click.option(
    "--reason-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Your written reasons, kept off-chain, to hash them. Give this or --reason-hash.",
)
@click.option(
    "--reason-hash", help="keccak256 hash of your written reasons, instead of --reason-file."
)
def reject(
    account, deployments, grant_id, index, evidence_file, evidence_hash, reason_file, reason_hash
):
    """Reject the evidence of milestone INDEX, recording only the hash of your reasons.

    Pass exactly one of --evidence-file and --evidence-hash, and exactly one of --reason-file
    and --reason-hash.
    """
    expected = _hash_input(evidence_file, evidence_hash, "evidence")
    reason = _hash_input(reason_file, reason_hash, "reason")
    client = _client(deployments)
    receipt = client.reject(grant_id, index, expected, reason, account)
    _print_receipt(f"Rejected milestone {index} of grant {grant_id}", receipt)
    if client.escrow.EvidenceRejected.from_receipt(receipt):
        render.stdout().print(
            "The quorum is now out of reach, so the recipient must submit new evidence."
        )


@cli.command("reclaim", cls=ChainCommand)
@chain_options(sends=True)
@click.argument("grant_id", type=click.IntRange(min=1))
@click.argument("index", type=click.IntRange(min=0))
def reclaim(account, deployments, grant_id, index):
    """Return unpaid milestone INDEX to the funders after its deadline. Anyone may call it."""
    receipt = _client(deployments).reclaim(grant_id, index, account)
    _print_receipt(f"Reclaimed milestone {index} of grant {grant_id}", receipt)


@cli.command("refund", cls=ChainCommand)
@chain_options(sends=True)
@click.argument("grant_id", type=click.IntRange(min=1))
@click.option("--funder", help="Alias or address of the funder to refund. Defaults to --account.")
def refund(account, deployments, grant_id, funder):
    """Return a funder's money from a grant that missed full funding by its deadline."""
    funder_address = resolve_account(funder, "--funder") if funder else account.address
    receipt = _client(deployments).refund(grant_id, funder_address, account)
    _print_receipt(f"Refunded {funder_address} from grant {grant_id}", receipt)


@cli.command("withdraw", cls=ChainCommand)
@chain_options(sends=True)
@click.option(
    "--token",
    default="ETH",
    show_default=True,
    help="ETH, a recorded token symbol, or a token address.",
)
@click.option("--to", "to", help="Alias or address to send the credit to. Defaults to --account.")
def withdraw(account, deployments, token, to):
    """Withdraw your credit from payouts that failed, such as to a blocked address."""
    client = _client(deployments)
    to_address = resolve_account(to, "--to") if to else account.address
    receipt = client.withdraw(client.token_info(token).address, to_address, account)
    _print_receipt(f"Withdrew {client.token_info(token).symbol} credit to {to_address}", receipt)


@cli.command("donate", cls=ChainCommand)
@chain_options(sends=True)
@click.argument("amount")
@click.option(
    "--project",
    "project_id",
    type=click.IntRange(min=1),
    help="Verified project to give to directly.",
)
@click.option(
    "--grant", "grant_id", type=click.IntRange(min=1), help="Grant to give into, as a co-funder."
)
@click.option(
    "--token",
    default="ETH",
    show_default=True,
    help="Token of a project donation. A grant donation uses the grant's token.",
)
@click.option("--donor-ref", help="Your own 32-byte donor reference, as 0x and 64 hex digits.")
@click.option(
    "--donor-ref-salt",
    help="Secret hex salt for the donor reference. Keep it to prove the gift later.",
)
@click.option(
    "--donor-label",
    help="Label hashed with the salt, such as your name. Only the hash is published.",
)
def donate(
    account,
    deployments,
    amount,
    project_id,
    grant_id,
    token,
    donor_ref,
    donor_ref_salt,
    donor_label,
):
    """Donate AMOUNT to a verified project, or into a grant with --grant.

    AMOUNT is in token units, such as "2,500 USDC" or "0.5 ETH", not in base units such as wei.
    """
    if (project_id is None) == (grant_id is None):
        raise SpecError(
            "--project / --grant",
            "both" if project_id else "neither",
            "needs exactly one",
            "Pass --project ID or --grant ID.",
        )
    reference = _donor_ref(donor_ref, donor_ref_salt, donor_label)
    client = _client(deployments)

    if grant_id is not None:
        base_units = parse_amount(amount, client.grant_token(grant_id), "AMOUNT")
        donation_id, receipt = client.donate_to_grant(grant_id, base_units, reference, account)
        _print_receipt(f"Donation {donation_id} into grant {grant_id}", receipt)
    else:
        info = client.token_info(token)
        base_units = parse_amount(amount, info, "AMOUNT")
        donation_id, receipt = client.donate(
            project_id, info.address, base_units, reference, account
        )
        _print_receipt(f"Donation {donation_id} to project {project_id}", receipt)


@cli.command(cls=ChainCommand)
@network_option()
@click.option(
    "--offline",
    "offline_folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run milestone 1 the offline way: the NGO and two attestors sign files from a grant "
    "snapshot in this folder, and a keeper relays them.",
)
def demo(offline_folder):
    """Run a whole grant lifecycle on a local chain with ape's test accounts, and print the trail.

    Deploys a 6-decimal test stablecoin and both contracts, then registers and verifies a
    project. Creates and co-funds the grant in examples/grant-hotline.yaml, and makes a direct
    donation. Releases two milestones by attestor quorum, and reclaims the third after its
    deadline. Prints the trail and checks that the books reconcile. Then indexes every event
    into .fundtrail/demo/ledger.sqlite, audits the rebuilt books against the chain, prints the
    statement of the donor who gave into the grant, and writes the dashboard to
    .fundtrail/demo/dashboard/ (with --offline, to DIR/ledger.sqlite and DIR/dashboard/).
    """
    from ape import accounts, networks

    from fundtrail.demo import reconcile, run_demo

    if not networks.provider.network.is_local:
        raise SpecError(
            "--network",
            networks.provider.network_choice,
            "the demo needs ape's test accounts and moves time forward, so it runs only on a "
            "local chain",
            "Use --network ethereum:local:test or ethereum:local:foundry.",
        )
    from ape.logging import LogLevel, logger

    # ape logs every confirmed transaction at INFO; the demo prints its own line per step.
    if logger.level == LogLevel.INFO:
        logger.set_level(LogLevel.WARNING)
    console = render.stdout()
    console.rule(f"FundTrail demo on {networks.provider.network_choice}")
    result = run_demo(
        accounts.test_accounts,
        on_step=lambda step: console.print(render.demo_step_line(step)),
        offline_folder=offline_folder,
    )

    console.rule("Trail")
    console.print(render.grant_view(result.client.grant(result.grant_id)))
    reconciliation = reconcile(result)
    console.print(render.reconciliation_view(reconciliation, result.token))
    if reconciliation.problems:
        raise click.exceptions.Exit(EXIT_FAILED)

    from fundtrail import cli_ledger, render_statements
    from fundtrail.demo import DEMO_FOLDER, read_back

    console.rule("What a donor or an auditor reads back from the events")
    ledger = read_back(result, offline_folder or DEMO_FOLDER)
    console.print(
        f"Indexed {cli_ledger.plural(ledger.sync.events, 'event')} of blocks "
        f"{ledger.sync.start_block:,} to {ledger.sync.end_block:,} into {ledger.database}."
    )
    cli_ledger.print_audit(ledger.audit, cli_ledger.token_infos(result.deployment, ledger.audit))
    console.print(render_statements.statement_view(ledger.donor_statement))
    console.print(
        f"Dashboard: {ledger.dashboard} (open {ledger.dashboard.resolve().as_uri()})", soft_wrap=True
    )
    if not ledger.audit.clean:
        raise click.exceptions.Exit(EXIT_FAILED)


# Offline signing and relaying. The signing and verifying commands are plain click commands:
# they take no --network option and never connect to a chain, so they run on machines that are
# offline. Only `grant export`, `attest revoke` and `relay` connect.


class OfflineCommand(click.Command):
    """A command that needs no chain connection, which turns FundTrail errors into exit status 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FundTrailError as error:
            render.stderr().print(f"[bold red]Error:[/] {escape(str(error))}", soft_wrap=True)
            ctx.exit(EXIT_BAD_INPUT)


def _signer_options(function):
    function = click.option(
        "--password-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="File whose first line is the keystore password. Without it, the password is "
        "prompted for.",
    )(function)
    function = click.option(
        "--keystore",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Sign with the key in this Ethereum keystore file, instead of --account.",
    )(function)
    return click.option(
        "--account",
        "account_alias",
        help="Alias of the ape account to sign with, as in `ape accounts list`.",
    )(function)


def _offline_options(function):
    function = click.option(
        "--out",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="Where to write the signature file (JSON).",
    )(function)
    function = click.option(
        "--expires",
        default="7d",
        show_default=True,
        help="When the signature stops being valid: a duration from now such as 7d or 36h, a "
        "date such as 2027-03-31, or a Unix time.",
    )(function)
    function = click.option(
        "--milestone",
        "index",
        required=True,
        type=click.IntRange(min=0),
        help="Index of the milestone, starting at 0.",
    )(function)
    return click.argument(
        "snapshot_path",
        metavar="SNAPSHOT",
        type=click.Path(dir_okay=False, path_type=Path),
    )(function)


def _load_signer(account_alias: str | None, keystore: Path | None, password_file: Path | None):
    from fundtrail.accounts import load_account
    from fundtrail.errors import FileError
    from fundtrail.signing import ApeAccountSigner, KeystoreSigner

    if (account_alias is None) == (keystore is None):
        raise SpecError(
            "--account / --keystore",
            "both" if keystore else "neither",
            "needs exactly one of the two",
            "Pass the alias of an ape account, or the path of a keystore file.",
        )
    if account_alias is not None:
        if password_file is not None:
            raise SpecError(
                "--password-file",
                str(password_file),
                "only a --keystore takes a password file",
                "ape accounts ask for their passphrase themselves, so drop --password-file.",
            )
        return ApeAccountSigner(load_account("--account", account_alias))
    if password_file is None:
        password = click.prompt(f"Password of {keystore}", hide_input=True)
    else:
        try:
            password = password_file.read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError) as error:
            raise FileError(
                password_file,
                "cannot read a password from it",
                "Pass a file whose first line is the keystore password.",
            ) from error
    return KeystoreSigner(keystore, password)


def _open_milestone(snapshot, index: int, now: int):
    """Return milestone `index` of `snapshot`, or raise when it cannot take a signature."""
    from fundtrail.checks import show_time

    try:
        milestone = snapshot.milestone(index)
    except IndexError as error:
        raise SpecError(
            "--milestone", index, str(error), "Pick an index from the snapshot. Indices start at 0."
        ) from None
    if milestone.settled:
        raise SpecError(
            "--milestone",
            index,
            f"milestone {index} was already {milestone.status} when the snapshot was exported",
            "Nothing is left to sign for this milestone.",
        )
    if now >= milestone.deadline:
        raise SpecError(
            "--milestone",
            index,
            f"milestone {index} passed its deadline {show_time(milestone.deadline)}",
            "It can no longer get evidence or approvals, so a signature would be useless.",
        )
    return milestone


def _print_signed(signature_file, out: Path) -> None:
    from fundtrail.checks import show_time
    from fundtrail.signing import MILESTONE_APPROVAL

    console = render.stdout()
    console.print(
        f"[bold]Signed {signature_file.kind}[/] of milestone {signature_file.milestone_index} "
        f"of grant {signature_file.grant_id} as {signature_file.signer}, valid until "
        f"{show_time(signature_file.expiry)}."
    )
    console.print(f"Evidence: {to_hex(signature_file.evidence_hash)}")
    console.print(f"Digest: {signature_file.digest}")
    console.print(
        f"Wrote {escape(str(out))}. Anyone can submit it with `fundtrail relay "
        f"{escape(str(out))} --network NETWORK --account ACCOUNT`, paying the gas from ACCOUNT."
    )
    if signature_file.kind == MILESTONE_APPROVAL:
        console.print(
            "An approval counts only once its evidence is on-chain, and is sent once enough "
            "approvals are together: relay it with the evidence file and the other attestors' "
            "files, or drop it into a keeper's inbox."
        )


@grant.command("export", cls=ChainCommand)
@chain_options(sends=False)
@click.argument("grant_id", type=click.IntRange(min=1))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the grant snapshot (JSON).",
)
def export_grant(deployments, grant_id, out):
    """Write a snapshot of a grant, with everything needed to sign for it offline."""
    from fundtrail.snapshot import export_snapshot

    snapshot = export_snapshot(_client(deployments), grant_id)
    snapshot.save(out)
    render.stdout().print(
        f"Exported grant {grant_id} of escrow {snapshot.escrow} on chain {snapshot.chain_id}, "
        f"at block {snapshot.block_number}, to {escape(str(out))}"
    )


@attest.command("sign", cls=OfflineCommand)
@_offline_options
@functools.partial(
    _evidence_options,
    default="Defaults to the evidence that was current when SNAPSHOT was exported.",
)
@_signer_options
def sign_approval(
    snapshot_path,
    index,
    expires,
    out,
    evidence_file,
    evidence_hash,
    account_alias,
    keystore,
    password_file,
):
    """Sign an approval of milestone evidence offline, for anyone to relay.

    Needs no connection: the grant comes from SNAPSHOT, written by `fundtrail grant export`.
    Pass at most one of --evidence-file and --evidence-hash. Without either, the approval is
    for the evidence that was current when the snapshot was exported, and the command fails
    if the milestone had none.
    """
    import time

    from fundtrail.signing import MILESTONE_APPROVAL, approval_message, sign_message
    from fundtrail.snapshot import GrantSnapshot
    from fundtrail.units import parse_deadline

    now = int(time.time())
    snapshot = GrantSnapshot.load(snapshot_path)
    milestone = _open_milestone(snapshot, index, now)
    if evidence_file is None and evidence_hash is None and milestone.evidence_hash is None:
        raise SpecError(
            "--evidence-file / --evidence-hash",
            MISSING,
            f"missing, and milestone {index} had no evidence when the snapshot was exported",
            "Pass the evidence file you reviewed, or its hash.",
        )
    if evidence_file is None and evidence_hash is None:
        expected = parse_hash(milestone.evidence_hash, "evidence hash")
    else:
        expected = _hash_input(evidence_file, evidence_hash, "evidence")
    expiry = parse_deadline(expires, now, "--expires")
    signer = _load_signer(account_alias, keystore, password_file)
    if signer.address not in snapshot.attestors:
        raise SpecError(
            "--account / --keystore",
            signer.address,
            f"not an attestor of grant {snapshot.grant_id}",
            "Sign with one of its attestors: " + ", ".join(snapshot.attestors) + ".",
        )

    message = approval_message(signer.address, snapshot.grant_id, index, expected, expiry)
    signature_file = sign_message(signer, MILESTONE_APPROVAL, snapshot.eip712_domain, message)
    signature_file.save(out)
    _print_signed(signature_file, out)


@evidence.command("sign", cls=OfflineCommand)
@_offline_options
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--uri", required=True, help="Where the attestors can read FILE. Published on-chain.")
@click.option(
    "--allow-personal-data",
    is_flag=True,
    help="Sign the URI even if it looks like personal data.",
)
@_signer_options
def sign_evidence(
    snapshot_path,
    index,
    expires,
    out,
    file,
    uri,
    allow_personal_data,
    account_alias,
    keystore,
    password_file,
):
    """Hash FILE and sign its submission for a milestone offline, as the grant's recipient.

    Needs no connection: the grant comes from SNAPSHOT, written by `fundtrail grant export`.
    Anyone can then relay the signature file; the file itself stays off-chain.
    """
    import time

    from fundtrail.privacy import check_public_text
    from fundtrail.signing import EVIDENCE_SUBMISSION, evidence_message, sign_message
    from fundtrail.snapshot import GrantSnapshot
    from fundtrail.units import parse_deadline

    now = int(time.time())
    check_public_text("evidence URI", uri, allow_personal_data=allow_personal_data)
    snapshot = GrantSnapshot.load(snapshot_path)
    milestone = _open_milestone(snapshot, index, now)
    evidence_hash = hash_file(file)
    if milestone.evidence_hash == to_hex(evidence_hash):
        raise SpecError(
            "FILE",
            str(file),
            f"its hash {to_hex(evidence_hash)} was already the current evidence of milestone "
            f"{index} when the snapshot was exported",
            "Wait for the attestors, or sign a different file.",
        )
    expiry = parse_deadline(expires, now, "--expires")
    signer = _load_signer(account_alias, keystore, password_file)
    if signer.address != snapshot.recipient:
        raise SpecError(
            "--account / --keystore",
            signer.address,
            f"not the recipient of grant {snapshot.grant_id}",
            f"Sign with the recipient's account, {snapshot.recipient}.",
        )

    message = evidence_message(signer.address, snapshot.grant_id, index, evidence_hash, uri, expiry)
    signature_file = sign_message(signer, EVIDENCE_SUBMISSION, snapshot.eip712_domain, message)
    signature_file.save(out)
    _print_signed(signature_file, out)


@attest.command("verify", cls=OfflineCommand)
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--snapshot",
    "snapshot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Grant snapshot to check the domain, the signer's role and the milestone against.",
)
def verify_signature(file, snapshot_path):
    """Check a signature file offline.

    Checks that the typed data hashes to the stated digest, that the signature recovers to the
    stated signer with a low s, and that it has not expired. With --snapshot, also checks the
    chain and escrow, the signer's role and the milestone.

    Some checks cannot run offline. The signature of a file whose signer_type is "contract"
    (a Safe or other ERC-1271 wallet) can only be checked by that contract, which the escrow
    calls on-chain. An approval of evidence that was not current in the snapshot counts only
    if that evidence is current when it is relayed.

    \b
    Exit status:
      0  every check passed
      2  a check failed, or the file cannot be read: the escrow will reject it
      3  no check failed, but at least one cannot run offline
    """
    from rich.table import Table

    from fundtrail.signing import CheckStatus, SignatureFile, verify
    from fundtrail.snapshot import GrantSnapshot

    signature_file = SignatureFile.load(file)
    snapshot = GrantSnapshot.load(snapshot_path) if snapshot_path is not None else None
    verification = verify(signature_file, snapshot=snapshot)

    styles = {
        CheckStatus.PASSED: "green",
        CheckStatus.FAILED: "bold red",
        CheckStatus.UNCHECKED: "yellow",
    }
    table = Table(title=f"{signature_file.kind} by {signature_file.signer}")
    table.add_column("Check")
    table.add_column("Result")
    table.add_column("Detail")
    for check in verification.checks:
        style = styles[check.status]
        table.add_row(check.name, f"[{style}]{check.status.value}[/]", escape(check.detail))
    render.stdout().print(table)

    if not verification.valid:
        render.stderr().print(
            f"[bold red]Invalid:[/] {escape(str(file))}: "
            + escape("; ".join(verification.problems)),
            soft_wrap=True,
        )
        raise click.exceptions.Exit(EXIT_BAD_INPUT)
    if not verification.complete:
        render.stdout().print(
            f"[bold yellow]Not verified:[/] {escape(str(file))} passed every check that can run "
            "offline, but the checks marked unchecked can only be made on-chain when it is "
            "relayed.",
            soft_wrap=True,
        )
        raise click.exceptions.Exit(EXIT_UNVERIFIED)
    if snapshot is None:
        render.stdout().print(
            f"Valid signature: {escape(str(file))} passed every check that needs no snapshot. "
            "Pass --snapshot to also check the chain, the escrow, the signer's role and the "
            "milestone.",
            soft_wrap=True,
        )
        return
    render.stdout().print(f"Valid: {escape(str(file))} passed every check.")


@attest.command("revoke", cls=ChainCommand)
@chain_options(sends=True)
@click.argument("file", type=click.Path(path_type=Path))
def revoke_signature(account, deployments, file):
    """Revoke your unused signature in FILE on-chain, so that nobody can relay it."""
    from fundtrail.signing import SignatureFile

    signature_file = SignatureFile.load(file)
    if signature_file.signer != account.address:
        raise SpecError(
            "--account",
            account.address,
            f"the signature in {file} is {signature_file.signer}'s",
            f"Revoke it from {signature_file.signer}'s account.",
        )
    receipt = _client(deployments).revoke_signature(signature_file.digest_bytes, account)
    _print_receipt(f"Revoked signature {signature_file.digest}", receipt)


@cli.command("relay", cls=ChainCommand)
@chain_options(sends=True)
@click.argument(
    "files", metavar="FILES...", nargs=-1, required=True, type=click.Path(path_type=Path)
)
@click.option(
    "--allow-personal-data",
    is_flag=True,
    help="Publish evidence URIs even if they look like personal data.",
)
@click.option(
    "--yes", is_flag=True, help="Do not ask for confirmation before sending on a live network."
)
def relay_signatures(account, deployments, files, allow_personal_data, yes):
    """Submit offline signatures from FILES, paying the gas from --account.

    Submits evidence first, then each milestone's approvals once there are enough to reach the
    quorum, with exactly as many as it still needs. Drops every signature the escrow would
    reject, with the reason. Running it again with the same files sends nothing.

    \b
    Exit status:
      0  nothing failed and no file was invalid. Files dropped because the chain moved on
         (already used on-chain, not needed, already approved, milestone settled) and
         approvals still waiting for the quorum count as success, so a re-run exits 0.
      1  the escrow reverted a transaction
      2  a file cannot be read, or was dropped as invalid. Invalid means a bad or tampered
         signature, another chain or escrow, a revoked or expired signature, an unknown
         grant or milestone, a signer without the role, or a URI that looks like personal data
    """
    from ape import networks

    from fundtrail.relay import Relayer, load_signature_files

    signatures = load_signature_files(files)
    client = _client(deployments)
    provider = networks.provider
    if not provider.network.is_dev and not yes:
        click.confirm(
            f"Relay {len(signatures)} signature files on {provider.network_choice}, paying gas "
            f"from {account.address}?",
            abort=True,
        )
    report = Relayer(client, account, allow_personal_data=allow_personal_data).relay(signatures)

    _print_relay_report(report)
    if report.failed:
        raise click.exceptions.Exit(EXIT_FAILED)
    if report.invalid:
        count = len(report.invalid)
        render.stderr().print(
            f"[bold red]Invalid:[/] {count} {'file was' if count == 1 else 'files were'} "
            "dropped as invalid (marked \"invalid\" under Dropped). The escrow will never "
            "accept them as they are.",
            soft_wrap=True,
        )
        raise click.exceptions.Exit(EXIT_BAD_INPUT)


def _print_relay_report(report) -> None:
    console = render.stdout()
    if report.submitted or report.dropped:
        console.print(render.relay_report_view(report))
    for waiting in report.waiting:
        console.print(
            f"Milestone {waiting.milestone_index} of grant {waiting.grant_id} has "
            f"{len(waiting.signers)} valid approvals of {to_hex(waiting.evidence_hash)} and needs "
            f"{waiting.missing} more, so none were sent."
        )
    for failed in report.failed:
        render.stderr().print(
            f"[bold red]Failed:[/] {failed.kind} for milestone {failed.milestone_index} of grant "
            f"{failed.grant_id}: {escape(failed.error)}",
            soft_wrap=True,
        )
    if not (report.submitted or report.failed or report.waiting):
        console.print("Nothing left to submit.")


@cli.command(cls=ChainCommand)
@chain_options(sends=True)
@click.option(
    "--inbox",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder watched for signature files. Relayed files move to INBOX/processed, unusable "
    "ones to INBOX/quarantine with a .reason.txt file. Files whose signature is already used "
    "on-chain move to INBOX/processed with a .reason.txt file.",
)
@click.option(
    "--database",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite file with the keeper's progress and actions, for one escrow on one chain. "
    "Defaults to .fundtrail/keeper-<chain id>-<escrow address>.sqlite3.",
)
@click.option("--poll", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between cycles.")
@click.option("--max-backoff", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Maximum pause, in seconds, between retries while the RPC endpoint fails.")
@click.option("--once", is_flag=True, help="Run one cycle and exit, for cron.")
def keeper(account, deployments, inbox, database, poll, max_backoff, once):
    """Relay signature files from INBOX and reclaim lapsed milestones, until stopped.

    Stops cleanly on SIGTERM or Ctrl-C after the current cycle. Progress is stored in SQLite,
    so a restarted keeper resumes where it stopped without repeating an action.
    """
    import logging
    import threading

    from ape import chain

    from fundtrail.keeper import Keeper, KeeperStore, install_stop_signals, relay_inbox_handler

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    client = _client(deployments)
    inbox.mkdir(parents=True, exist_ok=True)
    default_database = Path(".fundtrail") / f"keeper-{chain.chain_id}-{client.escrow.address}.sqlite3"
    store = KeeperStore(database or default_database)
    service = Keeper(
        client, account, store, inbox=inbox, inbox_handler=relay_inbox_handler(client, account)
    )
    try:
        if once:
            report = service.run_once()
            render.stdout().print(
                f"Cycle done at block {report.last_block}: {len(report.relayed_files)} files "
                f"relayed, {len(report.settled_files)} already used on-chain, "
                f"{len(report.quarantined_files)} quarantined, "
                f"{len(report.reclaimed)} milestones reclaimed."
            )
            return
        stop = threading.Event()
        install_stop_signals(stop)
        service.run(stop, poll_seconds=poll, max_backoff=max_backoff)
    finally:
        store.close()


# The read-side commands live in their own module, which adds them to `cli` when imported.
from fundtrail import cli_ledger  # noqa: E402, F401
