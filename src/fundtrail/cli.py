"""The `fundtrail` command line: thin click commands over `fundtrail.client.FundTrail`.

Every command checks its input and the chain state before it sends anything. Bad input exits
with status 2 and sends nothing. A transaction that fails on-chain exits with status 1.
"""

from pathlib import Path

import click
from ape.cli import ConnectedProviderCommand, account_option, network_option
from ape.exceptions import ApeException
from rich.markup import escape

from fundtrail import __version__, render
from fundtrail.accounts import resolve_account
from fundtrail.client import FundTrail
from fundtrail.deployments import DeploymentsFile
from fundtrail.donor import NO_DONOR_REF, donor_commitment
from fundtrail.errors import DeploymentError, FundTrailError, SpecError
from fundtrail.evidence import hash_file, parse_hash, to_hex
from fundtrail.spec import GrantSpec
from fundtrail.units import parse_amount

EXIT_FAILED = 1
"""Exit status when the chain rejected or failed a transaction."""
EXIT_BAD_INPUT = 2
"""Exit status for invalid input, the same as click uses for usage errors. Nothing was sent."""


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
    if (file is None) == (hex_hash is None):
        raise SpecError(
            f"--{field}-file / --{field}-hash",
            "both" if file else "neither",
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


def _evidence_options(function):
    function = click.option(
        "--evidence-hash",
        help="The evidence hash shown by `grant show`, instead of --evidence-file.",
    )(function)
    return click.option(
        "--evidence-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The evidence file you reviewed, to hash it. Give this or --evidence-hash.",
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
def demo():
    """Run a whole grant lifecycle on a local chain with ape's test accounts, and print the trail.

    Deploys a 6-decimal test stablecoin and both contracts, then registers and verifies a
    project. Creates and co-funds the grant in examples/grant-hotline.yaml, and makes a direct
    donation. Releases two milestones by attestor quorum, and reclaims the third after its
    deadline. Prints the trail and checks that the books reconcile.
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
    result = run_demo(accounts.test_accounts, on_step=lambda step: console.print(
        render.demo_step_line(step)
    ))

    console.rule("Trail")
    console.print(render.grant_view(result.client.grant(result.grant_id)))
    reconciliation = reconcile(result)
    console.print(render.reconciliation_view(reconciliation, result.token))
    if reconciliation.problems:
        raise click.exceptions.Exit(EXIT_FAILED)
