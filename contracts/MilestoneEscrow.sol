// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

import {IMilestoneEscrow} from "./interfaces/IMilestoneEscrow.sol";

/// @title MilestoneEscrow
/// @notice Holds the money of many milestone grants and pays it out only by each grant's own
/// rules. The contract has no owner, no upgrade path and no pause: once a grant is created,
/// nobody can change its terms or move its money any other way.
/// @dev Note:
/// - NOTE: Rebasing tokens and tokens whose balances change without a transfer are not
///   supported: the books record the amounts received, and a later balance change is not seen.
/// - Fee-on-transfer tokens are rejected at funding time, because the escrow checks that it
///   received exactly the amount stated.
/// - A payout that fails (a contract that rejects ETH, a blocklisted address, a paused token)
///   is credited to its owner instead of reverting, so that one party can never block another.
///   The owner withdraws the credit later with {withdraw}.
/// - ETH forced into the contract (self-destruct, coinbase) is never counted by the books, so it
///   changes nothing; it stays in the contract as surplus.
/// - Recipients and attestors can act offline: they sign EIP-712 typed data, which anyone may
///   relay. A signature counts for its signer, never for the relayer, and only once.
contract MilestoneEscrow is IMilestoneEscrow, ReentrancyGuard, EIP712 {
    using SafeERC20 for IERC20;

    /// @notice Version of this contract's code.
    string public constant VERSION = "0.1.0";

    /// @inheritdoc IMilestoneEscrow
    uint256 public constant MAX_MILESTONES = 32;

    /// @inheritdoc IMilestoneEscrow
    /// @dev Approvals and rejections are kept as 16-bit bitmaps indexed by attestor.
    uint256 public constant MAX_ATTESTORS = 16;

    /// @inheritdoc IMilestoneEscrow
    /// @dev NOTE: A grant accepts at most 64 distinct funders, so that a reclaim, which pays every
    /// funder in one transaction, stays well inside the block gas limit.
    uint256 public constant MAX_FUNDERS = 64;

    /// @inheritdoc IMilestoneEscrow
    /// @dev NOTE: ETH payouts forward this much gas, not all of it, so that a recipient or funder
    /// cannot use up the gas that later payouts in the same transaction need. It covers a Safe
    /// wallet's receive function; a recipient that needs more is credited and withdraws.
    uint256 public constant ETH_PAYOUT_GAS = 50_000;

    /// @notice EIP-712 type of an attestor's offline approval.
    bytes32 public constant MILESTONE_APPROVAL_TYPEHASH = keccak256(
        "MilestoneApproval(address attestor,uint256 grantId,uint256 milestoneIndex,bytes32 evidenceHash,uint64 expiry)"
    );

    /// @notice EIP-712 type of a recipient's offline evidence submission.
    bytes32 public constant EVIDENCE_SUBMISSION_TYPEHASH = keccak256(
        "EvidenceSubmission(address recipient,uint256 grantId,uint256 milestoneIndex,bytes32 evidenceHash,string evidenceUri,uint64 expiry)"
    );

    /// @dev Milestone index recorded in {Payout} events of refunds, which belong to no milestone.
    uint256 private constant NO_MILESTONE = type(uint256).max;

    /// @dev A grant's fixed parameters and books. The first slot packs everything a milestone
    /// action reads.
    struct Grant {
        address recipient;
        uint64 fundingDeadline;
        uint8 threshold;
        uint8 attestorCount;
        uint8 milestoneCount;
        uint8 settledCount;
        address token;
        uint128 total;
        uint128 funded;
        uint128 released;
        uint128 reclaimed;
    }

    /// @dev One milestone. `approvals` and `rejections` are bitmaps over attestor indices for
    /// the current `evidenceHash`, and both are cleared whenever the evidence changes.
    struct Milestone {
        uint128 amount;
        uint64 deadline;
        MilestoneStatus status;
        uint16 approvals;
        uint16 rejections;
        bytes32 evidenceHash;
    }

    uint256 private _grantCount;
    mapping(uint256 grantId => Grant) private _grants;
    mapping(uint256 grantId => mapping(uint256 milestoneIndex => Milestone)) private _milestones;
    mapping(uint256 grantId => address[]) private _attestors;
    /// @dev Attestor index plus one, so that zero means "not an attestor".
    mapping(uint256 grantId => mapping(address attestor => uint256)) private _attestorPosition;
    mapping(uint256 grantId => address[]) private _funders;
    mapping(uint256 grantId => mapping(address funder => uint256)) private _contributions;
    mapping(uint256 grantId => mapping(address funder => bool)) private _refunded;
    mapping(uint256 grantId => mapping(uint256 milestoneIndex => mapping(bytes32 evidenceHash => bool))) private
        _rejectedEvidence;
    mapping(address account => mapping(address token => uint256)) private _credits;
    mapping(address token => uint256) private _totalCredits;
    mapping(address token => uint256) private _totalHeld;
    /// @dev Keyed by signer first, so that {revokeSignature} can only touch the caller's own
    /// digests. Every typed struct names its signer, so a digest belongs to one signer only.
    mapping(address signer => mapping(bytes32 digest => SignatureState)) private _signatureStates;

    /// @dev The EIP-712 domain is bound to this contract's address and the chain id, so a
    /// signature can never be replayed on another deployment or chain.
    constructor() EIP712("FundTrail MilestoneEscrow", "1") {}

    /*//////////////////////////////////////////////////////////////
                              GRANT MAKERS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IMilestoneEscrow
    function createGrant(GrantTerms calldata terms) external returns (uint256 grantId) {
        grantId = _createGrant(terms);
    }

    /// @inheritdoc IMilestoneEscrow
    function createAndFundGrant(GrantTerms calldata terms, uint256 amount)
        external
        payable
        nonReentrant
        returns (uint256 grantId)
    {
        grantId = _createGrant(terms);
        _fund(grantId, msg.sender, amount);
    }

    /// @inheritdoc IMilestoneEscrow
    function fund(uint256 grantId, uint256 amount) external payable nonReentrant {
        _fund(grantId, msg.sender, amount);
    }

    /// @inheritdoc IMilestoneEscrow
    function fundFor(uint256 grantId, address funder, uint256 amount) external payable nonReentrant {
        _fund(grantId, funder, amount);
    }

    /// @inheritdoc IMilestoneEscrow
    function refund(uint256 grantId, address funder) external nonReentrant {
        // Checks: the grant missed full funding by its deadline, and the funder has money in it.
        Grant storage grant = _getGrant(grantId);
        if (_grantStatus(grant) != GrantStatus.FundingFailed) {
            revert RefundNotAvailable(grantId);
        }
        uint256 contribution = _contributions[grantId][funder];
        if (contribution == 0 || _refunded[grantId][funder]) {
            revert NothingToRefund(grantId, funder);
        }

        // Effects.
        _refunded[grantId][funder] = true;
        // The cast is safe: a contribution is part of `funded`, which fits in uint128.
        grant.reclaimed += uint128(contribution);
        _totalHeld[grant.token] -= contribution;
        emit FundingRefunded(grantId, funder, contribution);

        // Interactions.
        _payout(grantId, grant.token, funder, PayoutKind.Refund, NO_MILESTONE, contribution);
    }

    /*//////////////////////////////////////////////////////////////
                              MILESTONES
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IMilestoneEscrow
    function submitEvidence(uint256 grantId, uint256 milestoneIndex, bytes32 evidenceHash, string calldata evidenceUri)
        external
    {
        _submitEvidence(grantId, milestoneIndex, evidenceHash, evidenceUri, msg.sender);
    }

    /// @inheritdoc IMilestoneEscrow
    function approve(uint256 grantId, uint256 milestoneIndex, bytes32 evidenceHash) external nonReentrant {
        _approve(grantId, milestoneIndex, evidenceHash, msg.sender);
    }

    /// @inheritdoc IMilestoneEscrow
    function reject(uint256 grantId, uint256 milestoneIndex, bytes32 evidenceHash, bytes32 reasonHash) external {
        // Checks.
        Grant storage grant = _getGrant(grantId);
        Milestone storage milestone = _getMilestone(grantId, grant, milestoneIndex);
        uint16 attestorBit = _requireVote(grantId, milestoneIndex, milestone, evidenceHash, msg.sender);

        // Effects.
        milestone.rejections |= attestorBit;
        uint256 rejectionCount = _countBits(milestone.rejections);
        emit MilestoneRejected(grantId, milestoneIndex, msg.sender, evidenceHash, reasonHash, rejectionCount);

        // With N - M + 1 rejections, at most M - 1 attestors are left to approve, so the quorum
        // is out of reach. One attestor alone can therefore block a grant only when M == N.
        if (rejectionCount > grant.attestorCount - grant.threshold) {
            _rejectedEvidence[grantId][milestoneIndex][evidenceHash] = true;
            milestone.status = MilestoneStatus.AwaitingEvidence;
            milestone.evidenceHash = bytes32(0);
            milestone.approvals = 0;
            milestone.rejections = 0;
            emit EvidenceRejected(grantId, milestoneIndex, evidenceHash);
        }
    }

    /// @inheritdoc IMilestoneEscrow
    function reclaim(uint256 grantId, uint256 milestoneIndex) external nonReentrant {
        // Checks: the deadline is the exact boundary, so that at every instant either release
        // (before it) or reclaim (at or after it) is possible, never both.
        Grant storage grant = _getGrant(grantId);
        Milestone storage milestone = _getMilestone(grantId, grant, milestoneIndex);
        _requireFullyFunded(grantId, grant);
        _requireUnsettled(grantId, milestoneIndex, milestone);
        // slither-disable-next-line timestamp (deadlines and expiries are defined in block time)
        if (block.timestamp < milestone.deadline) {
            revert MilestoneDeadlineNotReached(grantId, milestoneIndex, milestone.deadline);
        }

        // Effects.
        uint256 amount = milestone.amount;
        milestone.status = MilestoneStatus.Reclaimed;
        grant.reclaimed += uint128(amount);
        grant.settledCount += 1;
        _totalHeld[grant.token] -= amount;
        emit MilestoneReclaimed(grantId, milestoneIndex, msg.sender, amount);

        // Interactions: each funder gets `amount * contribution / funded`, rounded down. The
        // rounding remainder goes to the first funder, so the shares add up to `amount` exactly.
        address[] storage funders = _funders[grantId];
        uint256 funderCount = funders.length;
        uint256 funded = grant.funded;
        uint256 distributed = 0;
        for (uint256 i = 1; i < funderCount; ++i) {
            address funder = funders[i];
            uint256 share = (amount * _contributions[grantId][funder]) / funded;
            if (share == 0) {
                continue;
            }
            distributed += share;
            _payout(grantId, grant.token, funder, PayoutKind.Reclaim, milestoneIndex, share);
        }
        _payout(grantId, grant.token, funders[0], PayoutKind.Reclaim, milestoneIndex, amount - distributed);
    }

    /*//////////////////////////////////////////////////////////////
                           TYPED SIGNATURES
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IMilestoneEscrow
    function approveWithSignatures(
        uint256 grantId,
        uint256 milestoneIndex,
        bytes32 evidenceHash,
        SignedApproval[] calldata approvals
    ) external nonReentrant {
        if (approvals.length == 0) {
            revert EmptySignatureBatch();
        }
        for (uint256 i = 0; i < approvals.length; ++i) {
            SignedApproval calldata approval = approvals[i];
            bytes32 digest =
                _hashMilestoneApproval(approval.attestor, grantId, milestoneIndex, evidenceHash, approval.expiry);
            _useSignature(grantId, approval.attestor, digest, approval.expiry, approval.signature);
            _approve(grantId, milestoneIndex, evidenceHash, approval.attestor);
        }
    }

    /// @inheritdoc IMilestoneEscrow
    function submitEvidenceWithSignature(
        uint256 grantId,
        uint256 milestoneIndex,
        bytes32 evidenceHash,
        string calldata evidenceUri,
        uint64 expiry,
        bytes calldata signature
    ) external {
        address recipient = _getGrant(grantId).recipient;
        bytes32 digest =
            _hashEvidenceSubmission(recipient, grantId, milestoneIndex, evidenceHash, evidenceUri, expiry);
        _useSignature(grantId, recipient, digest, expiry, signature);
        _submitEvidence(grantId, milestoneIndex, evidenceHash, evidenceUri, recipient);
    }

    /// @inheritdoc IMilestoneEscrow
    function revokeSignature(bytes32 digest) external {
        _requireUnspent(msg.sender, digest);

        _signatureStates[msg.sender][digest] = SignatureState.Revoked;
        emit SignatureRevoked(msg.sender, digest);
    }

    /// @inheritdoc IMilestoneEscrow
    function hashMilestoneApproval(
        address attestor,
        uint256 grantId,
        uint256 milestoneIndex,
        bytes32 evidenceHash,
        uint64 expiry
    ) external view returns (bytes32) {
        return _hashMilestoneApproval(attestor, grantId, milestoneIndex, evidenceHash, expiry);
    }

    /// @inheritdoc IMilestoneEscrow
    function hashEvidenceSubmission(
        address recipient,
        uint256 grantId,
        uint256 milestoneIndex,
        bytes32 evidenceHash,
        string calldata evidenceUri,
        uint64 expiry
    ) external view returns (bytes32) {
        return _hashEvidenceSubmission(recipient, grantId, milestoneIndex, evidenceHash, evidenceUri, expiry);
    }

    /// @inheritdoc IMilestoneEscrow
    function signatureState(address signer, bytes32 digest) external view returns (SignatureState) {
        return _signatureStates[signer][digest];
    }

    /*//////////////////////////////////////////////////////////////
                                 CREDITS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IMilestoneEscrow
    function withdraw(address token, address to) external nonReentrant returns (uint256 amount) {
        // Checks.
        if (to == address(0)) {
            revert ZeroWithdrawalAddress();
        }
        amount = _credits[msg.sender][token];
        if (amount == 0) {
            revert NoCredit(msg.sender, token);
        }

        // Effects.
        _credits[msg.sender][token] = 0;
        _totalCredits[token] -= amount;
        emit CreditWithdrawn(msg.sender, token, to, amount);

        // Interactions: unlike a payout, a failed withdrawal reverts, so the credit is kept and
        // the owner can try again with another address.
        if (token == address(0)) {
            Address.sendValue(payable(to), amount);
        } else {
            IERC20(token).safeTransfer(to, amount);
        }
    }

    /*//////////////////////////////////////////////////////////////
                                  VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IMilestoneEscrow
    function grantCount() external view returns (uint256) {
        return _grantCount;
    }

    /// @inheritdoc IMilestoneEscrow
    function getGrant(uint256 grantId) external view returns (GrantView memory) {
        Grant storage grant = _getGrant(grantId);
        return GrantView({
            recipient: grant.recipient,
            token: grant.token,
            fundingDeadline: grant.fundingDeadline,
            threshold: grant.threshold,
            attestorCount: grant.attestorCount,
            milestoneCount: grant.milestoneCount,
            funderCount: uint16(_funders[grantId].length),
            status: _grantStatus(grant),
            total: grant.total,
            funded: grant.funded,
            released: grant.released,
            reclaimed: grant.reclaimed,
            held: grant.funded - grant.released - grant.reclaimed
        });
    }

    /// @inheritdoc IMilestoneEscrow
    function getMilestone(uint256 grantId, uint256 milestoneIndex) external view returns (MilestoneView memory) {
        Grant storage grant = _getGrant(grantId);
        Milestone storage milestone = _getMilestone(grantId, grant, milestoneIndex);
        return MilestoneView({
            amount: milestone.amount,
            deadline: milestone.deadline,
            status: milestone.status,
            evidenceHash: milestone.evidenceHash,
            approvals: milestone.approvals,
            rejections: milestone.rejections,
            approvalCount: uint8(_countBits(milestone.approvals)),
            rejectionCount: uint8(_countBits(milestone.rejections))
        });
    }

    /// @inheritdoc IMilestoneEscrow
    function getAttestors(uint256 grantId) external view returns (address[] memory) {
        _getGrant(grantId);
        return _attestors[grantId];
    }

    /// @inheritdoc IMilestoneEscrow
    function getFunders(uint256 grantId) external view returns (address[] memory) {
        _getGrant(grantId);
        return _funders[grantId];
    }

    /// @inheritdoc IMilestoneEscrow
    function contributionOf(uint256 grantId, address funder) external view returns (uint256) {
        return _contributions[grantId][funder];
    }

    /// @inheritdoc IMilestoneEscrow
    function isRefunded(uint256 grantId, address funder) external view returns (bool) {
        return _refunded[grantId][funder];
    }

    /// @inheritdoc IMilestoneEscrow
    function isEvidenceRejected(uint256 grantId, uint256 milestoneIndex, bytes32 evidenceHash)
        external
        view
        returns (bool)
    {
        return _rejectedEvidence[grantId][milestoneIndex][evidenceHash];
    }

    /// @inheritdoc IMilestoneEscrow
    function creditOf(address account, address token) external view returns (uint256) {
        return _credits[account][token];
    }

    /// @inheritdoc IMilestoneEscrow
    function totalCredits(address token) external view returns (uint256) {
        return _totalCredits[token];
    }

    /// @inheritdoc IMilestoneEscrow
    function totalHeld(address token) external view returns (uint256) {
        return _totalHeld[token];
    }

    /*//////////////////////////////////////////////////////////////
                            PRIVATE: GRANTS
    //////////////////////////////////////////////////////////////*/

    /// @dev Validates `terms`, stores the grant and emits {GrantCreated}.
    function _createGrant(GrantTerms calldata terms) private returns (uint256 grantId) {
        // Checks on everything but the attestors, which are checked while they are stored.
        uint256 total = _validateTerms(terms);

        // Derive the id: ids start at 1, so that 0 never names a grant.
        grantId = ++_grantCount;

        // Effects.
        Grant storage grant = _grants[grantId];
        grant.recipient = terms.recipient;
        grant.fundingDeadline = terms.fundingDeadline;
        grant.threshold = terms.threshold;
        // The casts are safe: `_validateTerms` bounds both counts by 32 and the total by uint128.
        grant.attestorCount = uint8(terms.attestors.length);
        grant.milestoneCount = uint8(terms.milestones.length);
        grant.token = terms.token;
        grant.total = uint128(total);

        for (uint256 i = 0; i < terms.milestones.length; ++i) {
            Milestone storage milestone = _milestones[grantId][i];
            milestone.amount = terms.milestones[i].amount;
            milestone.deadline = terms.milestones[i].deadline;
        }

        for (uint256 i = 0; i < terms.attestors.length; ++i) {
            address attestor = terms.attestors[i];
            if (attestor == address(0)) {
                revert ZeroAttestor(i);
            }
            if (_attestorPosition[grantId][attestor] != 0) {
                revert DuplicateAttestor(attestor);
            }
            _attestorPosition[grantId][attestor] = i + 1;
        }
        _attestors[grantId] = terms.attestors;

        emit GrantCreated(grantId, msg.sender, terms.recipient, terms);
    }

    /// @dev Checks every term but the attestor addresses and returns the sum of the milestones.
    function _validateTerms(GrantTerms calldata terms) private view returns (uint256 total) {
        if (terms.recipient == address(0)) {
            revert ZeroRecipient();
        }
        uint256 milestoneCount = terms.milestones.length;
        if (milestoneCount == 0 || milestoneCount > MAX_MILESTONES) {
            revert InvalidMilestoneCount(milestoneCount, MAX_MILESTONES);
        }
        uint256 attestorCount = terms.attestors.length;
        if (attestorCount == 0 || attestorCount > MAX_ATTESTORS) {
            revert InvalidAttestorCount(attestorCount, MAX_ATTESTORS);
        }
        if (terms.threshold == 0 || terms.threshold > attestorCount) {
            revert InvalidThreshold(terms.threshold, attestorCount);
        }
        // slither-disable-next-line timestamp (deadlines and expiries are defined in block time)
        if (terms.fundingDeadline <= block.timestamp) {
            revert FundingDeadlineNotInFuture(terms.fundingDeadline, block.timestamp);
        }

        for (uint256 i = 0; i < milestoneCount; ++i) {
            MilestoneTerms calldata milestone = terms.milestones[i];
            if (milestone.amount == 0) {
                revert ZeroMilestoneAmount(i);
            }
            if (milestone.deadline <= terms.fundingDeadline) {
                revert MilestoneDeadlineTooEarly(i, milestone.deadline, terms.fundingDeadline);
            }
            // Cannot overflow: at most 32 amounts of at most 2^128 - 1 each.
            unchecked {
                total += milestone.amount;
            }
        }
        if (total > type(uint128).max) {
            revert GrantTotalTooLarge(total, type(uint128).max);
        }
    }

    /// @dev Records `amount` from the caller as `funder`'s contribution, then collects it.
    // slither-disable-next-line cyclomatic-complexity (a flat list of checks, one per documented error)
    function _fund(uint256 grantId, address funder, uint256 amount) private {
        // Checks.
        Grant storage grant = _getGrant(grantId);
        if (amount == 0) {
            revert ZeroAmount();
        }
        if (funder == address(0)) {
            revert ZeroFunder();
        }
        // slither-disable-next-line timestamp (deadlines and expiries are defined in block time)
        if (block.timestamp >= grant.fundingDeadline) {
            revert FundingClosed(grantId, grant.fundingDeadline);
        }
        uint256 remaining = grant.total - grant.funded;
        if (amount > remaining) {
            revert FundingExceedsTotal(grantId, amount, remaining);
        }
        address token = grant.token;
        if (token == address(0)) {
            if (msg.value != amount) {
                revert EthAmountMismatch(msg.value, amount);
            }
        } else if (msg.value != 0) {
            revert UnexpectedEth(msg.value);
        }
        bool isNewFunder = _contributions[grantId][funder] == 0;
        if (isNewFunder && _funders[grantId].length == MAX_FUNDERS) {
            revert TooManyFunders(grantId, MAX_FUNDERS);
        }

        // Effects. The cast is safe: `amount <= remaining`, and the total fits in uint128.
        grant.funded += uint128(amount);
        _contributions[grantId][funder] += amount;
        if (isNewFunder) {
            _funders[grantId].push(funder);
        }
        _totalHeld[token] += amount;
        emit GrantFunded(grantId, funder, msg.sender, amount, grant.funded);

        // Interactions: ETH arrived with the call. For a token, the balance difference is what
        // arrived, and anything but `amount` (a transfer fee, for instance) reverts the whole
        // contribution.
        if (token != address(0)) {
            uint256 balanceBefore = IERC20(token).balanceOf(address(this));
            IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
            uint256 received = IERC20(token).balanceOf(address(this)) - balanceBefore;
            if (received != amount) {
                revert TokenAmountMismatch(token, amount, received);
            }
        }
    }

    /// @dev Records `evidenceHash` as the milestone's current evidence, submitted by `submitter`.
    function _submitEvidence(
        uint256 grantId,
        uint256 milestoneIndex,
        bytes32 evidenceHash,
        string calldata evidenceUri,
        address submitter
    ) private {
        // Checks.
        Grant storage grant = _getGrant(grantId);
        Milestone storage milestone = _getMilestone(grantId, grant, milestoneIndex);
        if (submitter != grant.recipient) {
            revert NotRecipient(grantId, submitter);
        }
        _requireFullyFunded(grantId, grant);
        _requireOpen(grantId, milestoneIndex, milestone);
        if (evidenceHash == bytes32(0)) {
            revert ZeroEvidenceHash();
        }
        if (milestone.status == MilestoneStatus.EvidenceSubmitted && milestone.evidenceHash == evidenceHash) {
            revert EvidenceAlreadySubmitted(grantId, milestoneIndex, evidenceHash);
        }
        if (_rejectedEvidence[grantId][milestoneIndex][evidenceHash]) {
            revert EvidenceHashRejected(grantId, milestoneIndex, evidenceHash);
        }

        // Effects: new evidence starts with no approvals and no rejections.
        milestone.status = MilestoneStatus.EvidenceSubmitted;
        milestone.evidenceHash = evidenceHash;
        milestone.approvals = 0;
        milestone.rejections = 0;
        emit EvidenceSubmitted(grantId, milestoneIndex, submitter, evidenceHash, evidenceUri);
    }

    /// @dev Counts `attestor`'s approval of the current evidence, and releases at the threshold.
    function _approve(uint256 grantId, uint256 milestoneIndex, bytes32 evidenceHash, address attestor) private {
        // Checks.
        Grant storage grant = _getGrant(grantId);
        Milestone storage milestone = _getMilestone(grantId, grant, milestoneIndex);
        uint16 attestorBit = _requireVote(grantId, milestoneIndex, milestone, evidenceHash, attestor);

        // Effects.
        milestone.approvals |= attestorBit;
        uint256 approvalCount = _countBits(milestone.approvals);
        emit MilestoneApproved(grantId, milestoneIndex, attestor, evidenceHash, approvalCount);

        // The approval that reaches the threshold releases the milestone at once.
        if (approvalCount == grant.threshold) {
            _release(grantId, grant, milestoneIndex, milestone);
        }
    }

    /// @dev Checks that `signature` is `signer`'s valid, unexpired and unspent signature of
    /// `digest`, then marks it used. ECDSA signatures must be 65 bytes with a low s, so the same
    /// signature cannot be re-encoded; and because the digest, not the signature bytes, is
    /// marked, no encoding of it can be used twice.
    function _useSignature(uint256 grantId, address signer, bytes32 digest, uint64 expiry, bytes calldata signature)
        private
    {
        // slither-disable-next-line timestamp (deadlines and expiries are defined in block time)
        if (block.timestamp >= expiry) {
            revert SignatureExpired(signer, expiry);
        }
        _requireUnspent(signer, digest);
        if (!SignatureChecker.isValidSignatureNow(signer, digest, signature)) {
            revert InvalidSignature(signer);
        }

        _signatureStates[signer][digest] = SignatureState.Used;
        emit SignatureRelayed(grantId, signer, msg.sender, digest);
    }

    function _requireUnspent(address signer, bytes32 digest) private view {
        SignatureState state = _signatureStates[signer][digest];
        if (state == SignatureState.Used) {
            revert SignatureAlreadyUsed(signer, digest);
        }
        if (state == SignatureState.Revoked) {
            revert SignatureWasRevoked(signer, digest);
        }
    }

    function _hashMilestoneApproval(
        address attestor,
        uint256 grantId,
        uint256 milestoneIndex,
        bytes32 evidenceHash,
        uint64 expiry
    ) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(MILESTONE_APPROVAL_TYPEHASH, attestor, grantId, milestoneIndex, evidenceHash, expiry))
        );
    }

    function _hashEvidenceSubmission(
        address recipient,
        uint256 grantId,
        uint256 milestoneIndex,
        bytes32 evidenceHash,
        string calldata evidenceUri,
        uint64 expiry
    ) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    EVIDENCE_SUBMISSION_TYPEHASH,
                    recipient,
                    grantId,
                    milestoneIndex,
                    evidenceHash,
                    keccak256(bytes(evidenceUri)),
                    expiry
                )
            )
        );
    }

    /// @dev Marks a milestone released and pays its amount to the recipient.
    function _release(uint256 grantId, Grant storage grant, uint256 milestoneIndex, Milestone storage milestone)
        private
    {
        // Effects.
        uint256 amount = milestone.amount;
        milestone.status = MilestoneStatus.Released;
        grant.released += uint128(amount);
        grant.settledCount += 1;
        _totalHeld[grant.token] -= amount;
        emit MilestoneReleased(grantId, milestoneIndex, grant.recipient, milestone.evidenceHash, amount);

        // Interactions.
        _payout(grantId, grant.token, grant.recipient, PayoutKind.Release, milestoneIndex, amount);
    }

    /// @dev Sends `amount` to `account`, or credits it to `account` if the transfer fails.
    function _payout(
        uint256 grantId,
        address token,
        address account,
        PayoutKind kind,
        uint256 milestoneIndex,
        uint256 amount
    ) private {
        bool sent = token == address(0) ? _trySendEth(account, amount) : IERC20(token).trySafeTransfer(account, amount);
        // A failed payout becomes a credit instead of a revert, because a revert here would let
        // one recipient or funder block every other party of the grant.
        if (!sent) {
            _credits[account][token] += amount;
            _totalCredits[token] += amount;
        }
        emit Payout(grantId, account, token, kind, milestoneIndex, amount, !sent);
    }

    /// @dev Sends ETH with a fixed gas allowance and without copying return data, so that the
    /// receiver can neither use up the caller's gas nor bloat its memory.
    // slither-disable-next-line assembly (a Solidity call would copy all return data into memory)
    function _trySendEth(address to, uint256 amount) private returns (bool success) {
        assembly ("memory-safe") {
            success := call(ETH_PAYOUT_GAS, to, amount, 0, 0, 0, 0)
        }
    }

    /*//////////////////////////////////////////////////////////////
                            PRIVATE: CHECKS
    //////////////////////////////////////////////////////////////*/

    function _getGrant(uint256 grantId) private view returns (Grant storage grant) {
        grant = _grants[grantId];
        if (grant.recipient == address(0)) {
            revert GrantNotFound(grantId);
        }
    }

    function _getMilestone(uint256 grantId, Grant storage grant, uint256 milestoneIndex)
        private
        view
        returns (Milestone storage)
    {
        if (milestoneIndex >= grant.milestoneCount) {
            revert MilestoneNotFound(grantId, milestoneIndex, grant.milestoneCount);
        }
        return _milestones[grantId][milestoneIndex];
    }

    function _requireFullyFunded(uint256 grantId, Grant storage grant) private view {
        if (grant.funded < grant.total) {
            revert GrantNotFullyFunded(grantId, grant.funded, grant.total);
        }
    }

    function _requireUnsettled(uint256 grantId, uint256 milestoneIndex, Milestone storage milestone) private view {
        MilestoneStatus status = milestone.status;
        if (status == MilestoneStatus.Released || status == MilestoneStatus.Reclaimed) {
            revert MilestoneAlreadySettled(grantId, milestoneIndex, status);
        }
    }

    /// @dev Checks that the milestone is unsettled and its deadline not reached.
    function _requireOpen(uint256 grantId, uint256 milestoneIndex, Milestone storage milestone) private view {
        _requireUnsettled(grantId, milestoneIndex, milestone);
        // slither-disable-next-line timestamp (deadlines and expiries are defined in block time)
        if (block.timestamp >= milestone.deadline) {
            revert MilestoneDeadlinePassed(grantId, milestoneIndex, milestone.deadline);
        }
    }

    /// @dev Checks that `attestor` may approve or reject `evidenceHash` now, and returns the
    /// attestor's bit in the approval and rejection bitmaps.
    function _requireVote(
        uint256 grantId,
        uint256 milestoneIndex,
        Milestone storage milestone,
        bytes32 evidenceHash,
        address attestor
    ) private view returns (uint16 attestorBit) {
        uint256 position = _attestorPosition[grantId][attestor];
        if (position == 0) {
            revert NotAttestor(grantId, attestor);
        }
        _requireOpen(grantId, milestoneIndex, milestone);
        if (milestone.status != MilestoneStatus.EvidenceSubmitted) {
            revert NoPendingEvidence(grantId, milestoneIndex);
        }
        if (milestone.evidenceHash != evidenceHash) {
            revert EvidenceMismatch(grantId, milestoneIndex, milestone.evidenceHash, evidenceHash);
        }
        // The cast is safe: positions run from 1 to MAX_ATTESTORS (16).
        attestorBit = uint16(1 << (position - 1));
        if ((milestone.approvals | milestone.rejections) & attestorBit != 0) {
            revert AlreadyAttested(grantId, milestoneIndex, attestor);
        }
    }

    /*//////////////////////////////////////////////////////////////
                            PRIVATE: HELPERS
    //////////////////////////////////////////////////////////////*/

    function _grantStatus(Grant storage grant) private view returns (GrantStatus) {
        if (grant.funded < grant.total) {
            // slither-disable-next-line timestamp (deadlines and expiries are defined in block time)
            return block.timestamp < grant.fundingDeadline ? GrantStatus.Funding : GrantStatus.FundingFailed;
        }
        return grant.settledCount == grant.milestoneCount ? GrantStatus.Completed : GrantStatus.Active;
    }

    /// @dev Counts the set bits of an attestor bitmap.
    function _countBits(uint16 bitmap) private pure returns (uint256 count) {
        // Each step clears the lowest set bit, so the loop runs once per attestor at most.
        while (bitmap != 0) {
            bitmap &= bitmap - 1;
            ++count;
        }
    }
}
